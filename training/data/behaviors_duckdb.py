"""Out-of-core reading, validation, explosion and day-partitioning of MIND ``behaviors.tsv`` with DuckDB.

The file is read in chunks of whole lines (:mod:`training.data.line_chunks`); each chunk goes to DuckDB as
an Arrow table (line number, text) and is parsed, validated and exploded to one row per candidate with SQL
(``in_catalogue`` set by a join with the catalogue's ids). The chunk's good rows, sorted by line and
candidate position, are appended to a :class:`RowSink`: one parquet file per day (:class:`DayPartitions`)
or memory (:class:`InMemoryRows`, small files). Only the kept impression ids (id, line) stay in an on-disk
DuckDB table, to name duplicates across chunks; statistics are then computed by DuckDB over the written
parquet files. Memory is bounded by the chunk size and ``memory_limit`` (DuckDB spills to
``temp_directory``), whatever the file size. Bad rows (usually few) get their :class:`RowIssue` texts in
Python, worded exactly as the row-by-row reader words them.

Settings: ``memory_limit`` and ``threads`` come from the arguments, else the environment variables
``NEWSFORGE_DUCKDB_MEMORY_LIMIT`` (default ``1GB``) and ``NEWSFORGE_DUCKDB_THREADS`` (default 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from training.data.line_chunks import DEFAULT_CHUNK_BYTES, read_line_chunks
from training.data.schema import (
    BEHAVIORS_TSV_COLUMNS,
    HISTORIES_SCHEMA,
    IMPRESSIONS_SCHEMA,
)
from training.data.validation import FileValidation, RowIssue
from training.settings import duckdb_memory_limit, duckdb_threads

#: Label given to candidates of unlabelled logs (MIND's test split), when those are allowed.
UNKNOWN_LABEL = -1
DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2

# Python's str.isspace()/str.split() whitespace, as an RE2 character class (RE2's \s is ASCII only).
_WS = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # schema.MIND_TIME_FORMAT, in DuckDB's strptime dialect (identical)

_CREATE = """
CREATE TABLE ids (impression_id BIGINT, line BIGINT);
CREATE TABLE news_ids (news_id VARCHAR);
"""

# Python's whitespace split of a field: string_split on ' ' when the field is plain (printable ASCII, single
# spaces, none at the ends: nearly always), else a regex split on every whitespace character.
def _split_ws(x: str) -> str:
    return f"""CASE WHEN regexp_matches({x}, '[^ -~]') OR contains({x}, '  ') OR starts_with({x}, ' ')
                    OR ends_with({x}, ' ')
               THEN CASE WHEN regexp_full_match({x}, '{_WS}*') THEN []::VARCHAR[]
                         ELSE string_split_regex(regexp_replace({x}, '^{_WS}+|{_WS}+$', '', 'g'), '{_WS}+') END
               WHEN {x} = '' THEN []::VARCHAR[]
               ELSE string_split({x}, ' ') END"""


# The chunk's lines split on tabs (``text`` has no newline; a CR before it stays in the last field).
_LINES = """
CREATE OR REPLACE TEMP TABLE lines AS
SELECT line, string_split(text, chr(9)) AS f, replace(text, chr(13), '') = '' AS empty FROM chunk
"""

# One row per line with five columns: parsed values and one flag per checked field.
_CHECK = f"""
CREATE OR REPLACE TEMP TABLE checked AS
WITH parsed AS (
    SELECT line, f[1] AS imp_raw, f[2] AS user_id, f[3] AS time_raw, f[4] AS history_raw,
           CASE WHEN regexp_full_match(f[1], '[0-9]+') THEN TRY_CAST(f[1] AS BIGINT)
                WHEN regexp_full_match(f[1], '{_WS}*[+-]?[0-9]+(_[0-9]+)*{_WS}*')
                THEN TRY_CAST(replace(regexp_replace(f[1], '{_WS}', '', 'g'), '_', '') AS BIGINT) END AS imp_id,
           try_strptime(f[3], '{_TIME_FORMAT}') AS ts,
           {_split_ws('f[5]')} AS tokens
    FROM lines WHERE NOT empty AND len(f) = 5
)
SELECT *,
       imp_id IS NULL OR imp_id < 0 AS bad_id,
       user_id = '' OR regexp_matches(user_id, '{_WS}') AS bad_user,
       ts IS NULL AS bad_time,
       len(tokens) = 0 OR coalesce(list_bool_or([
           CASE WHEN strpos(t, '-') = 0 THEN $require_labels
                ELSE NOT (suffix(t, '-0') OR suffix(t, '-1')) OR length(t) = 2 END
           FOR t IN tokens]), false) AS bad_cands
