"""The ranker on the report (partition) day: the labelled slice it is judged on (``report_rows``), a registered
version's metrics for the champion gate (``served_metrics``), the fixed baselines (``baseline_rows``), both
stages retrained per seed against click-only and quality-only ranking (``retrain_per_seed``) and the
trade-off table of those (``tradeoff_markdown``)."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.ltr.stages import QUALITY_FEATURE, RankerConfig
from training.ltr.tradeoff import (
    TradeoffDecision,
    fit_ranker,
    labelled_impressions,
    per_impression,
    tradeoff_decision,
)
from training.quality.evaluation import metric_row, metrics_markdown, quality_ranking_metrics, sample_impressions
from training.registry import finite_scores

#: Row names of the per-seed table, in its order; ``CLICK_ONLY`` is the baseline the table's differences use.
STAGE1_ALONE = "stage 1 alone (counts, age, paths)"
CLICK_ONLY = "click only (λ = 0)"
QUALITY_ONLY = "quality only (λ = 1)"
CHOSEN = "chosen λ"


def report_rows(rows: pd.DataFrame, n_impressions: int, seed: int) -> pd.DataFrame:
    """The ``test`` part's impressions whose every pair has a quality label, a seeded sample of at most
    ``n_impressions`` (0: all); ``ValueError`` when none is labelled."""
    test = labelled_impressions(rows[rows["part"] == "test"])
    if test.empty:
        raise ValueError("no partition-day impression has quality labels for all its pairs: materialise "
                         "quality_labels for this partition, or give a labels_file covering them")
    return sample_impressions(test, n_impressions, seed)


def served_metrics(model: Any, rows: pd.DataFrame, version: str) -> dict[str, float]:
    """Quality metrics of a loaded registered ``ranker`` ``version`` (its pyfunc, at its own λ) on labelled
    ``rows``; ``ValueError`` when it returns a non-finite score."""
    scored = model.predict(rows.rename(columns={"candidate_id": "news_id"}))
    return quality_ranking_metrics(rows, finite_scores(scored["score"], "ranker", version))


def baseline_rows(rows: pd.DataFrame, popularity: np.ndarray) -> list[dict[str, Any]]:
    """``metric_row``s of ``popularity`` (its score per row) and of the CTR model alone (``ctr_score``; rows
    without one, unknown users, rank last)."""
    ctr = rows["ctr_score"].to_numpy(np.float64)
    return [metric_row("popularity", quality_ranking_metrics(rows, popularity)),
            metric_row("CTR model alone", quality_ranking_metrics(rows, np.nan_to_num(ctr, nan=-1.0)))]


@dataclass(frozen=True)
class SeedRuns:
    """Both stages retrained once per seed and measured on the report rows."""

    rows: list[dict[str, Any]]                   # metric rows (``metric_row`` + seed, lambda) of every ranker and seed
    at_lambda: list[dict[str, np.ndarray]]  # per seed: ``per_impression`` at its chosen λ
    at_zero: list[dict[str, np.ndarray]]    # per seed: ``per_impression`` at λ = 0
    lambdas: list[float]                  # per seed: the chosen λ
    held_out: bool                        # λ was chosen on a held-out day for every seed

    def decision(self) -> TradeoffDecision:
        """``tradeoff_decision`` of the chosen λ against λ = 0."""
        return tradeoff_decision(self.at_lambda, self.at_zero, self.lambdas)


def retrain_per_seed(features: pd.DataFrame, rows: pd.DataFrame, config: RankerConfig, tolerance: float | None,
                     seeds: Sequence[int], log: Callable[[str], None] = print) -> SeedRuns:
    """For each seed, ``fit_ranker`` on ``features`` with ``config`` at that seed and λ ``tolerance``, then on the
    labelled report ``rows``: stage 1 alone, click only (λ = 0), quality only (λ = 1) and the chosen λ.
    ``log`` gets each seed's λ and its rule."""
    measured: list[dict[str, Any]] = []
    at_lambda, at_zero, lambdas, held_out = [], [], [], True
    for seed in seeds:
        model, _ = fit_ranker(features, dataclasses.replace(config, seed=seed), tolerance)
        held_out = held_out and bool(model.meta["lambda_day_held_out"])
        stage2 = model.score_stage2(rows[model.stage2_features].to_numpy(np.float32))
        quality = rows[QUALITY_FEATURE].to_numpy(np.float64)
        stage1 = model.score_stage1(rows[model.stage1_features].to_numpy(np.float32))
        measured.append({**metric_row(STAGE1_ALONE, quality_ranking_metrics(rows, stage1)),
                         "seed": seed, "lambda": float("nan")})
        for name, lam in ((CLICK_ONLY, 0.0), (QUALITY_ONLY, 1.0), (CHOSEN, model.lam)):
            measured.append({**metric_row(name, quality_ranking_metrics(rows, model.combine(stage2, quality, lam))),
                             "seed": seed, "lambda": lam})
        at_lambda.append(per_impression(model, rows, model.lam))
        at_zero.append(per_impression(model, rows, 0.0))
        lambdas.append(model.lam)
        log(f"seed {seed}: λ = {model.lam:.2f} ({model.meta['lambda_rule']})")
    return SeedRuns(measured, at_lambda, at_zero, lambdas, held_out)


def tradeoff_markdown(summary: pd.DataFrame, decision: TradeoffDecision, seeds: Sequence[int], day: str,
                      n_impressions: int, lambda_days: Sequence[str], held_out: bool) -> str:
    """The trade-off table: what its rows rest on (seeds, ``n_impressions`` labelled impressions of ``day``,
    the λ day(s) and whether held out), the ``summarise``d metrics against click-only, then the decision."""
    where = ", ".join(lambda_days) or "no day"
    held = "held out" if held_out else "NOT held out: the window is too short for a selection day"
    return (f"Rows: mean ± std over seeds {', '.join(map(str, seeds))}; {n_impressions:,} "
            f"labelled impressions of {day}; λ chosen per seed on {where} ({held}).\n\n"
            + metrics_markdown(summary, baseline=CLICK_ONLY) + "\n"
            + decision.markdown(list(seeds), day) + "\n")
