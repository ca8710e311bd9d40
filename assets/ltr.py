"""The ranking stages of "Explore Further" (KDD'25, sections 2.2 and 4.6-4.8) over the recall paths:
``ltr_features`` (the feature rows), ``ranker`` (LightGBM LambdaRank stage 1 on inexpensive counts,
stage 2 adding the ranking student's click and quality heads and the CTR score; λ chosen on the held-out
selection day; registered and gated) and ``ltr_tradeoff`` (the quality/click curve over λ, the table against
popularity, the CTR model alone, click-only and quality-only ranking, mean ± std over seeds, and the protocol's
decision on the chosen λ against λ = 0 with paired bootstrap intervals).

Groups are logged impressions: the trigger is the newest article of the user's history (``pair_logs``),
the candidates are the impression's. Rows take their part from their day's role (docs/explore_further_protocol.md,
``training.ltr.tradeoff``): the stages train on the fit days, early-stop on the early-stopping day, λ is
chosen on the selection day; the gate and the trade-off are measured on the partition day.
"""

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import png_markdown
from orchestration.champion_gate import KeepsClicksGainsQuality, decide, gate_check_spec, gated_outputs
from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from training.baselines.popularity import popularity_scores
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.data.quality_truth import load_quality_truth
from training.embedding_table import EmbeddingTable
from training.ltr.stages import RankerConfig
from training.quality.evaluation import quality_ranking_metrics, summarise
from training.registry import (
    CHAMPION,
    RegisteredModel,
    alias_version,
    load_python_model,
    load_version,
    log_and_register,
)
from training.settings import model_dir


class LtrFeaturesConfig(Config):
    windows_days: list[int] = [1, 3, 7]   # count windows (days before the row's day)
    train_impressions: int = 0            # 0: every impression of the training days; else a seeded sample
    ctr_mask_fraction: float = 0.5        # share of training impressions without the CTR score (as /v1/related)
    batch_impressions: int = 2000         # impressions (union lists: triggers) featurised at a time; 0: a part at once
    seed: int = 0
    torch_threads: int = 0                # 0: the step's default (orchestration/executors.py)


@derived_from(RankerConfig, overrides={
    "threads": Override(0, "0: the step's default (orchestration/executors.py: 1 a step side by side)"),
})
class RankerRunConfig(Config):
    """The ``ranker`` asset: training.ltr.stages.RankerConfig's knobs (both LightGBM stages) and these."""

    lambda_tolerance: float | None = None  # λ: the right-most whose QF-ClickNDCG@5 on the selection day is within
                                           # this of the best; None: one bootstrap standard error of it
    eval_impressions: int = 2000      # gate slice: sampled partition-day impressions with quality labels
    click_tolerance: float = 0.01
    force_promote: bool = False


class LtrTradeoffConfig(Config):
    seeds: list[int] = [42]           # both stages retrained per seed (bagging makes seeds differ); the demo's:
                                      # orchestration/reproduce.yaml holds the full grid
    eval_impressions: int = 2000
    sample_seed: int = 0


def _champion_or(name: str, registered: RegisteredModel) -> str:
    """The version ``name@champion`` points at, else the given one."""
    return alias_version(name, CHAMPION) or registered.version


@asset(group_name="ltr", partitions_def=daily_partitions, kinds={"pandas"},
       op_tags=CRITICAL_PATH_TAGS)
