"""The quality/click trade-off of the final score (1 − λ)·z(stage2) + λ·z(quality) ("Explore Further" §4.7),
under the protocol of docs/explore_further_protocol.md (comparison 5).

* parts by day role: ``row_parts`` gives each feature row its part (``train`` = fit days, ``valid`` = the
  early-stopping day, ``selection`` = the λ-selection day, ``test`` = the report day) and ``split_parts``
  takes them apart for ``fit_ranker``: the stages train on ``train`` and early-stop on ``valid``; λ is chosen
  on ``selection``, which no learner sees (with a window too short for its own day, on ``valid``, and the
  choice says it is not held out);
* the λ rule: ``tradeoff_curve`` measures RecoDCG@5, ClickNDCG@5 and quality-filtered ClickNDCG@5 at every λ
  of the grid (``curve_point`` reads one λ off it), ``choose_lambda`` takes the right-most λ within a
  tolerance of the curve's maximum and ``select_lambda`` sets that tolerance to the bootstrap standard error
  of QF-ClickNDCG@5 at the maximum;
* the decision: ``tradeoff_decision`` compares the chosen λ with λ = 0 on the report day by paired bootstrap
  intervals over impressions; ``plot_tradeoff`` draws the curve.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.ltr.count_features import STAGE2_EXTRA
from training.ltr.stages import QUALITY_FEATURE, Ranker, RankerConfig, combine_scores, train_ranker
from training.metrics.intervals import N_RESAMPLES, Interval, bootstrap, format_mean_std, paired_difference
from training.metrics.quality import (
    click_ndcg,
    quality_filtered_click_ndcg,
    quality_filtered_click_ndcg_per_group,
    reco_dcg,
)
from training.quality.evaluation import per_impression_metrics

LAMBDAS = np.round(np.arange(0, 1.0001, 0.05), 2)
CURVE_COLUMNS = ("lam", "qf_click_ndcg5", "reco_dcg5", "click_ndcg5")
#: ``ltr_features`` parts of logged rows, by their day's role (``training.data.pairs.ROLES``).
PARTS = ("train", "valid", "selection", "test")
#: Columns of ``ltr_features`` that are not model features.
NON_FEATURES = ("impression_id", "day", "position", "trigger_id", "candidate_id", "clicked", "quality", "part")


# -- parts by day role ---------------------------------------------------------------------------------------
def row_parts(days: ArrayLike, fit_days: list[str], early_stopping_day: str, selection_day: str,
              test_day: str) -> np.ndarray:
    """The part of each row from its ``day``: ``train`` (fit days), ``valid`` (the early-stopping day),
    ``selection`` (the selection day), ``test`` (the report day). A day with several roles (a window of < 3
    days, ``PairLogs.roles_shared``) takes its first use (fit, then early stopping): such a window has no
    ``selection`` part, and with one day no ``valid`` part either."""
    day = np.asarray(days, dtype=object)
    part = np.full(day.shape, "", dtype=object)
    part[np.isin(day, list(fit_days))] = "train"
    if early_stopping_day not in fit_days:
        part[day == early_stopping_day] = "valid"
    if selection_day not in fit_days and selection_day != early_stopping_day:
        part[day == selection_day] = "selection"
    part[day == test_day] = "test"
    if (part == "").any():
        row = int(np.argmax(part == ""))
        raise ValueError(f"day: row {row} is {day[row]!r}, a day of no role (fit {list(fit_days)}, early stopping "
                         f"{early_stopping_day}, selection {selection_day}, test {test_day})")
    return part


@dataclass(frozen=True)
class RowParts:
    """Logged feature rows taken apart for ``fit_ranker``; ``lambda_rows`` are the rows λ is chosen on:
    ``selection``, else (no selection day of its own) ``valid``, else None."""

    train: pd.DataFrame
    valid: pd.DataFrame | None
    lambda_rows: pd.DataFrame | None
    lambda_part: str           # "selection" | "valid" | ""

    @property
    def lambda_held_out(self) -> bool:
        """True when λ is chosen on a day no learner trained or early-stopped on."""
        return self.lambda_part == "selection"


def split_parts(rows: pd.DataFrame) -> RowParts:
    """``train``, ``valid`` and the λ rows of ``ltr_features``; ``ValueError`` if there is no train row or
    a day sits in two parts (the selection day must be unseen by the stages)."""
    missing = [c for c in ("part", "day") if c not in rows.columns]
    if missing:
        raise ValueError(f"rows lack column(s) {missing}")
    by_part = {p: rows[rows["part"] == p] for p in ("train", "valid", "selection")}
    if by_part["train"].empty:
        raise ValueError("part: no 'train' row to fit the stages on")
    seen: dict[str, str] = {}
    for part, frame in by_part.items():
        for day in frame["day"].unique():
            if day in seen:
                raise ValueError(f"day {day} is in part {seen[day]!r} and in part {part!r}")
            seen[day] = part
    valid = by_part["valid"] if len(by_part["valid"]) else None
    if len(by_part["selection"]):
        return RowParts(by_part["train"], valid, by_part["selection"], "selection")
    if valid is not None:
        return RowParts(by_part["train"], valid, valid, "valid")
    return RowParts(by_part["train"], None, None, "")


def labelled_impressions(rows: pd.DataFrame) -> pd.DataFrame:
    """The impressions whose every pair has a quality label (the metrics need them all)."""
    complete = rows["quality"].notna().groupby(rows["impression_id"]).transform("all")
    return rows[complete.to_numpy()].reset_index(drop=True)


def feature_columns(rows: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(stage-1, stage-2) feature columns of ``ltr_features`` rows."""
    stage2 = [c for c in rows.columns if c not in NON_FEATURES]
    return [c for c in stage2 if c not in STAGE2_EXTRA], stage2


