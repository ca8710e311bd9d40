"""Evaluation metrics: MIND's official ranking metrics, quality-aware ranking metrics and the MIND submission format."""
from training.metrics.mind import (
    METRIC_KEYS,
    METRIC_LABELS,
    MindMetrics,
    format_metrics_table,
    impression_metrics,
    mind_metrics,
    rank_within_impressions,
)
from training.metrics.quality import (
    click_ndcg,
    click_ndcg_per_group,
    pairwise_accuracy,
    quality_filtered_click_ndcg,
    quality_filtered_click_ndcg_per_group,
    reco_dcg,
    reco_dcg_per_group,
)
from training.metrics.submission import (
    PredictionFormatError,
    PredictionMismatchError,
    read_prediction_file,
    score_prediction,
    write_prediction_file,
)

__all__ = [
    "METRIC_KEYS",
    "METRIC_LABELS",
    "MindMetrics",
    "PredictionFormatError",
    "PredictionMismatchError",
    "click_ndcg",
    "click_ndcg_per_group",
    "format_metrics_table",
    "impression_metrics",
    "mind_metrics",
    "pairwise_accuracy",
    "quality_filtered_click_ndcg",
    "quality_filtered_click_ndcg_per_group",
    "rank_within_impressions",
    "read_prediction_file",
    "reco_dcg",
    "reco_dcg_per_group",
    "score_prediction",
    "write_prediction_file",
]
