"""Turn news rows into per-view texts and hash their content; the publisher a news names."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import pandas as pd

_SOURCE_COLUMN = {"title": "title", "abstract": "abstract", "entities": "title_entities", "source": "category"}
#: Path prefix of MIND's archive URLs (``https://assets.msn.com/labs/mind/AA...html``): their host is the
#: archive's, not a publisher's, so they name no source.
ARCHIVE_PATH = "/labs/mind/"


def news_source(url: str | None) -> str | None:
    """The publisher a news URL names: its host without ``www.`` (``https://www.dailyledger.example/news/AA1.html``
    -> ``dailyledger.example``); None for an empty URL or an archive URL (path under :data:`ARCHIVE_PATH`,
    as every real MIND URL and the demo's without visible quality)."""
    from urllib.parse import urlsplit

    if not url or not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    if not host or parts.path.startswith(ARCHIVE_PATH):
        return None
    return host


def news_sources(news: pd.DataFrame) -> list[str | None]:
    """Each row's publisher: the ``source`` column where it has one, else the publisher its ``url`` names
    (:func:`news_source`); None where neither is known (real MIND)."""
    if "source" in news.columns:
        return [s if isinstance(s, str) and s.strip() else None for s in news["source"]]
    if "url" in news.columns:
        return [news_source(u) for u in news["url"]]
    return [None] * len(news)


def source_texts(news: pd.DataFrame) -> list[str]:
    """The ``source`` view: ``category publisher`` per row (the category alone where no publisher is known), the
    evidence beside the text that the judge is shown too (``training.quality.llm_judge.judge_news_text``)."""
    return [f"{category} {source}" if source else str(category)
            for category, source in zip(news["category"].fillna("").astype(str), news_sources(news))]


def entity_labels(entities_json: str | None) -> str:
    """Space-joined ``Label`` fields of a MIND entity JSON list ("" when empty or unparsable)."""
    if not entities_json:
        return ""
    try:
        entities = json.loads(entities_json)
    except (TypeError, ValueError):
        return ""
    if not isinstance(entities, list):
        return ""
    return " ".join(str(e["Label"]) for e in entities if isinstance(e, dict) and e.get("Label"))


def view_texts(news: pd.DataFrame, views: Sequence[str]) -> list[list[str]]:
    """One list of texts per view (in ``views`` order), aligned with ``news`` rows."""
    out = []
    for view in views:
        column = _SOURCE_COLUMN[view]
        if column not in news.columns:
            raise KeyError(f"view {view!r} needs column {column!r} in the news table")
        if view == "source":
            out.append(source_texts(news))
            continue
        values = news[column].fillna("").astype(str).tolist()
        out.append([entity_labels(v) for v in values] if view == "entities" else values)
    return out


def content_hashes(texts: list[list[str]], views: Sequence[str]) -> list[str]:
    """SHA-256 (hex, 32 chars) of each news' view texts; equal content gives equal hashes."""
    prefix = "\x1e".join(views).encode() + b"\x1d"
    return [
        hashlib.sha256(prefix + "\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
        for parts in zip(*texts)
    ]
