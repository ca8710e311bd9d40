"""The four rewards of a query list, as plain functions of its parse and of what it retrieves, and their weights.

A list's *union* is the round-robin union of its queries' top ``per_query`` results
(:func:`list_union`); every reward is in [0, 1] (quality: in the scorer's range).

* retrieval: recall@K of the user's held-out clicks (distinct news) in the union's first K;
* coverage: distinct news in the union over ``N * per_query``, minus ``duplicate_penalty`` per duplicate query
  (equal word sets after normalisation), floored at 0;
* format: 1 for exactly N valid queries (2-12 words, English) and no other line; partial credit: each valid
  query up to N earns 1/N and each invalid or surplus line costs 1/N, floored at 0; no valid query at all: 0
  (duplicates count as valid here: coverage is where they cost);
* quality: the mean of ``quality(news_ids)`` over the union; 0 when the list retrieves nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from training.config_dict import ConfigDict
from training.query_lists.query_list import QueryList, QueryListSpec, round_robin

#: Order of the rewards everywhere (reward functions, weights, logged columns).
REWARD_NAMES = ("retrieval", "coverage", "format", "quality")
QualityScorer = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class RewardWeights(ConfigDict):
    """Weights of the total reward (TRL's weighted sum) and the coverage reward's duplicate penalty.

    Defaults (to be chosen on the development data, protocol of issue 24): retrieval is the objective (1.0); the
    other three shape it (0.25 each): coverage and format keep lists long, varied and well formed, quality keeps
    them on good news. ``duplicate_penalty``: 0.1 per duplicate query, so a list of N copies of one query
    scores about 0 coverage at N = 6 whatever it retrieves."""

    retrieval: float = 1.0
    coverage: float = 0.25
    format: float = 0.25
    quality: float = 0.25
    duplicate_penalty: float = 0.1

    def __post_init__(self) -> None:
        for name in (*REWARD_NAMES, "duplicate_penalty"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"RewardWeights.{name} must be finite and >= 0, got {getattr(self, name)}")

    def of(self, names: Sequence[str]) -> list[float]:
        """The weights of ``names`` (a subset of :data:`REWARD_NAMES`), in that order."""
        unknown = [n for n in names if n not in REWARD_NAMES]
        if unknown:
            raise ValueError(f"unknown reward name(s) {unknown}; known: {list(REWARD_NAMES)}")
        return [float(getattr(self, n)) for n in names]


def list_union(results: Sequence[Sequence[str]], spec: QueryListSpec) -> list[str]:
    """The round-robin union of each query's top ``spec.per_query`` news ids (one result list per query)."""
    return round_robin(r[: spec.per_query] for r in results)


def retrieval_reward(union: Sequence[str], clicks: Iterable[str], k: int) -> float:
    """Share of the distinct clicked news found in ``union[:k]``."""
    wanted = {str(c) for c in clicks}
    if not wanted:
        raise ValueError("retrieval_reward needs at least one held-out click (rows without clicks carry no target)")
    return len(wanted & {str(n) for n in union[:k]}) / len(wanted)


def coverage_reward(parsed: QueryList, union: Sequence[str], spec: QueryListSpec, duplicate_penalty: float) -> float:
    """Distinct retrieved news over ``N * per_query``, minus ``duplicate_penalty`` per duplicate query, >= 0."""
    share = len(set(union)) / (spec.n_queries * spec.per_query)
    return max(0.0, min(share, 1.0) - duplicate_penalty * parsed.n_duplicates)


def format_reward(parsed: QueryList, spec: QueryListSpec) -> float:
    """1 for exactly N valid lines and nothing else; partial credit as in the module docstring; 0 for garbage."""
    if parsed.n_valid == 0:
        return 0.0
    n = spec.n_queries
    earned = min(parsed.n_valid, n) - parsed.n_invalid - max(0, parsed.n_valid - n)
    return max(0.0, earned / n)


def quality_reward(union: Sequence[str], quality: QualityScorer) -> float:
    """Mean ``quality`` score of the retrieved news; 0 when nothing is retrieved."""
    if not union:
        return 0.0
    scores = np.asarray(quality(list(union)), dtype=np.float64)
    if scores.shape != (len(union),) or not np.isfinite(scores).all():
        raise ValueError(f"quality scorer returned shape {scores.shape} (finite: {np.isfinite(scores).all()}) "
                         f"for {len(union)} news; it must return one finite score per news id")
    return float(scores.mean())
