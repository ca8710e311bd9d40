"""Vectorised random draws shared by the generator's parts."""
from __future__ import annotations

import numpy as np


def categorical_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a (rows, options) probability matrix."""
    u = rng.random(int(probs.shape[0]))[:, None]
    return np.minimum((np.cumsum(probs, axis=1) < u * probs.sum(axis=1, keepdims=True)).sum(axis=1), probs.shape[1] - 1)
