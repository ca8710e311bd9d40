"""One generated query list: its settings, its parse, and the round-robin union of ranked lists.

The list task asks for exactly N queries of 2-12 words, one per line. :func:`parse_list` reads an answer with
``training.slm.prompts``' normalisation (list markers, quotes, case) and English check, keeping every line so
that the rewards can see surplus, malformed and duplicate lines (``parse_queries`` drops them silently and caps
queries at 8 words).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from training.config_dict import ConfigDict
from training.slm.prompts import MAX_QUERIES, is_english, normalise_query


@dataclass(frozen=True)
class QueryListSpec(ConfigDict):
    """What a list is and how it retrieves: ``n_queries`` (N) queries of ``min_words``-``max_words`` words;
    each query's top ``per_query`` news; recall is measured on the union's top ``k``."""

    n_queries: int = MAX_QUERIES
    min_words: int = 2
    max_words: int = 12
    per_query: int = 10
    k: int = 30

    def __post_init__(self) -> None:
        for name in ("n_queries", "min_words", "per_query", "k"):
            if getattr(self, name) < 1:
                raise ValueError(f"QueryListSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_words < self.min_words:
            raise ValueError(f"QueryListSpec.max_words ({self.max_words}) must be >= min_words ({self.min_words})")


@dataclass(frozen=True)
class QueryList:
    """A parsed answer. ``queries``: the distinct valid lines in order, at most N (what retrieves);
    ``n_valid``: valid lines, duplicates included; ``n_invalid``: lines of the wrong length or not English;
    ``n_duplicates``: valid lines whose word set repeats an earlier valid line's."""

    queries: tuple[str, ...]
    n_valid: int
    n_invalid: int
    n_duplicates: int

    @property
    def n_lines(self) -> int:
        return self.n_valid + self.n_invalid


def parse_list(text: str | None, spec: QueryListSpec | None = None) -> QueryList:
    """An answer -> :class:`QueryList`: non-empty lines that are not headers (ending in ``:``), normalised with
    :func:`~training.slm.prompts.normalise_query`."""
    spec = spec or QueryListSpec()
    queries: list[str] = []
    seen: set[frozenset[str]] = set()
    n_valid = n_invalid = n_duplicates = 0
    for line in str(text or "").splitlines():
        stripped = line.strip()
        if not stripped or stripped.endswith(":"):
            continue
        query = normalise_query(stripped)
        words = query.split()
        if not spec.min_words <= len(words) <= spec.max_words or not is_english(query):
            n_invalid += 1
            continue
        n_valid += 1
        if frozenset(words) in seen:
            n_duplicates += 1
            continue
        seen.add(frozenset(words))
        queries.append(query)
    return QueryList(tuple(queries[: spec.n_queries]), n_valid, n_invalid, n_duplicates)


def round_robin(ranked: Iterable[Sequence[str]], limit: int | None = None) -> list[str]:
    """The union of ranked lists: every list's first item, then every second one, ...; first occurrence kept;
    at most ``limit`` items when given."""
    if limit is not None and limit <= 0:
        return []
    lists = [list(r) for r in ranked]
    merged: dict[str, None] = {}
    for depth in range(max((len(r) for r in lists), default=0)):
        for items in lists:
            if depth < len(items):
                merged.setdefault(str(items[depth]), None)
                if limit is not None and len(merged) >= limit:
                    return list(merged)
    return list(merged)