FROM parsed
"""

# Duplicate ids: the first line of an id among rows kept in earlier chunks, else among this chunk's
# otherwise-valid rows (the first otherwise-valid row of an id is always kept, so this equals "first kept").
_DUPLICATES = """
CREATE OR REPLACE TEMP TABLE judged AS
WITH firsts AS (
    SELECT imp_id, min(line) AS first_line FROM checked
    WHERE NOT (bad_id OR bad_user OR bad_time OR bad_cands) GROUP BY imp_id
), seen AS (
    SELECT i.impression_id, i.line FROM ids i SEMI JOIN checked c ON i.impression_id = c.imp_id
)
SELECT c.*, coalesce(seen.line, CASE WHEN f.first_line < c.line THEN f.first_line END) AS dup_of
FROM checked c LEFT JOIN seen ON seen.impression_id = c.imp_id LEFT JOIN firsts f ON f.imp_id = c.imp_id
"""

_KEEP = f"""
CREATE OR REPLACE TEMP TABLE kept AS
SELECT line, imp_id AS impression_id, user_id, epoch(ts)::BIGINT AS time, strftime(ts, '%Y-%m-%d') AS day,
       {_split_ws('history_raw')} AS history,
       tokens
FROM judged WHERE NOT (bad_id OR bad_user OR bad_time OR bad_cands) AND dup_of IS NULL;
INSERT INTO ids SELECT impression_id, line FROM kept;
"""
_KEPT_HISTORIES = "SELECT impression_id, user_id, time, day, history FROM kept ORDER BY line"
_KEPT_IMPRESSIONS = f"""
WITH exploded AS (
    SELECT line, impression_id, user_id, time, day, unnest(tokens) AS token,
           unnest(range(len(tokens)))::INTEGER AS position
    FROM kept
), labelled AS (
    SELECT *, CASE WHEN suffix(token, '-0') THEN 0 WHEN suffix(token, '-1') THEN 1 ELSE {UNKNOWN_LABEL} END::TINYINT
              AS label FROM exploded
), named AS (
    SELECT *, CASE WHEN label >= 0 THEN left(token, length(token) - 2) ELSE token END AS news_id FROM labelled
)
SELECT impression_id, user_id, time, day, position, named.news_id, label, n.news_id IS NOT NULL AS in_catalogue
FROM named LEFT JOIN news_ids n ON n.news_id = named.news_id
ORDER BY line, position
"""


def _typed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) for f in schema], schema=schema)


class RowSink:
    """Receives a chunk's kept rows, in file order (typed as IMPRESSIONS_SCHEMA / HISTORIES_SCHEMA)."""

    def add(self, impressions: pa.Table, histories: pa.Table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class InMemoryRows(RowSink):
    """Collects every kept row in memory (for small files: prediction, scoring, tests)."""

    def __init__(self) -> None:
        self.parts: list[tuple[pa.Table, pa.Table]] = []

    def add(self, impressions: pa.Table, histories: pa.Table) -> None:
        self.parts.append((impressions, histories))

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return (pa.concat_tables([i for i, _ in self.parts] or [IMPRESSIONS_SCHEMA.empty_table()]),
                pa.concat_tables([h for _, h in self.parts] or [HISTORIES_SCHEMA.empty_table()]))


class DayPartitions(RowSink):
    """Appends rows to ``<day>.parquet`` in an impressions folder and a histories folder (one row group per
    chunk and day); a single ``empty.parquet`` per folder when no row was kept, so the folders stay readable."""

    def __init__(self, impressions_dir: Path, histories_dir: Path):
        self.dirs = {"impressions": Path(impressions_dir), "histories": Path(histories_dir)}
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        self.writers: dict[tuple[str, str], pq.ParquetWriter] = {}

    def add(self, impressions: pa.Table, histories: pa.Table) -> None:
        for kind, table in (("impressions", impressions), ("histories", histories)):
            days = table.column("day")
            for day in pc.unique(days).to_pylist():
                key = (kind, day)
                if key not in self.writers:
                    self.writers[key] = pq.ParquetWriter(self.dirs[kind] / f"{day}.parquet", table.schema)
                self.writers[key].write_table(table.filter(pc.equal(days, day)))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        if not self.writers:
            pq.write_table(IMPRESSIONS_SCHEMA.empty_table(), self.dirs["impressions"] / "empty.parquet")
            pq.write_table(HISTORIES_SCHEMA.empty_table(), self.dirs["histories"] / "empty.parquet")


def duckdb_settings(memory_limit: str | None = None, threads: int | None = None) -> tuple[str, int]:
    """The (memory_limit, threads) to use: arguments first, then the environment, then the defaults."""
    memory = memory_limit or duckdb_memory_limit() or DEFAULT_MEMORY_LIMIT
    n = threads or duckdb_threads() or DEFAULT_THREADS
    return memory, n


def candidate_issue(tokens: list[str], require_labels: bool) -> str | None:
    """The reason the first bad candidate token is rejected (None when all are fine)."""
    if not tokens:
        return "no candidates"
    for token in tokens:
        news_id, sep, label = token.rpartition("-")
        if not sep:
            if require_labels:
                return f"candidate {token!r} has no '-0'/'-1' label"
        elif label not in ("0", "1") or not news_id:
            return f"candidate {token!r}: label {label!r} is not 0 or 1"
    return None


@dataclass
class BehaviorSummary:
    """Counts of the kept behaviour rows (what prepare_report.json states)."""

    n_impressions: int
    n_candidates: int
    n_users: int
    n_clicks: int
    days: list[str]
    candidates_per_day: dict[str, int]


class BehaviorStore:
    """A DuckDB database in ``work_dir`` that validates and explodes one behaviors file into a :class:`RowSink`.

    Use as a context manager; ``work_dir`` (database and spill files) is left for the caller to remove
    (prepare puts it inside its staging folder).
    """

    def __init__(self, work_dir: str | Path, *, memory_limit: str | None = None, threads: int | None = None):
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        memory, n_threads = duckdb_settings(memory_limit, threads)
        self.con = duckdb.connect(str(self.work_dir / "behaviors.duckdb"), config={
            "memory_limit": memory, "threads": n_threads, "temp_directory": str(self.work_dir / "spill"),
            "preserve_insertion_order": False,  # every chunk query orders by (line, position) itself
        })
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(_CREATE)

    def __enter__(self) -> BehaviorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def set_catalogue(self, news_ids: pa.Array | list[str]) -> None:
        """The news ids of news.tsv; call before :meth:`ingest` so ``in_catalogue`` is set while exploding."""
        self.con.register("catalogue", pa.table({"news_id": pa.array(news_ids, pa.string())}))
        self.con.execute("DELETE FROM news_ids; INSERT INTO news_ids SELECT DISTINCT news_id FROM catalogue")
        self.con.unregister("catalogue")

    def ingest(self, path: str | Path, sink: RowSink, *, require_labels: bool = True,
               chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: bool = True) -> FileValidation:
        """Validate ``path`` chunk by chunk, hand its good rows to ``sink`` and return its validation."""
        path = Path(path)
        file = str(path)
        result = FileValidation(file)
        for chunk in read_line_chunks(path, chunk_bytes, progress=progress):
            result.n_rows += chunk.n_lines
            issues = {line: [RowIssue(file, line, "row", reason)] for line, reason in chunk.undecodable}
            self.con.register("chunk", chunk.table)
            try:
                issues.update(self._shape_issues(file))
                self.con.execute(_CHECK.replace("$require_labels", "true" if require_labels else "false"))
                self.con.execute(_DUPLICATES)
                issues.update(self._field_issues(file, require_labels))
                self.con.execute(_KEEP)
                sink.add(_typed(self._arrow(_KEPT_IMPRESSIONS), IMPRESSIONS_SCHEMA),
                         _typed(self._arrow(_KEPT_HISTORIES), HISTORIES_SCHEMA))
            finally:
                self.con.unregister("chunk")
            for line in sorted(issues):
                result.reject(line, chunk.raw(line), issues[line])
        self.con.execute("DROP TABLE IF EXISTS lines; DROP TABLE IF EXISTS checked; DROP TABLE IF EXISTS judged; "
                         "DROP TABLE IF EXISTS kept")
        sink.close()
        return result

    def _arrow(self, sql: str) -> pa.Table:
        relation = self.con.sql(sql)
        return (getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table)()  # DuckDB >= 1.4 / older

    def _shape_issues(self, file: str) -> dict[int, list[RowIssue]]:
        """Empty lines and wrong column counts."""
        self.con.execute(_LINES)
        rows = self.con.execute("SELECT line, len(f), empty FROM lines WHERE empty OR len(f) <> 5").fetchall()
        n_columns = len(BEHAVIORS_TSV_COLUMNS)
        return {line: [RowIssue(file, line, "row", "empty line" if empty else
                                f"expected {n_columns} tab-separated columns, got {n}")]
                for line, n, empty in rows}

    def _field_issues(self, file: str, require_labels: bool) -> dict[int, list[RowIssue]]:
        """Issues of the rows the SQL checks rejected, worded as the row-by-row reader words them."""
        rows = self.con.execute("""
            SELECT line, imp_raw, imp_id, user_id, time_raw, tokens, bad_id, dup_of, bad_user, bad_time, bad_cands
            FROM judged WHERE bad_id OR bad_user OR bad_time OR bad_cands OR dup_of IS NOT NULL""").fetchall()
        out: dict[int, list[RowIssue]] = {}
        for line, imp_raw, imp_id, user, time_raw, tokens, bad_id, dup_of, bad_user, bad_time, bad_cands in rows:
            issues = []
            if bad_id:
                issues.append(RowIssue(file, line, "impression_id", f"not a non-negative integer: {imp_raw!r}"))
            if dup_of is not None:
                issues.append(RowIssue(file, line, "impression_id",
                                       f"duplicate impression id {imp_id} (first on line {dup_of})"))
            if bad_user:
                issues.append(RowIssue(file, line, "user_id", f"invalid user id {user!r}"))
            if bad_time:
                issues.append(RowIssue(file, line, "time",
                                       f"unparseable time {time_raw!r} (expected like '11/15/2019 8:55:22 AM')"))
            if bad_cands:
                reason = candidate_issue(list(tokens), require_labels)
                if reason is None:
                    raise RuntimeError(f"{file}:{line}: SQL and Python disagree on the candidates of this row")
                issues.append(RowIssue(file, line, "impressions", reason))
            out[line] = issues
        return out

    # ---- statistics over written day partitions -------------------------------------------------------

    def _one_row(self, sql: str, parameters: list[object]) -> tuple[Any, ...]:
        """The one row of an aggregate query."""
        row = self.con.execute(sql, parameters).fetchone()
        if row is None:
            raise RuntimeError(f"DuckDB returned no row for an aggregate query: {' '.join(sql.split())[:80]}")
        return row

    def summary(self, impressions_dir: Path, histories_dir: Path) -> BehaviorSummary:
        """Counts over the day files written by :class:`DayPartitions` (computed by DuckDB, out of core)."""
        hist, imps = _glob(histories_dir), _glob(impressions_dir)
        n_impressions, n_users = self._one_row(
            "SELECT count(*), count(DISTINCT user_id) FROM read_parquet(?)", [hist])
        per_day = self.con.execute(
            "SELECT day, count(*), count(*) FILTER (label = 1) FROM read_parquet(?) GROUP BY day ORDER BY day",
            [imps]).fetchall()
        return BehaviorSummary(
            n_impressions=int(n_impressions),
            n_candidates=sum(int(n) for _, n, _ in per_day),
            n_users=int(n_users),
            n_clicks=sum(int(c) for _, _, c in per_day),
            days=[day for day, _, _ in per_day],
            candidates_per_day={day: int(n) for day, n, _ in per_day},
        )

    def missing_news(self, impressions_dir: Path, histories_dir: Path) -> dict[str, Any]:
        """Counts of candidate rows and history entries whose news id is not in the catalogue."""
        rows, missing, distinct = self._one_row("""
            SELECT count(*), count(*) FILTER (NOT in_catalogue), count(DISTINCT news_id) FILTER (NOT in_catalogue)
            FROM read_parquet(?)""", [_glob(impressions_dir)])
        refs, hist_missing, hist_distinct = self._one_row("""
            WITH h AS (SELECT unnest(history) AS news_id FROM read_parquet(?))
            SELECT count(*), count(*) FILTER (n.news_id IS NULL), count(DISTINCT h.news_id) FILTER (n.news_id IS NULL)
            FROM h LEFT JOIN news_ids n ON n.news_id = h.news_id""", [_glob(histories_dir)])
        return {
            "candidate_rows": int(missing),
            "candidate_fraction": missing / rows if rows else 0.0,
            "distinct_candidate_ids": int(distinct),
            "history_refs": int(hist_missing),
            "history_fraction": hist_missing / refs if refs else 0.0,
            "distinct_history_ids": int(hist_distinct),
        }


def _glob(directory: Path) -> str:
    return str(Path(directory) / "*.parquet")
