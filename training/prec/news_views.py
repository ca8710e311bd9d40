"""Turn news rows into per-view texts and hash their content."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import pandas as pd

_SOURCE_COLUMN = {"title": "title", "abstract": "abstract", "entities": "title_entities"}


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
