"""Byte-level MIND formatting: header-less TSV rows and the ``11/15/2019 8:55:22 AM`` time format."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path


def mind_time(moment: datetime) -> str:
    """MIND's behaviors time: month/day without zero padding, 12-hour clock, e.g. ``11/9/2019 12:05:09 AM``."""
    hour12 = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour12}:{moment.minute:02d}:{moment.second:02d} {suffix}"


def write_tsv(path: Path, rows: Iterable[Sequence[str]], n_columns: int) -> int:
    """Write header-less tab-separated rows with ``\\n`` line ends; returns the row count."""
    lines = []
    for row in rows:
        if len(row) != n_columns:
            raise ValueError(f"{path.name}: expected {n_columns} columns, got {len(row)}: {row!r}")
        for field in row:
            if "\t" in field or "\n" in field or "\r" in field:
                raise ValueError(f"{path.name}: field contains a tab or line break: {field!r}")
        lines.append("\t".join(row))
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
    return len(lines)
