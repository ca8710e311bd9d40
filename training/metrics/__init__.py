"""Evaluation metrics: MIND's official ranking metrics and the MIND submission format."""
from training.metrics.ranking import (
    METRIC_KEYS,
    METRIC_LABELS,
    MindMetrics,
    format_metrics_table,
    impression_metrics,
    mind_metrics,
    rank_within_impressions,
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
    "format_metrics_table",
    "impression_metrics",
    "mind_metrics",
    "rank_within_impressions",
    "read_prediction_file",
    "score_prediction",
    "write_prediction_file",
]
