"""The ranking stages of "Explore Further" (KDD'25, sections 2.2 and 4.6-4.8) over the recall paths:
``ranking_features`` (the feature rows), ``ranker`` (LightGBM LambdaRank stage 1 on inexpensive counts,
stage 2 adding the ranking student's click and quality heads and the CTR score; λ chosen on the held-out
selection day; registered and gated) and ``ranking_tradeoff`` (the quality/click curve over λ, the table against
popularity, the CTR model alone, click-only and quality-only ranking, mean ± std over seeds, and the protocol's
decision on the chosen λ against λ = 0 with paired bootstrap intervals).

Groups are logged impressions: the trigger is the newest article of the user's history (``pair_logs``),
the candidates are the impression's. Rows take their part from their day's role (docs/explore_further_protocol.md,
``training.ranking.tradeoff``): the stages train on the fit days, early-stop on the early-stopping day, λ is
chosen on the selection day; the gate and the trade-off are measured on the partition day.
"""

import dataclasses

import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import png_markdown
from assets.ranking import popularity_scores
from orchestration.champion_gate import KeepsClicksGainsQuality, decide, gate_check_spec, gated_outputs
from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.data.quality_truth import load_quality_truth, pair_quality
from training.embedding_table import EmbeddingTable
from training.quality.evaluation import (
    metric_row,
    metrics_markdown,
    quality_ranking_metrics,
    sample_impressions,
    summarise,
)
from training.registry import (
    CHAMPION,
    RegisteredModel,
    alias_version,
    load_python_model,
    load_version,
    log_and_register,
)
from training.settings import model_dir


class RankingFeaturesConfig(Config):
    windows_days: list[int] = [1, 3, 7]   # count windows (days before the row's day)
    train_impressions: int = 0            # 0: every impression of the training days; else a seeded sample
    ctr_mask_fraction: float = 0.5        # share of training impressions without the CTR score (as /v1/related)
    batch_impressions: int = 2000         # impressions (union lists: triggers) featurised at a time; 0: a part at once
    seed: int = 0
    torch_threads: int = 0                # 0: the step's default (orchestration/executors.py)


class RankerConfig(Config):
    num_leaves: int = 15
    n_estimators: int = 150
    learning_rate: float = 0.05
    min_data_in_leaf: int = 20
    label_gain: list[float] = [0.0, 1.0, 3.0, 7.0, 15.0]
    max_group_size: int = 1000
    lambda_tolerance: float | None = None  # λ: the right-most whose QF-ClickNDCG@5 on the selection day is within
                                           # this of the best; None: one bootstrap standard error of it
    eval_impressions: int = 2000      # gate slice: sampled partition-day impressions with quality labels
    click_tolerance: float = 0.01
    seed: int = 42
    threads: int = 0                  # 0: the step's default (orchestration/executors.py)
    force_promote: bool = False


class RankingTradeoffConfig(Config):
    seeds: list[int] = [42]           # both stages retrained per seed (bagging makes seeds differ); the demo's:
                                      # orchestration/reproduce.yaml holds the full grid
    eval_impressions: int = 2000
    sample_seed: int = 0


def _stage_config(config: RankerConfig, seed: int | None = None):
    from training.ranking.stages import RankerConfig as StageConfig

    return StageConfig(num_leaves=config.num_leaves, n_estimators=config.n_estimators,
                       learning_rate=config.learning_rate, min_data_in_leaf=config.min_data_in_leaf,
                       label_gain=tuple(config.label_gain), max_group_size=config.max_group_size,
                       seed=config.seed if seed is None else seed, threads=config.threads)


