"""Data assets: the DVC-versioned MIND catalogue and behaviour log, and their daily partitions."""
from pathlib import Path

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output, asset

from assets.figures import png_markdown
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from training.data.prepared import BehaviorLog, load_behaviors, load_news
from training.settings import model_dir


@asset(group_name="data", kinds={"parquet", "dvc"})
def mind_news(context: AssetExecutionContext, dvc_data: DvcData,
              mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """The news catalogue (news.tsv), validated, at the data version recorded in dvc.lock."""
    version = dvc_data.data_version()
    with mlflow_tracking.asset_run(context, data_version=version):
        news = load_news(dvc_data.prepared_path)
        report = dvc_data.prepare_report()
        mlflow.log_metrics({"n_news": len(news), "n_categories": news["category"].nunique(),
                            "bad_rows": report["bad_rows"].get("news.tsv", 0)})
        mlflow.log_dict(report, "prepare_report.json")
    counts = news["category"].value_counts()
    return Output(news, data_version=DataVersion(version), metadata={
        "n_news": len(news),
        "n_categories": int(news["category"].nunique()),
        "news_per_category": MetadataValue.md(counts.to_frame("news").to_markdown()),
    })


@asset(group_name="data", kinds={"parquet", "dvc"})
def mind_behaviors(context: AssetExecutionContext, dvc_data: DvcData,
                   mlflow_tracking: MlflowTracking) -> Output[BehaviorLog]:
    """All impressions (exploded to candidates) and histories, with news missing from the catalogue flagged."""
    version = dvc_data.data_version()
    with mlflow_tracking.asset_run(context, data_version=version):
        log = load_behaviors(dvc_data.prepared_path)
        report = dvc_data.prepare_report()
        missing = report["missing_news"]
        mlflow.log_metrics({
            "n_impressions": len(log.histories), "n_candidates": len(log.impressions),
            "missing_news_candidate_fraction": missing["candidate_fraction"],
            "missing_news_history_fraction": missing["history_fraction"],
            "bad_rows": report["bad_rows"].get("behaviors.tsv", 0),
        })
        mlflow.log_dict(report, "prepare_report.json")
    if missing["candidate_rows"]:
        context.log.warning(
            f"{missing['candidate_rows']} candidates ({missing['candidate_fraction']:.1%}) reference "
            f"{missing['distinct_candidate_ids']} news ids absent from news.tsv; they keep ID-only features"
        )
    return Output(log, data_version=DataVersion(version), metadata={
        "n_impressions": len(log.histories),
        "n_candidates": len(log.impressions),
        "days": ", ".join(log.days),
        "missing_news_candidate_fraction": float(missing["candidate_fraction"]),
    })


def click_figures(log: BehaviorLog, news: pd.DataFrame, out: Path, day: str) -> dict[str, tuple[Path, str]]:
    """The day's click figures written to ``out``: metadata key -> (PNG, caption)."""
    from training.plots.click_heatmaps import ctr_by_history_length, ctr_by_hour, plot_click_matrix
    from training.plots.treemap import category_counts, plot_treemap

    drawings = (
        ("ctr_heatmap_hour", f"CTR by category and hour of day (UTC), {day}",
         lambda path, title: plot_click_matrix(ctr_by_hour(log, news), path, title)),
        ("ctr_heatmap_history", f"CTR by category and user-history length, {day}",
         lambda path, title: plot_click_matrix(ctr_by_history_length(log, news), path, title)),
        ("treemap", f"Candidates shown (area) and CTR (colour) by category/subcategory, {day}",
         lambda path, title: plot_treemap(category_counts(log, news), path, title)),
    )
    return {key: (draw(out / f"{key}.png", caption), caption) for key, caption, draw in drawings}


@asset(group_name="data", partitions_def=daily_partitions, kinds={"parquet"})
def impressions(context: AssetExecutionContext, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame,
                mlflow_tracking: MlflowTracking) -> Output[BehaviorLog]:
    """The impressions of one UTC day (the partition) with their histories; CTR heatmaps (category × hour of
    day, category × user-history length) and a category/subcategory treemap, logged to MLflow."""
    day = context.partition_key
    with mlflow_tracking.asset_run(context) as run:
        version = run.data.tags["data.version"]  # the version mind_behaviors was built from
        if day not in mind_behaviors.days:
            raise ValueError(f"partition {day} has no impressions in data version {version}; "
                             f"days present: {', '.join(mind_behaviors.days)}")
        log = mind_behaviors.select_days([day])
        ctr = float((log.impressions["label"] == 1).mean())
        mlflow.log_metrics({"n_impressions": len(log.histories), "n_candidates": len(log.impressions), "ctr": ctr})
        figures = click_figures(log, mind_news, model_dir("impressions", day, context.run.run_id), day)
        for png, _ in figures.values():
            mlflow.log_artifact(str(png))
    return Output(log, data_version=DataVersion(f"{version}:{day}"), metadata={
        "n_impressions": len(log.histories), "n_candidates": len(log.impressions), "ctr": ctr,
        **{key: png_markdown(png, caption) for key, (png, caption) in figures.items()},
    })