# -- the curve and the λ rule --------------------------------------------------------------------------------
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


def ranker_curve(ranker: Ranker, rows: pd.DataFrame, lambdas: ArrayLike = LAMBDAS) -> pd.DataFrame:
    """``tradeoff_curve`` of ``ranker`` on labelled feature rows."""
    stage2 = ranker.score_stage2(rows[ranker.stage2_features].to_numpy(np.float32))
    return tradeoff_curve(rows["impression_id"], rows["clicked"], rows["quality"], stage2,
                          rows[QUALITY_FEATURE].to_numpy(np.float64), ranker.mu, ranker.sigma, lambdas)


def curve_point(curve: pd.DataFrame, lam: float) -> pd.Series:
    """The curve's row at ``lam`` (compared with ``np.isclose``); ``ValueError`` when ``lam`` is not on it."""
    at = curve.loc[np.isclose(curve["lam"], lam)]
    if at.empty:
        raise ValueError(f"λ = {lam} is not on the curve (λ from {curve['lam'].min()} to {curve['lam'].max()})")
    return at.iloc[0]


def choose_lambda(curve: pd.DataFrame, tolerance: float = 0.0) -> float:
    """The paper's rule: the right-most (largest) λ whose quality-filtered ClickNDCG@5 is within
    ``tolerance`` of the curve's maximum, i.e. as much quality as possible without losing clicks that matter.
    NaN points are ignored; tolerance 0 gives the (right-most) argmax."""
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


@dataclass(frozen=True)
class LambdaChoice:
    """λ chosen on one day's labelled impressions, with what the rule used."""

    lam: float
    best_lam: float            # the (right-most) argmax of QF-ClickNDCG@5
    std_error: float           # bootstrap SE of QF-ClickNDCG@5 at best_lam, over the day's impressions
    tolerance: float           # the rule's tolerance: std_error unless a fixed one was given
    fixed_tolerance: bool
    days: tuple[str, ...]
    held_out: bool             # no learner trained or early-stopped on these days
    n_impressions: int
    curve: pd.DataFrame = field(repr=False)

    def rule(self) -> str:
        what = f"fixed tolerance {self.tolerance:.4f}" if self.fixed_tolerance else \
            f"one bootstrap SE ({self.std_error:.4f}, {N_RESAMPLES:,} resamples)"
        where = "the held-out selection day" if self.held_out else \
            "the early-stopping day (the window is too short for a selection day of its own: not held out)"
        return (f"right-most λ whose quality-filtered ClickNDCG@5 on {', '.join(self.days)} ({where}, "
                f"{self.n_impressions:,} impressions) is within {what} of the curve's maximum "
                f"(at λ = {self.best_lam:.2f})")

    def meta(self) -> dict[str, Any]:
        """What the saved ranker and the asset record of the choice."""
        return {"lambda_rule": self.rule(), "lambda_std_error": self.std_error, "lambda_tolerance": self.tolerance,
                "lambda_fixed_tolerance": self.fixed_tolerance, "lambda_best": self.best_lam,
                "lambda_days": list(self.days), "lambda_day_held_out": self.held_out,
                "lambda_impressions": self.n_impressions}


