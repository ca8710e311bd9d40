"""Prompts, target format and output parsing for the small-LM query generators.

Two tasks share one format: ``news`` (about six related, complementary search queries for a trigger
article, Bing "Explore Further" Q') and ``user`` (interest queries from a user's recent reading
history). The model answers with one query per line; :func:`parse_queries` turns any answer into a
clean, post-filtered list (length, English, duplicates and near-duplicates, as in the paper).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TASKS = ("news", "user")
MAX_QUERIES = 6
#: Abstracts are cut to this many characters in the news prompt.
MAX_ABSTRACT_CHARS = 300
#: Whether the ``news`` prompt shows the trigger's abstract besides its title (the method's prompt: title and
#: abstract). The one default of every place a ``news`` prompt is built: SFT targets, the gate, generation.
PROMPT_WITH_ABSTRACT = True

SYSTEM_MESSAGES = {
    "news": ("Write short web search queries about related topics a reader of this news article may "
             "explore next, one per line, lowercase."),
    "user": ("You write web search queries that describe a reader's interests. Given the titles of the "
             f"news a user read recently (most recent last), write up to {MAX_QUERIES} short search "
             "queries about the topics they care about. Write one query per line, in lowercase, "
             "without numbering."),
}

_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*\u2022\u2013])\s*")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
_ENGLISH_CHARS = re.compile(r"[a-z0-9 '\-]")


def news_prompt(title: str, abstract: str = "", category: str = "") -> str:
    """The user message of the ``news`` task: the trigger article's title, category and abstract."""
    title = " ".join(str(title or "").split())
    if not title:
        raise ValueError("news_prompt needs a non-empty title")
    lines = [f"Title: {title}"]
    category = " ".join(str(category or "").split())
    if category:
        lines.append(f"Category: {category}")
    abstract = " ".join(str(abstract or "").split())
    if abstract:
        if len(abstract) > MAX_ABSTRACT_CHARS:
            abstract = abstract[:MAX_ABSTRACT_CHARS].rsplit(" ", 1)[0] + "..."
        lines.append(f"Abstract: {abstract}")
    return "News article:\n" + "\n".join(lines) + "\nSearch queries:"


def news_row_prompt(row: Mapping[str, object], with_abstract: bool = PROMPT_WITH_ABSTRACT) -> str:
    """:func:`news_prompt` of a news row (a mapping with ``title`` and optional ``abstract``, ``category``)."""
    def text(key: str) -> str:
        value = row.get(key, "")
        return "" if value is None or value != value else str(value)   # None / NaN -> ""
    return news_prompt(text("title"), text("abstract") if with_abstract else "", text("category"))


#: At most this many recent searches and followed topics are shown in a ``user`` prompt.
MAX_SIGNALS = 5


def _last_distinct(texts: Iterable[str], keep: int) -> list[str]:
    """Whitespace-normalised non-empty ``texts`` without repeats (case-insensitive; the latest occurrence kept,
    in its place), the last ``keep`` of them (none when ``keep`` <= 0)."""
    cleaned = [" ".join(str(t or "").split()) for t in texts]
    cleaned = [t for t in cleaned if t]
    latest = {t.lower(): i for i, t in enumerate(cleaned)}
    distinct = [t for i, t in enumerate(cleaned) if latest[t.lower()] == i]
    return distinct[-keep:] if keep > 0 else []


def user_prompt(history_titles: list[str], max_items: int = 5, searches: Iterable[str] = (),
                follows: Iterable[str] = (), max_signals: int = MAX_SIGNALS) -> str:
    """The user message of the ``user`` task: the last ``max_items`` titles read, most recent last.

    Optional user signals, each oldest first as given: ``searches`` typed and topics ``follows``-ed; the last
    ``max_signals`` distinct ones of each are shown above the reading history (a repeat counts at its latest
    place). Without signals the message is the history alone, as before; it needs a title or a signal."""
    titles = [" ".join(str(t or "").split()) for t in history_titles]
    titles = [t for t in titles if t][-max_items:] if max_items > 0 else []
    searched, followed = _last_distinct(searches, max_signals), _last_distinct(follows, max_signals)
    if not titles and not (searched or followed):
        raise ValueError("user_prompt needs at least one non-empty history title, search or followed topic")
    sections = []
    if searched:
        sections.append("Searched recently (most recent last):\n" + "\n".join(f"- {s}" for s in searched))
    if followed:
        sections.append("Topics followed:\n" + "\n".join(f"- {f}" for f in followed))
    if titles:
        listed = "\n".join(f"{i}. {t}" for i, t in enumerate(titles, start=1))
        sections.append(f"Recently read (most recent last):\n{listed}")
    return "\n".join(sections) + "\nSearch queries:"


