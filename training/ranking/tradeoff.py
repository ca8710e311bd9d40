"""The quality/click trade-off of the final score (1 − λ)·z(stage2) + λ·z(quality) ("Explore Further" §4.7).

``tradeoff_curve`` measures RecoDCG@5, ClickNDCG@5 and quality-filtered ClickNDCG@5 at every λ of a grid,
``choose_lambda`` applies the paper's rule and ``plot_tradeoff`` draws the curve.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.metrics.quality import click_ndcg, quality_filtered_click_ndcg, reco_dcg
from training.ranking.stages import combine_scores

LAMBDAS = np.round(np.arange(0, 1.0001, 0.05), 2)
CURVE_COLUMNS = ("lam", "qf_click_ndcg5", "reco_dcg5", "click_ndcg5")


def tradeoff_curve(group_ids: ArrayLike, clicks: ArrayLike, quality: ArrayLike, stage2: ArrayLike,
                   quality_scores: ArrayLike, mu: dict[str, float], sigma: dict[str, float],
                   lambdas: ArrayLike = LAMBDAS) -> pd.DataFrame:
    """One row per λ: the metrics@5 of ranking each group (contiguous rows) by the λ combination of
    ``stage2`` scores and ``quality_scores`` (the student's quality head), judged by ``clicks`` and the
    ``quality`` grades (0-4). ``qf_click_ndcg5`` is NaN when no group keeps a click of good quality."""
    rows = []
    for lam in np.asarray(lambdas, dtype=np.float64):
        scores = combine_scores(stage2, quality_scores, float(lam), mu, sigma)
        try:
            qf = quality_filtered_click_ndcg(group_ids, clicks, quality, scores, 5)
        except ValueError as exc:
            if "no group with a click is left" not in str(exc):
                raise
            qf = float("nan")
        rows.append({"lam": float(lam), "qf_click_ndcg5": qf, "reco_dcg5": reco_dcg(group_ids, quality, scores, 5),
                     "click_ndcg5": click_ndcg(group_ids, clicks, scores, 5)})
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def choose_lambda(curve: pd.DataFrame, tolerance: float = 0.0) -> float:
    """The paper's rule: the right-most (largest) λ whose quality-filtered ClickNDCG@5 is within
    ``tolerance`` of the curve's maximum, i.e. as much quality as possible without losing clicks that matter.
    NaN points are ignored."""
    missing = [c for c in ("lam", "qf_click_ndcg5") if c not in curve.columns]
    if missing:
        raise ValueError(f"curve lacks column(s) {missing}")
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    qf = curve["qf_click_ndcg5"].to_numpy(np.float64)
    lam = curve["lam"].to_numpy(np.float64)
    finite = np.isfinite(qf)
    if not finite.any():
        raise ValueError("qf_click_ndcg5 is NaN at every λ; no λ to choose")
    within = finite & (qf >= qf[finite].max() - tolerance)
    return float(lam[within].max())


def plot_tradeoff(curve: pd.DataFrame, chosen: float, out_png: str | Path,
                  baselines: dict[str, tuple[float, float]] | None = None) -> Path:
    """PNG (150 dpi) of quality-filtered ClickNDCG@5 against RecoDCG@5 along λ, labels every 0.2, the chosen λ
    highlighted; ``baselines`` maps a name to its (RecoDCG@5, QF-ClickNDCG@5) point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = curve.sort_values("lam").reset_index(drop=True)
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x, y, lam = curve["reco_dcg5"].to_numpy(), curve["qf_click_ndcg5"].to_numpy(), curve["lam"].to_numpy()
    ax.plot(x, y, "-o", color="tab:blue", markersize=3, label="ranker, λ from 0 to 1")
    for xi, yi, li in zip(x, y, lam):
        if np.isclose(li * 5, round(li * 5)):
            ax.annotate(f"λ={li:.1f}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    at = np.flatnonzero(np.isclose(lam, chosen))
    if at.size:
        ax.plot(x[at[0]], y[at[0]], "*", color="tab:red", markersize=14, label=f"chosen λ={chosen:.2f}")
    for i, (name, (bx, by)) in enumerate((baselines or {}).items()):
        ax.plot(bx, by, "s", color=f"C{(i + 2) % 10}", markersize=7, label=name)
    ax.set_xlabel("RecoDCG@5 (quality of the top 5)")
    ax.set_ylabel("quality-filtered ClickNDCG@5")
    ax.set_title("Related news: quality / click trade-off along λ")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    return out