def select_lambda(ranker: Ranker, rows: pd.DataFrame, tolerance: float | None = None,
                  held_out: bool = True) -> LambdaChoice:
    """The protocol's λ on labelled feature rows: the right-most λ whose QF-ClickNDCG@5 is within one bootstrap
    standard error (over impressions) of the curve's maximum; ``tolerance`` replaces the SE when given."""
    if tolerance is not None and not tolerance >= 0:
        raise ValueError(f"lambda_tolerance must be >= 0 or None (one bootstrap SE), got {tolerance}")
    curve = ranker_curve(ranker, rows)
    best = choose_lambda(curve, 0.0)
    stage2 = ranker.score_stage2(rows[ranker.stage2_features].to_numpy(np.float32))
    scores = ranker.combine(stage2, rows[QUALITY_FEATURE].to_numpy(np.float64), best)
    per_group = quality_filtered_click_ndcg_per_group(rows["impression_id"], rows["clicked"], rows["quality"],
                                                      scores, 5)
    se = bootstrap(per_group[np.isfinite(per_group)]).std_error
    used = se if tolerance is None else float(tolerance)
    return LambdaChoice(lam=choose_lambda(curve, used), best_lam=best, std_error=se, tolerance=used,
                        fixed_tolerance=tolerance is not None, days=tuple(sorted(rows["day"].unique())),
                        held_out=held_out, n_impressions=int(rows["impression_id"].nunique()), curve=curve)


def fit_ranker(rows: pd.DataFrame, config: RankerConfig, tolerance: float | None = None
               ) -> tuple[Ranker, LambdaChoice | None]:
    """Both stages on the ``train`` part, early-stopped on ``valid``; λ by ``select_lambda`` on the labelled
    impressions of the λ rows (``split_parts``: the selection day, else the early-stopping day); λ = 0 when
    none is labelled. The ranker's meta records the days of each use and the choice."""
    parts = split_parts(rows)
    stage1, stage2 = feature_columns(rows)
    ranker = train_ranker(parts.train, parts.valid, stage1, stage2, config)
    labelled = labelled_impressions(parts.lambda_rows) if parts.lambda_rows is not None else rows.iloc[:0]
    choice = select_lambda(ranker, labelled, tolerance, parts.lambda_held_out) if len(labelled) else None
    ranker.meta.update({"fit_days": sorted(parts.train["day"].unique()),
                        "early_stopping_days": [] if parts.valid is None else sorted(parts.valid["day"].unique())})
    if choice is None:
        ranker.meta.update({"lambda_rule": "no labelled selection or early-stopping day: λ = 0",
                            "lambda_day_held_out": False, "lambda_tolerance": tolerance})
    else:
        ranker.lam = choice.lam
        ranker.meta.update(choice.meta())
    ranker.meta["lambda_tolerance_config"] = tolerance
    return ranker, choice


# -- the report day's decision -------------------------------------------------------------------------------
def per_impression(ranker: Ranker, rows: pd.DataFrame, lam: float) -> dict[str, np.ndarray]:
    """RecoDCG@5 and ClickNDCG@5 of each impression of labelled ``rows`` (contiguous groups, first-appearance
    order; ClickNDCG is NaN without a click) ranked by ``ranker`` at ``lam``."""
    stage2 = ranker.score_stage2(rows[ranker.stage2_features].to_numpy(np.float32))
    return per_impression_metrics(rows, ranker.combine(stage2, rows[QUALITY_FEATURE].to_numpy(np.float64), lam))


