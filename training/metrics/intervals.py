"""Uncertainty of reported figures: mean ± std over seeds and paired bootstrap intervals.

The protocol of docs/explore_further_protocol.md: every table row is the mean ± std over seeds; every
difference the text claims is the mean of per-seed differences with a 95 % **paired** bootstrap interval
over evaluation units (impressions, triggers or golden pairs): the same resampled units for both arms.

Inputs are per-unit values (e.g. one RecoDCG@5 per impression), so the metric of a resample is the mean of
its units. With several seeds, the arrays are ``(n_seeds, n_units)`` and each resample averages over seeds
first, so the interval covers the seed mean.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

N_RESAMPLES = 1000  #: bootstrap resamples of the protocol
LEVEL = 0.95        #: two-sided interval level of the protocol


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided percentile-bootstrap interval and the bootstrap standard error."""

    estimate: float
    low: float
    high: float
    std_error: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def verdict(self) -> str:
        """``above 0`` / ``below 0`` / ``contains 0``: the protocol's beats / loses / ties."""
        return "above 0" if self.low > 0 else "below 0" if self.high < 0 else "contains 0"

    def format(self, scale: float = 1.0, digits: int = 2) -> str:
        """E.g. ``+4.58 [+3.09, +6.09]`` (``scale=100`` for the tables' x100)."""
        f = f"{{:+.{digits}f}}"
        return f"{f.format(self.estimate * scale)} [{f.format(self.low * scale)}, {f.format(self.high * scale)}]"


def _units(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected (units,) or (seeds, units), got shape {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: no evaluation units")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def _check(level: float, n_resamples: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")


def _resamples(n_units: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Blocks of resampled unit indices, ``(block, n_units)``; at most 100 resamples a block (bounded memory)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, 100):
        yield rng.integers(0, n_units, size=(min(start + 100, n_resamples) - start, n_units))


def _interval(estimate: float, resampled: np.ndarray, level: float) -> Interval:
    alpha = (1 - level) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    std_error = float(resampled.std(ddof=1)) if resampled.size > 1 else 0.0
    return Interval(float(estimate), float(low), float(high), std_error)


def bootstrap(values: ArrayLike, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
              seed: int = 0) -> Interval:
    """Interval of the mean of per-unit ``values`` (``(units,)`` or ``(seeds, units)``), resampling units."""
    arr = _units(values, "values")
    _check(level, n_resamples)
    per_unit = arr.mean(axis=0)   # seeds averaged first: the interval covers the seed mean
    means = np.concatenate([per_unit[idx].mean(axis=1) for idx in _resamples(per_unit.size, n_resamples, seed)])
    return _interval(per_unit.mean(), means, level)


def bootstrap_statistic(n_units: int, statistic: Callable[[np.ndarray], float], n_resamples: int = N_RESAMPLES,
                        level: float = LEVEL, seed: int = 0) -> Interval:
    """Interval of a statistic that is not a per-unit mean (e.g. pairwise accuracy over golden pairs):
    ``statistic(indices)`` is computed on all ``n_units`` units (``np.arange``) for the estimate and on each
    resample of unit indices (the same draws as :func:`bootstrap`'s) for the interval."""
    if n_units < 1:
        raise ValueError(f"n_units: no evaluation units (got {n_units})")
    _check(level, n_resamples)
    values = np.array([statistic(idx) for block in _resamples(n_units, n_resamples, seed) for idx in block],
                      dtype=np.float64)
    return _interval(statistic(np.arange(n_units)), values, level)


def paired_difference(a: ArrayLike, b: ArrayLike, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                      seed: int = 0) -> Interval:
    """Interval of mean(a) − mean(b) over the same units (``a`` and ``b`` aligned unit by unit)."""
    arr_a, arr_b = _units(a, "a"), _units(b, "b")
    if arr_a.shape[1] != arr_b.shape[1]:
        raise ValueError(f"paired arms must cover the same units: a has {arr_a.shape[1]}, b has {arr_b.shape[1]}")
    return bootstrap(arr_a.mean(axis=0) - arr_b.mean(axis=0), n_resamples, level, seed)


def mean_std(per_seed: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single seed) of per-seed figures."""
    arr = np.asarray(per_seed, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("no seeds")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def format_mean_std(per_seed: ArrayLike, scale: float = 1.0, digits: int = 2) -> str:
    """E.g. ``42.17 ± 0.23`` (a single seed: ``42.17``)."""
    values = np.asarray(per_seed, dtype=np.float64).ravel()
    mean, std = mean_std(values)
    text = f"{mean * scale:.{digits}f}"
    return text if values.size == 1 else f"{text} ± {std * scale:.{digits}f}"