def _student_scorer(ranking_student: RegisteredModel, threads: int):
    """``(trigger_ids, candidate_ids) -> (click logit, quality)`` of ``ranking_student@champion`` (else the
    given version), and that version."""
    from training.torch_threads import torch_threads

    version = alias_version("ranking_student", CHAMPION) or ranking_student.version
    student = load_python_model("ranking_student", version)

    def score(triggers: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch_threads(threads):
            scored = student.score(pd.DataFrame({"trigger_id": triggers, "candidate_id": candidates}))
        return scored["click_logit"].to_numpy(np.float32), scored["quality"].to_numpy(np.float32)
    return score, version


def _ctr_scorer(ctr_model: RegisteredModel, behaviors: BehaviorLog):
    """``pairs -> click probability`` of ``ctr_model@champion`` (else the given version) for logged pairs,
    NaN where the model does not know the user; and that version."""
    from training.ctr.vocabulary import FIRST_KNOWN

    version = alias_version("ctr_model", CHAMPION) or ctr_model.version
    model = load_python_model("ctr_model", version)

    def score(pairs: pd.DataFrame) -> np.ndarray:
        keys = pairs[["impression_id", "position"]]
        ids = keys["impression_id"].unique()
        logged = behaviors.impressions[behaviors.impressions["impression_id"].isin(ids)]  # not the whole log's join
        imps = keys.merge(logged, on=["impression_id", "position"], how="left", validate="1:1")
        del logged
        if imps["news_id"].isna().any():
            raise ValueError("some pairs have no impression row in mind_behaviors")
        hist = behaviors.histories[behaviors.histories["impression_id"].isin(ids)]
        scores = np.asarray(model.score_tables(imps, hist), dtype=np.float32)
        known = model.predictor.features.vocabularies["user_id"].encode(imps["user_id"].to_numpy(dtype=object))
        return np.where(known >= FIRST_KNOWN, scores, np.nan).astype(np.float32)
    return score, version


def _quality(pairs: pd.DataFrame, truth: pd.DataFrame | None, news: pd.DataFrame,
             quality_labels: pd.DataFrame) -> pd.Series:
    """0-4 quality of each pair: the generator's truth on demo data, else the judge's label (NaN unlabelled)."""
    if truth is not None:
        return pd.Series(pair_quality(truth, news, pairs["trigger_id"], pairs["candidate_id"]), dtype="float32")
    judged = quality_labels[["trigger_id", "candidate_id", "score"]].drop_duplicates(["trigger_id", "candidate_id"])
    merged = pairs[["trigger_id", "candidate_id"]].merge(judged, on=["trigger_id", "candidate_id"], how="left")
    return merged["score"].astype("float32")


@asset(group_name="ranking", partitions_def=daily_partitions, kinds={"pandas"})
def ranking_features(context: AssetExecutionContext, config: RankingFeaturesConfig, pair_logs: PairLogs,
                     recall_candidates: pd.DataFrame, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame,
                     news_embeddings: EmbeddingTable, ranking_student: RegisteredModel, ctr_model: RegisteredModel,
                     quality_labels: pd.DataFrame, dvc_data: DvcData,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Stage-2 feature rows, ``part`` by day role (``training.ranking.tradeoff.row_parts``): ``train`` (fit
    days), ``valid`` (the early-stopping day), ``selection`` (the λ-selection day; none when the window is too
    short for it), ``test`` (the partition day), and ``related`` (the candidate store's union lists as served,
    counts as of the partition day's end, no user). Counts come from days strictly before each row's day. Each
    part is featurised ``batch_impressions`` impressions at a time (``training.ranking.rows``)."""
    from training.ranking.count_features import LogCounts, PathRanks
    from training.ranking.rows import logged_rows, related_rows
    from training.ranking.tradeoff import row_parts

    day = context.partition_key
    counts = LogCounts.from_logs(mind_behaviors.impressions, pair_logs.pairs, tuple(config.windows_days))
    times = mind_behaviors.histories.drop_duplicates("impression_id").set_index("impression_id")["time"]
    path_ranks = PathRanks(recall_candidates)  # indexed once for every part and batch
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        student, student_version = _student_scorer(ranking_student, config.torch_threads)
        ctr, ctr_version = _ctr_scorer(ctr_model, mind_behaviors)
        truth = load_quality_truth(dvc_data.raw_path())
        logged = pair_logs.pairs.drop(columns="role", errors="ignore")   # ``part`` says each day's use
        parts = row_parts(logged["day"].to_numpy(), pair_logs.fit_days, pair_logs.early_stopping_day,
                          pair_logs.selection_day, pair_logs.test_day)
        held_out = bool((parts == "selection").any())
        frames = []
        for part in ("train", "valid", "selection", "test"):
            chunk = logged[parts == part].assign(part=part)
            if chunk.empty:
                continue
            if part == "train" and config.train_impressions:
                chunk = sample_impressions(chunk, config.train_impressions, config.seed)
            chunk["quality"] = _quality(chunk, truth, mind_news, quality_labels).to_numpy()
            frames.append(logged_rows(chunk, times, counts, news_embeddings, path_ranks, student, ctr,
                                      config.ctr_mask_fraction if part == "train" else 0.0, config.seed,
                                      config.batch_impressions))
            context.log.info(f"{part}: {len(chunk):,} pairs, {chunk['impression_id'].nunique():,} impressions")
            del chunk
        union = recall_candidates[recall_candidates["path"] == "union"]
        next_day = (pd.Timestamp(day) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
        related = related_rows(union, counts, next_day, news_embeddings, path_ranks, student,
                               config.batch_impressions).assign(part="related")
        frames.append(related)
        rows = pd.concat(frames, ignore_index=True)
        del frames
        sizes = rows.groupby("part").size().to_dict()
        mlflow.log_metrics({f"rows_{k}": int(v) for k, v in sizes.items()})
        roles = {"fit_days": ", ".join(pair_logs.fit_days), "early_stopping_day": pair_logs.early_stopping_day,
                 "selection_day": pair_logs.selection_day if held_out else pair_logs.early_stopping_day,
                 "lambda_day_held_out": held_out}
        mlflow.set_tags({"ranking_student.version": student_version, "ctr_model.version": ctr_version,
                         **{k: str(v).lower() if isinstance(v, bool) else v for k, v in roles.items()}})
    if not held_out:
        context.log.warning(f"window {', '.join(pair_logs.train_days)} is too short for a selection day of its own: "
                            "λ will be chosen on the early-stopping day (lambda_day_held_out: false)")
    return Output(rows, metadata={**{f"rows_{k}": int(v) for k, v in sizes.items()}, **roles,
                                  "ranking_student_version": student_version, "ctr_model_version": ctr_version,
                                  "count_features": ", ".join(counts.feature_names()),
                                  "quality_source": "truth" if truth is not None else "judge"})


def _gate_rows(rows: pd.DataFrame, n_impressions: int, seed: int) -> pd.DataFrame:
    from training.ranking.tradeoff import labelled_impressions

    test = labelled_impressions(rows[rows["part"] == "test"])
    if test.empty:
        raise ValueError("no partition-day impression has quality labels for all its pairs: materialise "
                         "quality_labels for this partition, or give a labels_file covering them")
    return sample_impressions(test, n_impressions, seed)


def _version_metrics(version: str, rows: pd.DataFrame) -> dict[str, float]:
    """A registered ranker version loaded back from the registry, scored on ``rows`` at its own λ."""
    model = load_version("ranker", version)
    scored = model.predict(rows.rename(columns={"candidate_id": "news_id"}))
    scores = scored["score"].to_numpy(np.float64)
    if not np.isfinite(scores).all():
        raise ValueError(f"ranker version {version} returned non-finite scores")
    return quality_ranking_metrics(rows, scores)


@asset(group_name="ranking", partitions_def=daily_partitions, kinds={"lightgbm", "mlflow"},
       check_specs=[gate_check_spec("ranker", KeepsClicksGainsQuality())])
def ranker(context: AssetExecutionContext, config: RankerConfig, ranking_features: pd.DataFrame,
           recall_candidates: pd.DataFrame, popularity_baseline: pd.DataFrame, mlflow_tracking: MlflowTracking):
    """Train both LightGBM stages (fit days, early stopping on the early-stopping day), choose λ on the selection
    day (``training.ranking.tradeoff.fit_ranker``: right-most λ within one bootstrap SE of the best
    QF-ClickNDCG@5; its curve logged as CSV and PNG), register ``ranker`` (both boosters, λ, μ, σ, the feature
    list and the served candidates' feature rows) and gate it on the partition day: RecoDCG@5 above the
    popularity floor and not below the champion's, ClickNDCG@5 at most ``click_tolerance`` below."""
    from serving.ranker_model import RankerPyfunc, log_ranker, ranker_signature
    from training.ranking.tradeoff import fit_ranker, plot_tradeoff

    criterion = KeepsClicksGainsQuality(click_tolerance=config.click_tolerance)
    with mlflow_tracking.asset_run(context, params=config.model_dump()) as run:
        fitted, choice = fit_ranker(ranking_features, _stage_config(config), config.lambda_tolerance)
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
        related = ranking_features[ranking_features["part"] == "related"]
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
        gate = _gate_rows(ranking_features, config.eval_impressions, 0)
        floor = quality_ranking_metrics(gate, popularity_scores(popularity_baseline, gate))
        decision = decide("ranker", registered.version, lambda version: _version_metrics(version, gate), floor,
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


@asset(group_name="ranking", partitions_def=daily_partitions, kinds={"lightgbm", "mlflow"})
def ranking_tradeoff(context: AssetExecutionContext, config: RankingTradeoffConfig, ranker: RegisteredModel,
                     ranking_features: pd.DataFrame, popularity_baseline: pd.DataFrame,
                     mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Quality-filtered ClickNDCG@5 against RecoDCG@5 for λ from 0 to 1 (step 0.05) of the registered ranker on
    the partition day (PNG), the table of popularity, the CTR model alone, click-only (λ = 0), quality-only
    (λ = 1) and the chosen λ, both stages retrained and λ re-chosen on the selection day for each seed (mean ±
    std), and the protocol's decision (``training.ranking.tradeoff.tradeoff_decision``): the chosen λ against
    λ = 0 by paired bootstrap intervals over the partition day's impressions."""
    from training.ranking.tradeoff import fit_ranker, per_impression, plot_tradeoff, ranker_curve, tradeoff_decision

    rows = _gate_rows(ranking_features, config.eval_impressions, config.sample_seed)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        fitted = load_python_model("ranker", ranker.version).ranker
        curve = ranker_curve(fitted, rows)
        ctr = rows["ctr_score"].to_numpy(np.float64)
        fixed = [metric_row("popularity", quality_ranking_metrics(rows, popularity_scores(popularity_baseline, rows))),
                 metric_row("CTR model alone", quality_ranking_metrics(rows, np.nan_to_num(ctr, nan=-1.0)))]
        per_seed, at_lambda, at_zero, lambdas, held_out = [], [], [], [], True
        for seed in config.seeds:
            model, _ = fit_ranker(ranking_features, dataclasses.replace(fitted.config, seed=seed),
                                  fitted.meta.get("lambda_tolerance_config"))
            held_out = held_out and bool(model.meta["lambda_day_held_out"])
            stage2 = model.score_stage2(rows[model.stage2_features].to_numpy(np.float32))
            quality = rows["student_quality"].to_numpy(np.float64)
            stage1 = model.score_stage1(rows[model.stage1_features].to_numpy(np.float32))
            per_seed.append({**metric_row("stage 1 alone (counts, age, paths)", quality_ranking_metrics(rows, stage1)),
                             "seed": seed, "lambda": float("nan")})
            for name, lam in (("click only (λ = 0)", 0.0), ("quality only (λ = 1)", 1.0), ("chosen λ", model.lam)):
                per_seed.append({**metric_row(name, quality_ranking_metrics(rows, model.combine(stage2, quality, lam))),
                                 "seed": seed, "lambda": lam})
            at_lambda.append(per_impression(model, rows, model.lam))
            at_zero.append(per_impression(model, rows, 0.0))
            lambdas.append(model.lam)
            context.log.info(f"seed {seed}: λ = {model.lam:.2f} ({model.meta['lambda_rule']})")
        verdict = tradeoff_decision(at_lambda, at_zero, lambdas)
        summary = summarise(fixed + per_seed)
        day = context.partition_key
        lambda_days = ", ".join(fitted.meta.get("lambda_days", [])) or "no day"
        table = (f"Rows: mean ± std over seeds {', '.join(map(str, config.seeds))}; "
                 f"{rows['impression_id'].nunique():,} "
                 f"labelled impressions of {day}; λ chosen per seed on {lambda_days} "
                 f"({'held out' if held_out else 'NOT held out: the window is too short for a selection day'}).\n\n"
                 + metrics_markdown(summary, baseline="click only (λ = 0)") + "\n"
                 + verdict.markdown(list(config.seeds), day) + "\n"
                 + schedule_note("ranking_tradeoff", config) + "\n")
        chosen = float(fitted.lam)
        at = curve.loc[np.isclose(curve["lam"], chosen)].iloc[0]
        zero = curve.iloc[0]
        png = model_dir("ranking_tradeoff", context.partition_key, context.run.run_id) / "tradeoff.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        plot_tradeoff(curve, chosen, png, baselines={
            "popularity": (fixed[0]["reco_dcg5"], fixed[0]["qf_click_ndcg5"]),
            "CTR model alone": (fixed[1]["reco_dcg5"], fixed[1]["qf_click_ndcg5"])})
        mlflow.log_artifact(str(png))
        mlflow.log_text(curve.to_csv(index=False), "tradeoff_curve.csv")
        mlflow.log_text(table, "tradeoff.md")
        mlflow.log_text(pd.DataFrame(per_seed).to_csv(index=False), "tradeoff_per_seed.csv")
        mlflow.log_text(summary.to_csv(index=False), "tradeoff_table.csv")
        gain = float(at["reco_dcg5"] - zero["reco_dcg5"])
        mlflow.log_metrics({"lambda": chosen, "reco_dcg5_at_lambda": float(at["reco_dcg5"]),
                            "qf_click_ndcg5_at_lambda": float(at["qf_click_ndcg5"]),
                            "reco_dcg5_gain_over_click_only": gain, **verdict.metrics()})
        mlflow.set_tags({"ranker.version": ranker.version, "tradeoff.decision": verdict.verdict,
                         "tradeoff.decision_text": verdict.text(), "lambda_day_held_out": str(held_out).lower()})
    context.log.info(f"trade-off on {context.partition_key} (ranker v{ranker.version}, λ = {chosen:.2f}, "
                     f"RecoDCG@5 {gain * 100:+.2f} over click-only; {verdict.text()}):\n{table}")
    return Output(curve, metadata={
        "ranker_version": ranker.version, "lambda": chosen, "reco_dcg5_gain_over_click_only": round(gain, 4),
        "decision": verdict.verdict, "decision_text": verdict.text(), "lambda_day_held_out": held_out,
        "lambda_per_seed": ", ".join(f"{lam:.2f}" for lam in lambdas),
        "curve": png_markdown(png, "quality-filtered ClickNDCG@5 against RecoDCG@5 over λ"),
        "table": MetadataValue.md(table),
    })
