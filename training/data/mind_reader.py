"""Read MIND's ``news.tsv`` and ``behaviors.tsv`` exactly as Microsoft publishes them, validating every row.

Good rows become typed tables (see :mod:`training.data.schema`); bad rows are kept verbatim in the
returned :class:`~training.data.validation.FileValidation` with one :class:`RowIssue` per problem.
Nothing is dropped silently. news.tsv, user_profiles.tsv and user_signals.tsv (one row per news item / user /
signal) are read row by row here; behaviors.tsv (one row per impression, the large file) goes through the
out-of-core DuckDB engine of :mod:`training.data.behaviors_duckdb`.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from training.data.behaviors_duckdb import BehaviorStore, InMemoryRows
from training.data.line_chunks import DEFAULT_CHUNK_BYTES
from training.data.line_chunks import decode_error as utf8_error
from training.data.schema import (
    MIND_TIME_FORMAT,
    NEWS_SCHEMA,
    NEWS_TSV_COLUMNS,
    SIGNAL_KINDS,
    USER_PROFILE_TSV_COLUMNS,
    USER_PROFILES_SCHEMA,
    USER_SIGNAL_TSV_COLUMNS,
    USER_SIGNALS_SCHEMA,
)
from training.data.validation import FileValidation, RowIssue


def _lines(path: Path) -> Iterator[tuple[int, bytes, str, str | None]]:
    """Yield (1-based line number, raw bytes, decoded text without newline, UTF-8 error or None) for each
    line; the text is "" where there is an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            body = raw.rstrip(b"\n").rstrip(b"\r")
            reason = utf8_error(body)
            yield number, raw, "" if reason else body.decode("utf-8"), reason


def _split(text: str, n_columns: int, file: str, line: int) -> tuple[list[str] | None, list[RowIssue]]:
    if text == "":
        return None, [RowIssue(file, line, "row", "empty line")]
    fields = text.split("\t")
    if len(fields) != n_columns:
        return None, [RowIssue(file, line, "row", f"expected {n_columns} tab-separated columns, got {len(fields)}")]
    return fields, []


def _entities(value: str, file: str, line: int, name: str) -> tuple[str, list[RowIssue]]:
    if value.strip() == "":
        return "[]", []
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        return value, [RowIssue(file, line, name, f"invalid entity JSON ({err.msg} at char {err.pos})")]
    if not isinstance(parsed, list) or not all(isinstance(e, dict) for e in parsed):
        return value, [RowIssue(file, line, name, "entity JSON must be a list of objects")]
    return value, []


def read_news(path: str | Path) -> tuple[pd.DataFrame, FileValidation]:
    """Read ``news.tsv`` (8 columns, no header) into a NEWS_SCHEMA frame plus its validation."""
    path = Path(path)
    file = str(path)
    result = FileValidation(file)
    rows: dict[str, list[str]] = {c: [] for c in NEWS_TSV_COLUMNS}
    first_line: dict[str, int] = {}
    for line, raw, text, decode_error in _lines(path):
        result.n_rows += 1
        if decode_error:
            result.reject(line, raw, [RowIssue(file, line, "row", decode_error)])
            continue
        fields, issues = _split(text, len(NEWS_TSV_COLUMNS), file, line)
        if fields is None:
            result.reject(line, raw, issues)
            continue
        news_id, category = fields[0], fields[1]
        if not news_id or any(ch.isspace() for ch in news_id):
            issues.append(RowIssue(file, line, "news_id", f"invalid news id {news_id!r}"))
        elif news_id in first_line:
            issues.append(RowIssue(file, line, "news_id",
                                   f"duplicate news id {news_id} (first on line {first_line[news_id]})"))
        if not category:
            issues.append(RowIssue(file, line, "category", "empty category"))
        fields[6], e1 = _entities(fields[6], file, line, "title_entities")
        fields[7], e2 = _entities(fields[7], file, line, "abstract_entities")
        issues += e1 + e2
        if issues:
            result.reject(line, raw, issues)
            continue
        first_line[news_id] = line
        for column, value in zip(NEWS_TSV_COLUMNS, fields):
            rows[column].append(value)
    table = pa.table({c: pa.array(rows[c], pa.string()) for c in NEWS_TSV_COLUMNS}, schema=NEWS_SCHEMA)
    return table.to_pandas(), result