@dataclass(frozen=True)
class TradeoffDecision:
    """The protocol's decision: the trade-off "works" when every seed's λ > 0, the paired interval of
    ΔRecoDCG@5 (chosen λ − λ = 0) lies above 0 and ΔClickNDCG@5 loses at most one bootstrap SE of ClickNDCG@5
    at λ = 0 (a gain passes)."""

    lambdas: tuple[float, ...]     # chosen λ per seed
    reco_gain: Interval            # ΔRecoDCG@5: mean of per-seed differences, paired bootstrap over impressions
    click_change: Interval         # ΔClickNDCG@5, over the impressions with a click
    click_std_error: float         # bootstrap SE of ClickNDCG@5 at λ = 0 (seeds averaged): the click tolerance
    n_impressions: int
    n_click_impressions: int

    @property
    def works(self) -> bool:
        return (min(self.lambdas) > 0 and self.reco_gain.low > 0
                and self.click_change.estimate >= -self.click_std_error)

    @property
    def verdict(self) -> str:
        return "works" if self.works else "does not work"

    def text(self) -> str:
        """E.g. ``works: λ = 0.30 > 0; ΔRecoDCG@5 +2.10 [+1.50, +2.70] above 0; ...`` (x100)."""
        lam = format_mean_std(self.lambdas, scale=1.0)
        se = 100 * self.click_std_error
        parts = [f"λ = {lam} {'> 0' if min(self.lambdas) > 0 else '(λ = 0 for some seed)'}",
                 f"ΔRecoDCG@5 {self.reco_gain.format(100)} {self.reco_gain.verdict()}",
                 f"ΔClickNDCG@5 {self.click_change.format(100)} "
                 + (f"within one SE ({se:.2f})" if self.click_change.estimate >= -self.click_std_error
                    else f"loses more than one SE ({se:.2f})")]
        return f"{self.verdict}: " + "; ".join(parts)

    def markdown(self, seeds: list[int], day: str) -> str:
        """The decision row and what it rests on (impressions, seeds, interval method)."""
        return ("| chosen λ | ΔRecoDCG@5 | ΔClickNDCG@5 | SE of ClickNDCG@5 | decision |\n|---:|---:|---:|---:|---|\n"
                f"| {format_mean_std(self.lambdas, scale=1.0)} | {self.reco_gain.format(100)} | "
                f"{self.click_change.format(100)} | {100 * self.click_std_error:.2f} | {self.verdict} |\n\n"
                f"Chosen λ vs λ = 0 (x100) on {day}: {self.n_impressions:,} labelled impressions "
                f"({self.n_click_impressions:,} with a click for ClickNDCG@5), seeds {', '.join(map(str, seeds))} "
                f"(λ mean ± std over seeds); Δ = mean of per-seed differences with a 95 % paired bootstrap interval "
                f"over impressions ({N_RESAMPLES:,} resamples). {self.text()}.\n")

    def metrics(self) -> dict[str, float]:
        return {"delta_reco_dcg5": self.reco_gain.estimate, "delta_reco_dcg5_low": self.reco_gain.low,
                "delta_reco_dcg5_high": self.reco_gain.high, "delta_click_ndcg5": self.click_change.estimate,
                "delta_click_ndcg5_low": self.click_change.low, "delta_click_ndcg5_high": self.click_change.high,
                "click_ndcg5_std_error": self.click_std_error, "tradeoff_works": float(self.works)}


def tradeoff_decision(at_lambda: list[dict[str, np.ndarray]], at_zero: list[dict[str, np.ndarray]],
                      lambdas: list[float]) -> TradeoffDecision:
    """The decision from per-seed ``per_impression`` values at each seed's chosen λ and at λ = 0 (same
    impressions, same order); ClickNDCG@5 over the impressions with a click."""
    if not (len(at_lambda) == len(at_zero) == len(lambdas)) or not lambdas:
        raise ValueError(f"need one entry per seed in at_lambda ({len(at_lambda)}), at_zero ({len(at_zero)}) and "
                         f"lambdas ({len(lambdas)}), at least one")
    arms = {key: (np.stack([s[key] for s in at_lambda]), np.stack([s[key] for s in at_zero]))
            for key in ("reco_dcg5", "click_ndcg5")}
    reco_a, reco_b = arms["reco_dcg5"]
    click_a, click_b = arms["click_ndcg5"]
    clicked = np.isfinite(click_a).all(axis=0) & np.isfinite(click_b).all(axis=0)
    if not clicked.any():
        raise ValueError("click_ndcg5: no impression has a click; ΔClickNDCG@5 is undefined")
    click_a, click_b = click_a[:, clicked], click_b[:, clicked]
    return TradeoffDecision(lambdas=tuple(float(x) for x in lambdas), reco_gain=paired_difference(reco_a, reco_b),
                            click_change=paired_difference(click_a, click_b),
                            click_std_error=bootstrap(click_b).std_error, n_impressions=int(reco_a.shape[1]),
                            n_click_impressions=int(clicked.sum()))


def plot_tradeoff(curve: pd.DataFrame, chosen: float, out_png: str | Path,
                  baselines: dict[str, tuple[float, float]] | None = None, title: str | None = None) -> Path:
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
    ax.set_title(title or "Related news: quality / click trade-off along λ")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    return out
