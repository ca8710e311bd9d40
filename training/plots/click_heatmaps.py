"""Click-through heatmaps: CTR (clicks / shown candidates) per category × UTC hour of day and per
category × user-history-length bucket, with the counts behind each cell so sparse cells can be greyed."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from training.data.prepared import BehaviorLog  # noqa: E402
from training.plots.candidates import labelled_candidates  # noqa: E402
from training.plots.save import save_png  # noqa: E402

#: User-history-length buckets: (label, smallest length, largest length or None for no bound).
HISTORY_BUCKETS = (("0", 0, 0), ("1-4", 1, 4), ("5-9", 5, 9), ("10-19", 10, 19), ("20-49", 20, 49), ("50+", 50, None))


@dataclass(frozen=True)
class ClickMatrix:
    """Categories (rows, most shown first) × columns: ``shown`` candidates, ``clicks`` and ``ctr``
    (NaN where nothing was shown)."""

    shown: pd.DataFrame
    clicks: pd.DataFrame
    column_title: str

    @property
    def ctr(self) -> pd.DataFrame:
        return self.clicks / self.shown.where(self.shown > 0)


def history_bucket(length: int) -> str:
    """The :data:`HISTORY_BUCKETS` label of a history of ``length`` clicks."""
    for label, low, high in HISTORY_BUCKETS:
        if length >= low and (high is None or length <= high):
            return label
    raise ValueError(f"history length {length} is negative")


def _matrix(rows: pd.DataFrame, column: str, columns: list[Any], title: str) -> ClickMatrix:
    grouped = rows.groupby(["category", column])["label"]
    shown = grouped.size().unstack(fill_value=0).reindex(columns=columns, fill_value=0)
    clicks = grouped.sum().unstack(fill_value=0).reindex(columns=columns, fill_value=0)
    order = shown.sum(axis=1).sort_values(ascending=False, kind="stable").index
    shown, clicks = shown.loc[order].astype(int), clicks.loc[order].astype(int)
    shown.columns.name = clicks.columns.name = title
    return ClickMatrix(shown, clicks, title)


def ctr_by_hour(log: BehaviorLog, news: pd.DataFrame) -> ClickMatrix:
    """CTR per category × UTC hour of the impression (columns 0..23)."""
    return _matrix(labelled_candidates(log, news), "hour", list(range(24)), "hour of day (UTC)")


def ctr_by_history_length(log: BehaviorLog, news: pd.DataFrame) -> ClickMatrix:
    """CTR per category × bucket of the user's history length at the impression (:data:`HISTORY_BUCKETS`)."""
    rows = labelled_candidates(log, news)
    rows["bucket"] = rows["history_length"].map(history_bucket)
    return _matrix(rows, "bucket", [b[0] for b in HISTORY_BUCKETS], "clicks in the user's history")


def plot_click_matrix(matrix: ClickMatrix, path: str | Path, title: str, min_shown: int = 20) -> Path:
    """Save ``matrix`` as a CTR heatmap PNG; cells with fewer than ``min_shown`` candidates are grey.
    Small grids are annotated with CTR (%) and the count of shown candidates."""
    ctr = matrix.ctr.to_numpy(dtype=float)
    shown = matrix.shown.to_numpy()
    n_rows, n_cols = ctr.shape
    if n_rows == 0:
        raise ValueError(f"{title}: no shown candidates to draw")
    masked = np.ma.masked_where(~np.isfinite(ctr) | (shown < min_shown), ctr)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d0d0d0")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * n_cols + 3.0), max(3.0, 0.35 * n_rows + 1.8)), dpi=110)
    grey = np.ma.getmaskarray(masked)
    vmax = float(ctr[~grey].max()) if (~grey).any() and ctr[~grey].max() > 0 else 1.0
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=0.0, vmax=vmax)
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.shown.columns], fontsize=8)
    ax.set_yticks(range(n_rows), [str(r) for r in matrix.shown.index], fontsize=8)
    ax.set_xlabel(matrix.column_title)
    ax.set_ylabel("category")
    ax.set_title(f"{title}\n(grey: fewer than {min_shown} candidates shown)", fontsize=10)
    if n_cols <= 12 and n_rows <= 25:
        for i in range(n_rows):
            for j in range(n_cols):
                text = f"{100 * ctr[i, j]:.1f}%\nn={shown[i, j]}" if shown[i, j] else "n=0"
                light = grey[i, j] or ctr[i, j] > 0.6 * vmax  # dark text on grey and on viridis' yellow end
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color="black" if light else "white")
    fig.colorbar(image, ax=ax, label="CTR (clicks / candidates shown)")
    return save_png(fig, path)