def read_behaviors(
    path: str | Path, *, require_labels: bool = True, news_ids: pd.Series | list[str] | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> tuple[pd.DataFrame, pd.DataFrame, FileValidation]:
    """Read ``behaviors.tsv`` into in-memory (impressions, histories) frames plus its validation.

    impressions: one row per candidate (IMPRESSIONS_SCHEMA; ``in_catalogue`` is True unless ``news_ids``,
    the catalogue's ids, is given and lacks the id). histories: one row per impression (HISTORIES_SCHEMA).
    With ``require_labels=False`` candidates without ``-0``/``-1`` (MIND's test split) get label -1.
    The rows go through the out-of-core engine (:class:`BehaviorStore`); for files larger than memory use
    :func:`training.data.prepare.prepare`, which writes them to day partitions instead.
    """
    rows = InMemoryRows()
    with tempfile.TemporaryDirectory(prefix="newsforge-behaviors-") as work, BehaviorStore(work) as store:
        if news_ids is not None:
            store.set_catalogue(news_ids)
        validation = store.ingest(path, rows, require_labels=require_labels, chunk_bytes=chunk_bytes)
    impressions, histories = rows.tables()
    if news_ids is None:
        impressions = impressions.set_column(
            impressions.schema.get_field_index("in_catalogue"), "in_catalogue",
            pa.array(np.ones(len(impressions), dtype=bool), pa.bool_()))
    return impressions.to_pandas(), histories.to_pandas(), validation


def read_user_profiles(path: str | Path) -> tuple[pd.DataFrame, FileValidation]:
    """Read the optional ``user_profiles.tsv`` (user_id, region, device; no header)."""
    path = Path(path)
    file = str(path)
    result = FileValidation(file)
    rows: dict[str, list[str]] = {c: [] for c in USER_PROFILE_TSV_COLUMNS}
    seen: dict[str, int] = {}
    for line, raw, text, decode_error in _lines(path):
        result.n_rows += 1
        if decode_error:
            result.reject(line, raw, [RowIssue(file, line, "row", decode_error)])
            continue
        fields, issues = _split(text, len(USER_PROFILE_TSV_COLUMNS), file, line)
        if fields is not None and fields[0] in seen:
            issues.append(RowIssue(file, line, "user_id",
                                   f"duplicate user id {fields[0]} (first on line {seen[fields[0]]})"))
        if fields is None or issues:
            result.reject(line, raw, issues)
            continue
        seen[fields[0]] = line
        for column, value in zip(USER_PROFILE_TSV_COLUMNS, fields):
            rows[column].append(value)
    table = pa.table({c: pa.array(rows[c], pa.string()) for c in USER_PROFILE_TSV_COLUMNS}, schema=USER_PROFILES_SCHEMA)
    return table.to_pandas(), result


def _signal_issues(fields: list[str], moment: pd.Timestamp, file: str, line: int) -> list[RowIssue]:
    user, time, kind, text = fields
    issues = []
    if not user or any(ch.isspace() for ch in user):
        issues.append(RowIssue(file, line, "user_id", f"invalid user id {user!r}"))
    if pd.isna(moment):
        issues.append(RowIssue(file, line, "time",
                               f"unparseable time {time!r} (expected like '11/15/2019 8:55:22 AM')"))
    if kind not in SIGNAL_KINDS:
        issues.append(RowIssue(file, line, "kind",
                               f"unknown kind {kind!r} (expected one of {', '.join(SIGNAL_KINDS)})"))
    if not text.strip():
        issues.append(RowIssue(file, line, "text", f"empty {kind if kind in SIGNAL_KINDS else 'signal'} text"))
    return issues


def read_user_signals(path: str | Path) -> tuple[pd.DataFrame, FileValidation]:
    """Read the optional ``user_signals.tsv`` (user_id, time, kind, text; no header) into a USER_SIGNALS_SCHEMA
    frame sorted by (time, user_id), plus its validation."""
    path = Path(path)
    file = str(path)
    result = FileValidation(file)
    lines: list[tuple[int, bytes, list[str] | None, list[RowIssue]]] = []
    for line, raw, text, decode_error in _lines(path):
        result.n_rows += 1
        if decode_error:
            lines.append((line, raw, None, [RowIssue(file, line, "row", decode_error)]))
        else:
            lines.append((line, raw, *_split(text, len(USER_SIGNAL_TSV_COLUMNS), file, line)))
    split = [fields for _, _, fields, _ in lines if fields is not None]
    parsed = pd.to_datetime([f[1] for f in split], format=MIND_TIME_FORMAT, errors="coerce", utc=True)
    kept: list[int] = []  # positions in ``split``
    position = -1
    for line, raw, fields, issues in lines:
        if fields is not None:
            position += 1
            issues = _signal_issues(fields, parsed[position], file, line)
        if fields is None or issues:
            result.reject(line, raw, issues)
        else:
            kept.append(position)
    columns = {name: pa.array([split[i][k] for i in kept], pa.string())
               for k, name in enumerate(USER_SIGNAL_TSV_COLUMNS) if name != "time"}
    columns["time"] = pa.array(parsed[kept].as_unit("s"), USER_SIGNALS_SCHEMA.field("time").type)
    table = pa.table({name: columns[name] for name in USER_SIGNALS_SCHEMA.names}, schema=USER_SIGNALS_SCHEMA)
    frame = table.to_pandas()
    return frame.sort_values(["time", "user_id"], kind="stable").reset_index(drop=True), result