def ltr_features(context: AssetExecutionContext, config: LtrFeaturesConfig, pair_logs: PairLogs,
                     recall_candidates: pd.DataFrame, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame,
                     news_embeddings: EmbeddingTable, ranking_student: RegisteredModel, ctr_model: RegisteredModel,
                     quality_labels: pd.DataFrame, dvc_data: DvcData,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Stage-2 feature rows, ``part`` by day role (``training.ltr.tradeoff.row_parts``): ``train`` (fit
    days), ``valid`` (the early-stopping day), ``selection`` (the λ-selection day; none when the window is too
    short for it), ``test`` (the partition day), and ``related`` (the candidate store's union lists as served,
    counts as of the partition day's end, no user). Counts come from days strictly before each row's day. Each
    part is featurised ``batch_impressions`` impressions at a time (``training.ltr.feature_table``)."""
    from training.ltr.count_features import LogCounts, PathRanks
    from training.ltr.feature_table import lambda_day_roles, pair_grades, ranking_feature_rows
    from training.ltr.scorers import ctr_scorer, student_scorer
    from training.ltr.tradeoff import row_parts
    from training.retrieval.recall_paths import RecallPath

    day = context.partition_key
    counts = LogCounts.from_logs(mind_behaviors.impressions, pair_logs.pairs, tuple(config.windows_days))
    times = mind_behaviors.histories.drop_duplicates("impression_id").set_index("impression_id")["time"]
    path_ranks = PathRanks(recall_candidates)  # indexed once for every part and batch
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        student_version = _champion_or("ranking_student", ranking_student)
        student = student_scorer(load_python_model("ranking_student", student_version), config.torch_threads)
        ctr_version = _champion_or("ctr_model", ctr_model)
        ctr = ctr_scorer(load_python_model("ctr_model", ctr_version), mind_behaviors)
        truth = load_quality_truth(dvc_data.raw_path())
        logged = pair_logs.pairs.drop(columns="role", errors="ignore")   # ``part`` says each day's use
        parts = row_parts(logged["day"].to_numpy(), pair_logs.fit_days, pair_logs.early_stopping_day,
                          pair_logs.selection_day, pair_logs.test_day)
        next_day = (pd.Timestamp(day) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        rows = ranking_feature_rows(
            logged, parts, lambda pairs: pair_grades(pairs, truth, mind_news, quality_labels),
            recall_candidates[recall_candidates["path"] == RecallPath.UNION], next_day, times, counts, news_embeddings,
            path_ranks, student, ctr, train_impressions=config.train_impressions,
            ctr_mask_fraction=config.ctr_mask_fraction, seed=config.seed, batch_size=config.batch_impressions,
            log=context.log.info)
        sizes = {f"rows_{k}": int(v) for k, v in rows.groupby("part").size().items()}
        mlflow.log_metrics(sizes)
        roles = lambda_day_roles(parts, pair_logs.fit_days, pair_logs.early_stopping_day, pair_logs.selection_day)
        mlflow.set_tags({"ranking_student.version": student_version, "ctr_model.version": ctr_version,
                         **{k: str(v).lower() if isinstance(v, bool) else v for k, v in roles.items()}})
    if not roles["lambda_day_held_out"]:
        context.log.warning(f"window {', '.join(pair_logs.train_days)} is too short for a selection day of its own: "
                            "λ will be chosen on the early-stopping day (lambda_day_held_out: false)")
    return Output(rows, metadata={**sizes, **roles,
                                  "ranking_student_version": student_version, "ctr_model_version": ctr_version,
                                  "count_features": ", ".join(counts.feature_names()),
                                  "quality_source": "truth" if truth is not None else "judge"})


@asset(group_name="ltr", partitions_def=daily_partitions, kinds={"lightgbm", "mlflow"},
       check_specs=[gate_check_spec("ranker", KeepsClicksGainsQuality())])
def ranker(context: AssetExecutionContext, config: RankerRunConfig, ltr_features: pd.DataFrame,
           recall_candidates: pd.DataFrame, popularity_baseline: pd.DataFrame, mlflow_tracking: MlflowTracking):
    """Train both LightGBM stages (fit days, early stopping on the early-stopping day), choose λ on the selection
    day (``training.ltr.tradeoff.fit_ranker``: right-most λ within one bootstrap SE of the best
    QF-ClickNDCG@5; its curve logged as CSV and PNG), register ``ranker`` (both boosters, λ, μ, σ, the feature
    list and the served candidates' feature rows) and gate it on the partition day: RecoDCG@5 above the
    popularity floor and not below the champion's, ClickNDCG@5 at most ``click_tolerance`` below."""
    from serving.ltr_model import RankerPyfunc, log_ranker, ranker_signature
    from training.ltr.report_day import report_rows, served_metrics
    from training.ltr.tradeoff import fit_ranker, plot_tradeoff

    criterion = KeepsClicksGainsQuality(click_tolerance=config.click_tolerance)
    with mlflow_tracking.asset_run(context, params=config.model_dump()) as run:
        fitted, choice = fit_ranker(ltr_features, to_training(config), config.lambda_tolerance)
        out = model_dir("ranker", context.partition_key, context.run.run_id)
        selection = {"lambda_rule": str(fitted.meta["lambda_rule"]),
                     "lambda_day_held_out": bool(fitted.meta["lambda_day_held_out"])}
        if choice is not None:
            days = ", ".join(choice.days)
            mlflow.log_text(choice.curve.to_csv(index=False), "selection_tradeoff.csv")
            mlflow.log_artifact(str(plot_tradeoff(choice.curve, choice.lam, out / "selection_tradeoff.png",
                                                  title=f"λ selection on {days}")))
            mlflow.log_metrics({"lambda_std_error": choice.std_error, "lambda_tolerance": choice.tolerance,
                                "lambda_best": choice.best_lam})
            selection.update({"lambda_day": days, "lambda_std_error": choice.std_error,
                              "lambda_tolerance": choice.tolerance, "lambda_impressions": choice.n_impressions})
        mlflow.set_tags({"lambda_day_held_out": str(selection["lambda_day_held_out"]).lower(),
                         "lambda_day": selection.get("lambda_day", ""), "lambda_rule": selection["lambda_rule"]})
        related = ltr_features[ltr_features["part"] == "related"]
        store_version = _store_version(recall_candidates, context)
        fitted.meta.update({"partition": context.partition_key, "store_version": store_version,
                            "mlflow_run_id": run.info.run_id})
        artifacts = log_ranker(fitted, related.rename(columns={"candidate_id": "news_id"}), out, store_version)
        registered = log_and_register("ranker", RankerPyfunc(), artifacts, local_dir=out, signature=ranker_signature(),
                                      content_version=run.info.run_id, candidate_alias=False)
        client = mlflow.tracking.MlflowClient()
        for key, value in {"lambda": fitted.lam, "mu": fitted.mu, "sigma": fitted.sigma,
                           "store_version": store_version}.items():
            client.set_model_version_tag("ranker", registered.version, key, str(value))
        mlflow.log_params({"lambda": fitted.lam, "n_stage1_features": len(fitted.stage1_features),
                           "n_stage2_features": len(fitted.stage2_features)})
        mlflow.log_text("\n".join(fitted.stage2_features), "features.txt")
        gate = report_rows(ltr_features, config.eval_impressions, 0)
        floor = quality_ranking_metrics(gate, popularity_scores(popularity_baseline, gate))
        decision = decide("ranker", registered.version,
                          lambda version: served_metrics(load_version("ranker", version), gate, version), floor,
                          criterion=criterion, force_promote=config.force_promote)
        decision.log_to_mlflow(lam=fitted.lam)
    yield from gated_outputs(Output(registered, metadata={
        "registered_version": registered.version, "champion_version": decision.new_champion or "",
        "lambda": float(fitted.lam), "mu": str(fitted.mu), "sigma": str(fitted.sigma),
        "features": ", ".join(fitted.stage2_features), "store_version": store_version,
        "related_triggers": int(related["trigger_id"].nunique()), **selection,
        **{k: float(v) for k, v in decision.candidate_metrics.items()},
        "gate": MetadataValue.md(decision.metrics_table()),
    }), decision)


def _store_version(recall_candidates: pd.DataFrame, context: AssetExecutionContext) -> str:
    """The candidate-store version (``recall_candidates``' MLflow run id) the served rows come from."""
    event = context.instance.get_latest_materialization_event(context.asset_key_for_input("recall_candidates"))
    if event is None or event.asset_materialization is None:
        return ""
    value = event.asset_materialization.metadata.get("store_version")
    return "" if value is None else str(value.value)


@asset(group_name="ltr", partitions_def=daily_partitions, kinds={"lightgbm", "mlflow"})
def ltr_tradeoff(context: AssetExecutionContext, config: LtrTradeoffConfig, ranker: RegisteredModel,
                     ltr_features: pd.DataFrame, popularity_baseline: pd.DataFrame,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Quality-filtered ClickNDCG@5 against RecoDCG@5 for λ from 0 to 1 (step 0.05) of the registered ranker on
    the partition day (PNG), the table of popularity, the CTR model alone, click-only (λ = 0), quality-only
    (λ = 1) and the chosen λ, both stages retrained and λ re-chosen on the selection day for each seed (mean ±
    std; ``training.ltr.report_day``), and the protocol's decision (``training.ltr.tradeoff``): the
    chosen λ against λ = 0 by paired bootstrap intervals over the partition day's impressions."""
    from training.ltr.report_day import baseline_rows, report_rows, retrain_per_seed, tradeoff_markdown
    from training.ltr.tradeoff import curve_point, plot_tradeoff, ranker_curve

    rows = report_rows(ltr_features, config.eval_impressions, config.sample_seed)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        fitted = load_python_model("ranker", ranker.version).ranker
        curve = ranker_curve(fitted, rows)
        fixed = baseline_rows(rows, popularity_scores(popularity_baseline, rows))
        runs = retrain_per_seed(ltr_features, rows, fitted.config, fitted.meta.get("lambda_tolerance_config"),
                                config.seeds, log=context.log.info)
        verdict = runs.decision()
        summary = summarise(fixed + runs.rows)
        day = context.partition_key
        table = (tradeoff_markdown(summary, verdict, config.seeds, day, rows["impression_id"].nunique(),
                                   fitted.meta.get("lambda_days", []), runs.held_out)
                 + schedule_note("ltr_tradeoff", config) + "\n")
        chosen = float(fitted.lam)
        at = curve_point(curve, chosen)
        zero = curve_point(curve, 0.0)
        png = model_dir("ltr_tradeoff", context.partition_key, context.run.run_id) / "tradeoff.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_tradeoff(curve, chosen, png,
                      baselines={row["ranker"]: (row["reco_dcg5"], row["qf_click_ndcg5"]) for row in fixed})
        mlflow.log_artifact(str(png))
        mlflow.log_text(curve.to_csv(index=False), "tradeoff_curve.csv")
        mlflow.log_text(table, "tradeoff.md")
        mlflow.log_text(pd.DataFrame(runs.rows).to_csv(index=False), "tradeoff_per_seed.csv")
        mlflow.log_text(summary.to_csv(index=False), "tradeoff_table.csv")
        gain = float(at["reco_dcg5"] - zero["reco_dcg5"])
        mlflow.log_metrics({"lambda": chosen, "reco_dcg5_at_lambda": float(at["reco_dcg5"]),
                            "qf_click_ndcg5_at_lambda": float(at["qf_click_ndcg5"]),
                            "reco_dcg5_gain_over_click_only": gain, **verdict.metrics()})
        mlflow.set_tags({"ranker.version": ranker.version, "tradeoff.decision": verdict.verdict,
                         "tradeoff.decision_text": verdict.text(), "lambda_day_held_out": str(runs.held_out).lower()})
    context.log.info(f"trade-off on {context.partition_key} (ranker v{ranker.version}, λ = {chosen:.2f}, "
                     f"RecoDCG@5 {gain * 100:+.2f} over click-only; {verdict.text()}):\n{table}")
    return Output(curve, metadata={
        "ranker_version": ranker.version, "lambda": chosen, "reco_dcg5_gain_over_click_only": round(gain, 4),
        "decision": verdict.verdict, "decision_text": verdict.text(), "lambda_day_held_out": runs.held_out,
        "lambda_per_seed": ", ".join(f"{lam:.2f}" for lam in runs.lambdas),
        "curve": png_markdown(png, "quality-filtered ClickNDCG@5 against RecoDCG@5 over λ"),
        "table": MetadataValue.md(table),
    })
