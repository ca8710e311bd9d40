"""Read MIND's ``news.tsv`` and ``behaviors.tsv`` exactly as Microsoft publishes them, validating every row.

Good rows become typed tables (see :mod:`training.data.schema`); bad rows are kept verbatim in the
returned :class:`~training.data.validation.FileValidation` with one :class:`RowIssue` per problem.
Nothing is dropped silently.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from training.data.schema import (
    BEHAVIORS_TSV_COLUMNS, HISTORIES_SCHEMA, IMPRESSIONS_SCHEMA, MIND_TIME_FORMAT, NEWS_SCHEMA,
    NEWS_TSV_COLUMNS, USER_PROFILE_TSV_COLUMNS, USER_PROFILES_SCHEMA,
)
from training.data.validation import FileValidation, RowIssue

#: Label given to candidates of unlabelled logs (MIND's test split), when those are allowed.
UNKNOWN_LABEL = -1


def _lines(path: Path):
    """Yield (1-based line number, raw bytes without newline, decoded text or None) for each line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            body = raw.rstrip(b"\n").rstrip(b"\r")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as err:
                yield number, raw, None, f"invalid UTF-8 at byte {err.start}"
                continue
            yield number, raw, text, None


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
            issues.append(RowIssue(file, line, "news_id", f"duplicate news id {news_id} (first on line {first_line[news_id]})"))
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


def parse_mind_time(value: str) -> datetime:
    """Parse MIND's ``11/15/2019 8:55:22 AM`` as a UTC datetime."""
    return datetime.strptime(value, MIND_TIME_FORMAT).replace(tzinfo=timezone.utc)


def read_behaviors(
    path: str | Path, *, require_labels: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, FileValidation]:
    """Read ``behaviors.tsv`` into (impressions, histories) frames plus its validation.

    impressions: one row per candidate (IMPRESSIONS_SCHEMA; ``in_catalogue`` is left True here and set by
    :func:`mark_catalogue`). histories: one row per impression (HISTORIES_SCHEMA).
    With ``require_labels=False`` candidates without ``-0``/``-1`` (MIND's test split) get label -1.
    """
    path = Path(path)
    file = str(path)
    result = FileValidation(file)
    ids: list[int] = []
    users: list[str] = []
    times: list[datetime] = []
    histories: list[list[str]] = []
    cand_ids: list[list[str]] = []
    cand_labels: list[list[int]] = []
    first_line: dict[int, int] = {}
    for line, raw, text, decode_error in _lines(path):
        result.n_rows += 1
        if decode_error:
            result.reject(line, raw, [RowIssue(file, line, "row", decode_error)])
            continue
        fields, issues = _split(text, len(BEHAVIORS_TSV_COLUMNS), file, line)
        if fields is None:
            result.reject(line, raw, issues)
            continue
        imp_raw, user, time_raw, history_raw, impressions_raw = fields
        imp_id = None
        try:
            imp_id = int(imp_raw)
            if imp_id < 0:
                raise ValueError
        except ValueError:
            issues.append(RowIssue(file, line, "impression_id", f"not a non-negative integer: {imp_raw!r}"))
        if imp_id is not None and imp_id in first_line:
            issues.append(RowIssue(file, line, "impression_id", f"duplicate impression id {imp_id} (first on line {first_line[imp_id]})"))
        if not user or any(ch.isspace() for ch in user):
            issues.append(RowIssue(file, line, "user_id", f"invalid user id {user!r}"))
        try:
            when = parse_mind_time(time_raw)
        except ValueError:
            when = None
            issues.append(RowIssue(file, line, "time", f"unparseable time {time_raw!r} (expected like '11/15/2019 8:55:22 AM')"))
        news, labels = [], []
        tokens = impressions_raw.split()
        if not tokens:
            issues.append(RowIssue(file, line, "impressions", "no candidates"))
        for token in tokens:
            news_id, sep, label = token.rpartition("-")
            if not sep:
                if require_labels:
                    issues.append(RowIssue(file, line, "impressions", f"candidate {token!r} has no '-0'/'-1' label"))
                    break
                news.append(token)
                labels.append(UNKNOWN_LABEL)
            elif label not in ("0", "1") or not news_id:
                issues.append(RowIssue(file, line, "impressions", f"candidate {token!r}: label {label!r} is not 0 or 1"))
                break
            else:
                news.append(news_id)
                labels.append(int(label))
        if issues:
            result.reject(line, raw, issues)
            continue
        first_line[imp_id] = line
        ids.append(imp_id)
        users.append(user)
        times.append(when)
        histories.append(history_raw.split())
        cand_ids.append(news)
        cand_labels.append(labels)
    return (*_behavior_tables(ids, users, times, histories, cand_ids, cand_labels), result)


def _behavior_tables(ids, users, times, histories, cand_ids, cand_labels) -> tuple[pd.DataFrame, pd.DataFrame]:
    time_arr = pa.array(times, pa.timestamp("s", tz="UTC"))
    days = pa.array([t.strftime("%Y-%m-%d") for t in times], pa.string())
    hist = pa.table({
        "impression_id": pa.array(ids, pa.int64()),
        "user_id": pa.array(users, pa.string()),
        "time": time_arr,
        "day": days,
        "history": pa.array(histories, pa.list_(pa.string())),
    }, schema=HISTORIES_SCHEMA)
    counts = np.fromiter((len(c) for c in cand_ids), dtype=np.int64, count=len(cand_ids))
    take = np.repeat(np.arange(len(ids)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    imps = pa.table({
        "impression_id": pa.array(np.asarray(ids, dtype=np.int64)[take] if ids else [], pa.int64()),
        "user_id": hist.column("user_id").take(take),
        "time": hist.column("time").take(take),
        "day": hist.column("day").take(take),
        "position": pa.array((np.arange(counts.sum()) - starts).astype(np.int32), pa.int32()),
        "news_id": pa.array(list(chain.from_iterable(cand_ids)), pa.string()),
        "label": pa.array(np.fromiter(chain.from_iterable(cand_labels), dtype=np.int8, count=int(counts.sum())), pa.int8()),
        "in_catalogue": pa.array(np.ones(int(counts.sum()), dtype=bool), pa.bool_()),
    }, schema=IMPRESSIONS_SCHEMA)
    return imps.to_pandas(), hist.to_pandas()


def mark_catalogue(impressions: pd.DataFrame, news: pd.DataFrame) -> pd.DataFrame:
    """Set ``in_catalogue`` from the news table (False: the id has no text, so only ID features apply)."""
    out = impressions.copy()
    out["in_catalogue"] = out["news_id"].isin(news["news_id"]).to_numpy()
    return out


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
            issues.append(RowIssue(file, line, "user_id", f"duplicate user id {fields[0]} (first on line {seen[fields[0]]})"))
        if fields is None or issues:
            result.reject(line, raw, issues)
            continue
        seen[fields[0]] = line
        for column, value in zip(USER_PROFILE_TSV_COLUMNS, fields):
            rows[column].append(value)
    table = pa.table({c: pa.array(rows[c], pa.string()) for c in USER_PROFILE_TSV_COLUMNS}, schema=USER_PROFILES_SCHEMA)
    return table.to_pandas(), result
