"""Training curves of one run: each metric's history against the step, one panel per metric family.

A family is a metric's name without its split (``train``/``val``/``valid``/``test`` prefix, with ``/`` or
``_``) and without Lightning's ``_step``/``_epoch`` suffix: ``train/loss_step``, ``train/loss_epoch`` and
``val/loss`` share the panel ``loss``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from training.plots.save import save_png  # noqa: E402

#: Counters that Lightning logs beside the metrics; not curves.
NOT_CURVES = frozenset({"epoch", "step"})

_SPLIT = re.compile(r"^(train|val|valid|validation|test)[/_](.+)$")
_GRANULARITY = re.compile(r"^(.+)_(step|epoch)$")


def metric_family(name: str) -> tuple[str, str]:
    """``(family, series label)`` of a metric name, e.g. ``train/loss_epoch`` -> ``("loss", "train (epoch)")``."""
    split, rest = "", name
    if match := _SPLIT.match(name):
        split, rest = match.groups()
    granularity = ""
    if match := _GRANULARITY.match(rest):
        rest, granularity = match.groups()
    label = split or rest
    return rest, f"{label} ({granularity})" if granularity else label


def curve_families(
        histories: Mapping[str, Sequence[tuple[int, float]]]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Group the histories with more than one point into families: ``{family: {series label: points}}``
    (points sorted by step, non-finite values dropped)."""
    families: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for name in sorted(histories):
        if name in NOT_CURVES:
            continue
        points = sorted((int(s), float(v)) for s, v in histories[name] if math.isfinite(float(v)))
        if len(points) > 1:
            family, label = metric_family(name)
            families.setdefault(family, {})[label if label != family else name] = points
    return families


def plot_training_curves(histories: Mapping[str, Sequence[tuple[int, float]]], path: str | Path,
                         title: str, x_label: str = "step") -> Path:
    """Save the curves of ``histories`` ``{metric: [(step, value), ...]}`` as PNG, one panel per family.
    Raises ``ValueError`` when no metric has more than one point."""
    families = curve_families(histories)
    if not families:
        raise ValueError(f"{title}: no metric has more than one point ({', '.join(sorted(histories)) or 'none'})")
    n = len(families)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows + 0.6), dpi=110, squeeze=False)
    for ax, (family, series) in zip(axes.flat, families.items()):
        for label, points in series.items():
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) <= 20 else None, markersize=3, linewidth=1.2,
                    label=label)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel(x_label, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps and epochs are whole numbers
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    return save_png(fig, path)
