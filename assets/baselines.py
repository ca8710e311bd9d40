"""The popularity baseline: the floor every model must beat, scored with MIND's metrics."""

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import derived_from, to_training
from training.baselines.popularity import PopularityConfig, score_popularity
from training.data.ceiling import demo_ceiling
from training.data.prepared import BehaviorLog
from training.metrics.mind import format_metrics_table, mind_metrics


@derived_from(PopularityConfig)
class PopularityBaselineConfig(Config):
    """training.baselines.popularity.PopularityConfig's knobs (window_days None: every day before the partition;
    same_day: also the partition's clicks strictly before each impression, causal)."""


@asset(group_name="baselines", partitions_def=daily_partitions, kinds={"mlflow"})
def popularity_baseline(context: AssetExecutionContext, config: PopularityBaselineConfig,
                        mind_behaviors: BehaviorLog, impressions: BehaviorLog, dvc_data: DvcData,
                        mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Recency-weighted click popularity up to each impression (see training.baselines.popularity), scored."""
    day = context.partition_key
    params = to_training(config)
    with mlflow_tracking.asset_run(context, params=vars(config)):
        past = mind_behaviors.before(day).impressions
        if past.empty:
            context.log.warning(f"no days before {day}: every candidate scores 0 (a random-order floor)")
        targets = impressions.impressions
        scores = score_popularity(past, targets, day, params)
        metrics = mind_metrics(targets["impression_id"], targets["label"], scores)
        mlflow.log_metrics({k: float(v) for k, v in metrics.as_dict().items()})
        rows = {"popularity_baseline": metrics}
        ceiling = demo_ceiling(dvc_data.prepare_report()["raw_dir"], day)
        if ceiling:
            rows["demo ceiling (Bayes-optimal)"] = ceiling
            mlflow.log_metric("ceiling_auc", ceiling["auc"])
        table = format_metrics_table(rows)
        mlflow.log_text(table, "metrics.md")
    scored = targets[["impression_id", "position", "news_id", "label"]].assign(score=scores)
    return Output(scored, metadata={
        **{k: float(v) for k, v in metrics.as_dict().items()},
        "metrics": MetadataValue.md(table),
    })