def format_target(queries: list[str], max_queries: int = MAX_QUERIES) -> str:
    """The answer the model learns: at most ``max_queries`` queries, one per line."""
    lines = [line for line in (" ".join(str(q).split()) for q in queries) if line]
    return "\n".join(lines[:max_queries] if max_queries > 0 else lines)


#: Worked examples prepended as earlier chat turns by ``chat_prompt(..., few_shot=True)``.
FEW_SHOT_EXAMPLES: dict[str, tuple[tuple[str, list[str]], ...]] = {
    "news": (
        (news_prompt("Fed raises interest rates for the third time this year",
                     "The central bank lifted its benchmark rate by a quarter point and signalled a pause, "
                     "citing slowing growth abroad and steady inflation at home.", "finance"),
         ["mortgage rates forecast", "how interest rates affect stocks", "federal reserve meeting schedule",
          "inflation rate this year", "savings account interest rates", "recession warning signs"]),
    ),
    "user": (
        (user_prompt(["Lakers beat Celtics in overtime thriller", "NBA trade deadline rumors",
                      "Best running shoes for beginners", "LeBron James injury update"]),
         ["nba scores tonight", "lakers schedule", "nba trade news", "running shoes review",
          "lebron james stats"]),
    ),
}


def chat_prompt(tokenizer: PreTrainedTokenizerBase, user_message: str, few_shot: bool = False,
                task: str = "news") -> str:
    """The tokenizer's chat template over [system, (few-shot turns), user] with the generation prompt."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template")
    messages = [{"role": "system", "content": SYSTEM_MESSAGES[task]}]
    if few_shot:
        for message, queries in FEW_SHOT_EXAMPLES[task]:
            messages += [{"role": "user", "content": message},
                         {"role": "assistant", "content": format_target(queries)}]
    messages.append({"role": "user", "content": user_message})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):  # tokenize=False: the template's text
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(prompt).__name__}, not text")
    return prompt


@dataclass(frozen=True)
class ParsedQueries:
    """One generation parsed into queries, with what the post-filters removed."""

    queries: list[str]
    malformed: bool      # nothing parseable: empty text, or no line passed the filters
    n_raw: int           # non-empty candidate lines
    n_duplicates: int    # exact or near-duplicates (same word set) removed
    n_filtered: int      # removed by the length / language filters


def normalise_query(text: str) -> str:
    """Lowercase, single spaces, list markers / quotes / trailing punctuation stripped."""
    text = _LIST_MARKER.sub("", str(text))
    text = text.strip().strip(_QUOTES).strip().rstrip("?.!,;").strip().strip(_QUOTES)
    return " ".join(text.lower().split())


def is_english(query: str, min_fraction: float = 0.8) -> bool:
    """A simple English check: at least ``min_fraction`` of the characters are in ``[a-z0-9 '-]``."""
    if not query:
        return False
    return len(_ENGLISH_CHARS.findall(query)) / len(query) >= min_fraction


def filter_queries(queries: Iterable[str], min_words: int = 2, max_words: int = 8,
                   max_chars: int = 80) -> tuple[list[str], int, int]:
    """The post-filters: ``(kept, n_filtered, n_duplicates)`` over normalised queries.

    Filtered: fewer than ``min_words`` or more than ``max_words`` words, longer than ``max_chars``
    characters, or not English (:func:`is_english`). Duplicates: equal after normalisation, or
    near-duplicates whose word sets are equal ("nba scores today" / "today nba scores"); the first wins.
    """
    kept: list[str] = []
    seen: set[frozenset[str]] = set()
    n_filtered = n_duplicates = 0
    for raw in queries:
        query = " ".join(str(raw).lower().split())
        words = query.split()
        if not (min_words <= len(words) <= max_words) or len(query) > max_chars or not is_english(query):
            n_filtered += 1
            continue
        word_set = frozenset(words)
        if word_set in seen:
            n_duplicates += 1
            continue
        seen.add(word_set)
        kept.append(query)
    return kept, n_filtered, n_duplicates


def parse_queries(text: str | None, max_queries: int = MAX_QUERIES) -> ParsedQueries:
    """A generated answer -> at most ``max_queries`` clean queries (see the module docstring)."""
    candidates = []
    for line in str(text or "").splitlines():
        stripped = line.strip()
        if not stripped or stripped.endswith(":"):   # blank lines and headers ("Here are queries:")
            continue
        query = normalise_query(stripped)
        if query:
            candidates.append(query)
    kept, n_filtered, n_duplicates = filter_queries(candidates)
    return ParsedQueries(queries=kept[:max_queries], malformed=not kept, n_raw=len(candidates),
                         n_duplicates=n_duplicates, n_filtered=n_filtered)
