"""The rewards as TRL reward functions, sharing one retrieval per distinct completion.

TRL calls each reward function on the same batch, ``f(prompts, completions, **columns) -> list[float]``, the
dataset's other columns (``clicks``, ``user_id``, ``target_day``...) arriving as keyword lists, one item per
completion. :class:`ListRetrievals` parses and retrieves each distinct (target day, completion) once, in one
``retrieve`` call per day and batch; the four functions read its cache. A function's ``__name__`` is what TRL
logs: ``rewards/<name>/mean``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from training.query_lists.query_list import QueryList, QueryListSpec, parse_list
from training.query_lists.rewards import (
    QualityScorer,
    RewardWeights,
    coverage_reward,
    format_reward,
    list_union,
    quality_reward,
    retrieval_reward,
)

#: Query texts -> ranked news ids per query (``training.retrieval.qprime.query_retriever``).
Retriever = Callable[[list[str]], list[list[str]]]
RewardFunction = Callable[..., list[float]]
#: Distinct completions kept in the cache (the four functions of a batch need only that batch's).
CACHE_ENTRIES = 4096


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or a conversational one (a list of messages; their contents joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, Mapping))
    raise TypeError(f"a completion must be text or a list of messages, got {type(completion).__name__}")


class ListRetrievals:
    """Cache (target day, completion text) -> (parsed list, union of its queries' results).

    ``retrieve``: one retriever, or one per target day (then the rows need a ``target_day`` column: the
    protocol retrieves among the news live on day t + 1)."""

    def __init__(self, retrieve: Retriever | Mapping[str, Retriever], spec: QueryListSpec | None = None,
                 max_entries: int = CACHE_ENTRIES) -> None:
        self.retrieve = retrieve
        self.spec = spec or QueryListSpec()
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str], tuple[QueryList, list[str]]] = OrderedDict()

    def _retriever(self, day: str) -> Retriever:
        if not isinstance(self.retrieve, Mapping):
            return self.retrieve
        if day not in self.retrieve:
            raise KeyError(f"no retriever for target day {day!r}; have {sorted(self.retrieve)}")
        return self.retrieve[day]

    def lists(self, completions: Sequence[Any], target_days: Sequence[Any] | None = None
              ) -> list[tuple[QueryList, list[str]]]:
        """(parsed list, union) per completion; the uncached ones retrieved in one call per target day."""
        if isinstance(self.retrieve, Mapping) and target_days is None:
            raise ValueError("per-day retrievers need a target_day column in the GRPO rows")
        days = [str(d) for d in target_days] if target_days is not None else [""] * len(completions)
        keys = [(day, completion_text(c)) for day, c in zip(days, completions)]
        todo: dict[tuple[str, str], QueryList] = {}
        for key in keys:
            if key not in self._cache and key not in todo:
                todo[key] = parse_list(key[1], self.spec)
        for day in dict.fromkeys(day for day, _ in todo):
            pending = [(key, parsed) for key, parsed in todo.items() if key[0] == day]
            queries = [q for _, parsed in pending for q in parsed.queries]
            results = self._retriever(day)(queries) if queries else []
            if len(results) != len(queries):
                raise ValueError(f"retrieve returned {len(results)} result lists for {len(queries)} queries")
            start = 0
            for key, parsed in pending:
                own = results[start: start + len(parsed.queries)]
                start += len(parsed.queries)
                self._cache[key] = (parsed, list_union(own, self.spec))
        out = [self._cache[key] for key in keys]
        for key in keys:
            self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return out


def reward_functions(retrievals: ListRetrievals, quality: QualityScorer | None = None,
                     weights: RewardWeights | None = None) -> list[RewardFunction]:
    """TRL reward functions named and ordered as ``rewards.REWARD_NAMES`` (without ``quality`` when no scorer is
    given); they read ``clicks`` (held-out clicked news ids) and, with per-day retrievers, ``target_day``."""
    spec = retrievals.spec
    penalty = (weights or RewardWeights()).duplicate_penalty

    def make(name: str, score: Callable[[QueryList, list[str], Any], float]) -> RewardFunction:
        def reward(prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> list[float]:
            if "clicks" not in columns and name == "retrieval":
                raise ValueError("the retrieval reward needs a 'clicks' column in the GRPO rows")
            clicks = columns.get("clicks", [()] * len(completions))
            lists = retrievals.lists(completions, columns.get("target_day"))
            return [score(parsed, union, row_clicks) for (parsed, union), row_clicks in zip(lists, clicks)]
        reward.__name__ = reward.__qualname__ = name
        return reward

    functions = [
        make("retrieval", lambda parsed, union, clicks: retrieval_reward(union, clicks, spec.k)),
        make("coverage", lambda parsed, union, clicks: coverage_reward(parsed, union, spec, penalty)),
        make("format", lambda parsed, union, clicks: format_reward(parsed, spec)),
    ]
    if quality is not None:
        functions.append(make("quality", lambda parsed, union, clicks: quality_reward(union, quality)))
    return functions
