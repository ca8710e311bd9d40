"""A feature ablation of the ranker on the report day: both LightGBM stages retrained per seed with and without
some feature columns on the same rows, each at its own λ chosen on the selection day (``tradeoff.fit_ranker``),
and the paired differences on the same labelled report impressions."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.ltr.stages import QUALITY_FEATURE, RankerConfig
from training.ltr.tradeoff import fit_ranker
from training.metrics.intervals import Interval
from training.quality.evaluation import (
    metric_row,
    paired_differences,
    per_impression_metrics,
    quality_ranking_metrics,
    stack_seeds,
    summarise,
)


@dataclass(frozen=True)
class FeatureAblation:
    """``summary``: ``summarise``'s frame of the two rankers (``without``, then ``with``); ``differences``:
    with − without per metric key (``paired_differences``); ``lambdas``: ranker -> chosen λ per seed;
    ``importance``: per seed, the share of stage 2's total gain that the ablated columns take in ``with``."""

    without: str
    with_: str
    summary: pd.DataFrame
    differences: dict[str, Interval]
    lambdas: dict[str, list[float]]
    importance: list[float]


def feature_ablation(features: pd.DataFrame, report: pd.DataFrame, columns: Sequence[str], config: RankerConfig,
                     tolerance: float | None, seeds: Sequence[int], names: tuple[str, str],
                     log: Callable[[str], None] = print) -> FeatureAblation:
    """``features``: ``ltr_features`` rows holding ``columns``; ``report``: the labelled report rows (the same
    columns); ``names``: (without, with). See the module docstring."""
    missing = [c for c in columns if c not in features.columns or c not in report.columns]
    if missing:
        raise ValueError(f"the ablated column(s) {missing} are not in the feature and report rows")
    if not seeds:
        raise ValueError("feature_ablation needs at least one seed")
    without, with_ = names
    frames = {without: features.drop(columns=list(columns)), with_: features}
    rows: list[dict[str, Any]] = []
    units: dict[str, list[dict[str, np.ndarray]]] = {without: [], with_: []}
    lambdas: dict[str, list[float]] = {without: [], with_: []}
    importance: list[float] = []
    quality = report[QUALITY_FEATURE].to_numpy(np.float64)
    for seed in seeds:
        for name, frame in frames.items():
            model, _ = fit_ranker(frame, dataclasses.replace(config, seed=seed), tolerance)
            stage2 = model.score_stage2(report[model.stage2_features].to_numpy(np.float32))
            scores = model.combine(stage2, quality, model.lam)
            rows.append({**metric_row(name, quality_ranking_metrics(report, scores)), "seed": seed})
            units[name].append(per_impression_metrics(report, scores))
            lambdas[name].append(float(model.lam))
            if name == with_:
                gain = model.stage2.feature_importance("gain")
                own = sum(gain[model.stage2_features.index(c)] for c in columns)
                importance.append(float(own / gain.sum()) if gain.sum() > 0 else 0.0)
            log(f"seed {seed}, {name}: λ = {model.lam:.2f}")
    differences = paired_differences(stack_seeds(units), baseline=without)[with_]
    return FeatureAblation(without, with_, summarise(rows), differences, lambdas, importance)
