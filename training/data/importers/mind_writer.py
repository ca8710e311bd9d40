"""Write MIND-format TSV files (news.tsv, behaviors.tsv, user_profiles.tsv) from importer rows."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

_TSV_BREAKERS = re.compile(r"[\t\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")


def tsv_text(value: object) -> tuple[str, bool]:
    """``value`` as one TSV field: None -> "", tabs and line breaks -> one space; returns (text, changed)."""
    if value is None:
        return "", False
    text = str(value)
    cleaned = _TSV_BREAKERS.sub(" ", text)
    return cleaned, cleaned != text


def mind_time(when: datetime) -> str:
    """MIND's behaviors time, e.g. ``11/15/2019 8:55:22 AM``, from an aware datetime (converted to UTC)."""
    when = when.astimezone(UTC)
    hour = when.hour % 12 or 12
    noon = "AM" if when.hour < 12 else "PM"
    return f"{when.month}/{when.day}/{when.year} {hour}:{when.minute:02d}:{when.second:02d} {noon}"


def write_rows(path: Path, rows: Iterable[Iterable[str]]) -> int:
    """Write tab-joined rows (no header, UTF-8, ``\\n``); returns the row count."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write("\t".join(row) + "\n")
            n += 1
    return n


def behaviors_row(impression_id: int, user_id: str, when: datetime, history: Iterable[str],
                  candidates: Iterable[tuple[str, int]]) -> tuple[str, ...]:
    """One behaviors.tsv row: id, user, time, space-joined history, ``news-label`` candidates."""
    return (str(impression_id), user_id, mind_time(when), " ".join(history),
            " ".join(f"{news}-{label}" for news, label in candidates))

