"""Treemap of the click log: one tile per category/subcategory, area = candidates shown, colour = CTR.

The layout is the squarified treemap of Bruls, Huizing and van Wijk (2000): tiles fill the rectangle
exactly, their areas proportional to the values, with aspect ratios kept near 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle as Patch  # noqa: E402

from training.data.prepared import BehaviorLog  # noqa: E402
from training.plots.candidates import labelled_candidates  # noqa: E402
from training.plots.save import save_png  # noqa: E402


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h


def _worst_ratio(areas: list[float], side: float) -> float:
    """The largest aspect ratio in a row of ``areas`` laid along a side of length ``side``."""
    total = sum(areas)
    return max(side * side * max(areas) / (total * total), total * total / (side * side * min(areas)))


def squarify(values: list[float], rect: Rect) -> list[Rect]:
    """Tiles of ``rect`` with areas proportional to ``values`` (all > 0), returned in the order of ``values``."""
    if not values or any(not v > 0 for v in values):
        raise ValueError(f"squarify needs positive values, got {values}")
    scale = rect.area / sum(values)
    areas = [v * scale for v in values]
    order = sorted(range(len(areas)), key=lambda k: -areas[k])
    tiles: dict[int, Rect] = {}  # position in values -> tile
    x, y, w, h = rect.x, rect.y, rect.w, rect.h
    i = 0
    while i < len(order):
        side = min(w, h)
        row = [order[i]]
        while i + len(row) < len(order) and (_worst_ratio([areas[k] for k in row + [order[i + len(row)]]], side)
                                             <= _worst_ratio([areas[k] for k in row], side)):
            row.append(order[i + len(row)])
        i += len(row)
        last_row = i == len(order)
        thickness = sum(areas[k] for k in row) / min(w, h)  # the row runs along the short side
        if w >= h:  # a column on the left, tiles stacked bottom to top
            thickness = w if last_row else thickness
            pos = y
            for n, k in enumerate(row):
                extent = (y + h - pos) if n == len(row) - 1 else areas[k] / thickness
                tiles[k] = Rect(x, pos, thickness, extent)
                pos += extent
            x, w = x + thickness, w - thickness
        else:  # a row at the bottom, tiles left to right
            thickness = h if last_row else thickness
            pos = x
            for n, k in enumerate(row):
                extent = (x + w - pos) if n == len(row) - 1 else areas[k] / thickness
                tiles[k] = Rect(pos, y, extent, thickness)
                pos += extent
            y, h = y + thickness, h - thickness
    return [tiles[k] for k in range(len(areas))]


def category_counts(log: BehaviorLog, news: pd.DataFrame) -> pd.DataFrame:
    """``category, subcategory, shown, clicks, ctr``: one row per pair, most shown category first and, within
    it, most shown subcategory first."""
    rows = labelled_candidates(log, news)
    table = rows.groupby(["category", "subcategory"])["label"].agg(shown="size", clicks="sum").reset_index()
    table["category_shown"] = table.groupby("category")["shown"].transform("sum")
    table = table.sort_values(["category_shown", "category", "shown", "subcategory"],
                              ascending=[False, True, False, True]).drop(columns="category_shown")
    table["clicks"] = table["clicks"].astype(int)
    table["ctr"] = table["clicks"] / table["shown"]
    return table.reset_index(drop=True)


def treemap_tiles(counts: pd.DataFrame, rect: Rect = Rect(0.0, 0.0, 1.0, 1.0)) -> pd.DataFrame:
    """``counts`` (from :func:`category_counts`) with each subcategory's tile ``x, y, w, h``: categories
    squarified in ``rect``, then each category's subcategories squarified inside its tile."""
    by_category = counts.groupby("category", sort=False)["shown"].sum()
    outer = dict(zip(by_category.index, squarify(by_category.astype(float).tolist(), rect)))
    placed = []
    for category, group in counts.groupby("category", sort=False):
        for (_, row), tile in zip(group.iterrows(), squarify(group["shown"].astype(float).tolist(), outer[category])):
            placed.append({**row.to_dict(), "x": tile.x, "y": tile.y, "w": tile.w, "h": tile.h})
    return pd.DataFrame(placed)


def plot_treemap(counts: pd.DataFrame, path: str | Path, title: str, min_label_fraction: float = 0.015) -> Path:
    """Save the treemap of ``counts`` as PNG; tiles covering at least ``min_label_fraction`` of the picture are
    labelled (when not too thin) with subcategory, shown count and CTR; categories are outlined and named."""
    if counts.empty:
        raise ValueError(f"{title}: no shown candidates to draw")
    tiles = treemap_tiles(counts)
    cmap = plt.get_cmap("viridis")
    vmax = float(tiles["ctr"].max()) or 1.0
    norm = plt.Normalize(0.0, vmax)
    fig, ax = plt.subplots(figsize=(10, 7), dpi=110)
    for t in tiles.itertuples():
        ax.add_patch(Patch((t.x, t.y), t.w, t.h, facecolor=cmap(norm(t.ctr)), edgecolor="white", linewidth=0.8))
        if t.w * t.h >= min_label_fraction and t.w >= 0.06 and t.h >= 0.05:
            ax.text(t.x + t.w / 2, t.y + t.h / 2, f"{t.subcategory}\n{t.shown} shown\nCTR {100 * t.ctr:.1f}%",
                    ha="center", va="center", fontsize=6, color="black" if t.ctr > 0.6 * vmax else "white",
                    clip_on=True)
    for category, group in tiles.groupby("category", sort=False):
        x0, y0 = group["x"].min(), group["y"].min()
        x1, y1 = (group["x"] + group["w"]).max(), (group["y"] + group["h"]).max()
        ax.add_patch(Patch((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="black", linewidth=1.6))
        if (x1 - x0) * (y1 - y0) >= min_label_fraction:
            ax.text(x0 + 0.005, y1 - 0.005, category, ha="left", va="top", fontsize=8, fontweight="bold",
                    color="white", bbox={"facecolor": "black", "alpha": 0.55, "pad": 1, "linewidth": 0})
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\n(area: candidates shown, colour: CTR)", fontsize=10)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="CTR (clicks / candidates shown)")
    return save_png(fig, path)
