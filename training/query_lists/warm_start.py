"""SFT targets of the warm start (protocol of issue 24): per user-day row, the list the policy should write.

A row's target is the key phrases (``training.slm.query_targets.key_phrase``) of the news the user clicks on day
t + 1, first click first, read back with :func:`~training.query_lists.query_list.parse_list`: normalised,
checked against the spec (length, English), deduplicated (equal word sets) and cut at N. So a target parses back
to exactly its queries, and the format reward scores it as the policy's own list would be scored.

Two sources (:data:`TARGET_SOURCES`, protocol change 14): ``next_day``, the clicks alone (one or two queries for
most users), and ``filled``, the clicks' phrases first, then the key phrases of the titles the prompt lists as
read (the row's ``read``), most recent first, up to N: a list as long as the format asks for, from nothing the
prompt does not show.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from training.columns import require_columns
from training.query_lists.query_list import QueryListSpec, parse_list
from training.slm.prompts import format_target
from training.slm.query_targets import key_phrase

#: Columns added to the kept rows in :attr:`WarmStartTargets.examples`.
TARGET_COLUMNS = ("queries", "target")
#: What a target is made of (module docstring); the first is the default.
TARGET_SOURCES = ("next_day", "filled")


@dataclass(frozen=True)
class WarmStartTargets:
    """The kept rows (the input rows' columns plus ``queries``: tuple of str and ``target``: the formatted list)
    and what was left out: rows without a usable phrase, clicks whose news is unknown or untitled, phrases that
    are empty, of the wrong length or not English, duplicate phrases, and valid phrases beyond N (all of the
    clicks' phrases); ``n_filled_queries``: queries taken from the reading history (``filled`` only)."""

    examples: pd.DataFrame
    n_rows: int
    n_dropped_rows: int
    n_unknown_news: int
    n_invalid_phrases: int
    n_duplicate_phrases: int
    n_capped_phrases: int
    n_filled_queries: int = 0

    @property
    def messages(self) -> list[str]:
        """The prompts' user messages, for ``train_lora``."""
        return self.examples["message"].astype(str).tolist()

    @property
    def targets(self) -> list[str]:
        """The target answers, aligned with :attr:`messages`."""
        return self.examples["target"].tolist()


def warm_start_targets(rows: pd.DataFrame, news: pd.DataFrame, spec: QueryListSpec | None = None,
                       source: str = TARGET_SOURCES[0]) -> WarmStartTargets:
    """Targets for :func:`~training.query_lists.prompt_rows.user_day_rows`' rows (``message``, ``clicks``: the
    news clicked on t + 1, first click first; ``read`` for ``source="filled"``) from ``news`` (news_id, title);
    see the module docstring. Row order is kept; a row whose clicks give no valid phrase is dropped and counted
    (with either source)."""
    if source not in TARGET_SOURCES:
        raise ValueError(f"unknown warm-start target source {source!r}; known: {list(TARGET_SOURCES)}")
    filled = source == "filled"
    require_columns(rows, ("message", "clicks", "read") if filled else ("message", "clicks"), "the row frame")
    require_columns(news, ("news_id", "title"), "news")
    spec = spec or QueryListSpec()
    titles = dict(zip(news["news_id"].astype(str), news["title"].fillna("").astype(str)))
    kept: list[int] = []
    queries: list[tuple[str, ...]] = []
    n_unknown = n_invalid = n_duplicates = n_capped = n_filled = 0
    reads = rows["read"] if filled else [()] * len(rows)
    for position, (clicks, read) in enumerate(zip(rows["clicks"], reads)):
        known = [titles[n] for n in map(str, clicks) if titles.get(n, "").strip()]
        n_unknown += len(clicks) - len(known)
        phrases = [key_phrase(title) for title in known]
        parsed = parse_list("\n".join(p for p in phrases if p), spec)
        n_invalid += parsed.n_invalid + sum(not p for p in phrases)
        n_duplicates += parsed.n_duplicates
        n_capped += parsed.n_valid - parsed.n_duplicates - len(parsed.queries)
        if not parsed.queries:
            continue
        own = parsed.queries
        if filled and len(own) < spec.n_queries:
            history = [key_phrase(titles[n]) for n in reversed(list(map(str, read))) if titles.get(n, "").strip()]
            own = parse_list("\n".join([*own, *history]), spec).queries   # the clicks' queries stay first
            n_filled += len(own) - len(parsed.queries)
        kept.append(position)
        queries.append(own)
    examples = rows.iloc[kept].reset_index(drop=True)
    examples = examples.assign(queries=queries, target=[format_target(list(q), spec.n_queries) for q in queries])
    return WarmStartTargets(examples=examples, n_rows=len(rows), n_dropped_rows=len(rows) - len(kept),
                            n_unknown_news=n_unknown, n_invalid_phrases=n_invalid, n_duplicate_phrases=n_duplicates,
                            n_capped_phrases=n_capped, n_filled_queries=n_filled)
