"""Versioned per-trigger candidate lists in SQLite (WAL), read by serving while a refresh writes.

One row per (version, trigger_id, path) holds that list's news ids (JSON text) and scores (float32 bytes).
A version's rows and the switch of the ``current`` pointer commit in one transaction, so a reader sees
the old version complete or the new one complete; WAL lets readers (other threads or processes, each
with its own store) read while the writer holds its write transaction.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from training.retrieval.recall_paths import RecallPath

CANDIDATE_COLUMNS = ("trigger_id", "path", "rank", "news_id", "score")
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version TEXT PRIMARY KEY, created TEXT NOT NULL, seq INTEGER NOT NULL,
    n_triggers INTEGER NOT NULL, meta TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    version TEXT NOT NULL, trigger_id TEXT NOT NULL, path TEXT NOT NULL,
    news_ids TEXT NOT NULL, scores BLOB NOT NULL,
    PRIMARY KEY (version, trigger_id, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pointer (name TEXT PRIMARY KEY, version TEXT NOT NULL);
"""


class CandidateStore:
    """SQLite-backed candidate store; one connection per store, shared by threads under a lock."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"no candidate store at {self.path}")
            uri = f"file:{self.path.resolve()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not readonly:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    # -- writing -----------------------------------------------------------------------------------------
    def write(self, version: str, candidates: pd.DataFrame, meta: dict[str, Any] | None = None, keep: int = 3) -> int:
        """Store ``candidates`` as ``version`` and make it current, atomically; keep the newest ``keep``
        versions. Returns the number of (trigger, path) rows written."""
        if self.readonly:
            raise PermissionError(f"candidate store {self.path} is open read-only")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
        if missing:
            raise ValueError(f"candidates lack column(s) {missing}; expected {list(CANDIDATE_COLUMNS)}")
        rows = _pack(candidates)
        n_triggers = int(candidates["trigger_id"].nunique())
        meta_text = json.dumps(meta or {}, default=str)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM versions WHERE version = ?", (version,)).fetchone():
                    raise ValueError(f"candidate version {version!r} already exists in {self.path}")
                seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM versions").fetchone()[0]
                conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?)",
                             (version, created, seq, n_triggers, meta_text))
                conn.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?)",
                                 ((version, *row) for row in rows))
                conn.execute("INSERT OR REPLACE INTO pointer VALUES ('current', ?)", (version,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._prune(keep)
        return len(rows)

    def _prune(self, keep: int) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = [r[0] for r in conn.execute(
                "SELECT version FROM versions WHERE version != (SELECT version FROM pointer WHERE name='current') "
                "ORDER BY seq DESC LIMIT -1 OFFSET ?", (keep - 1,))]
            for version in old:
                conn.execute("DELETE FROM candidates WHERE version = ?", (version,))
                conn.execute("DELETE FROM versions WHERE version = ?", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reading -----------------------------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # an empty store (read-only before any write)
                raise

    def current_version(self) -> str | None:
        rows = self._query("SELECT version FROM pointer WHERE name = 'current'")
        return rows[0][0] if rows else None

    def versions(self) -> list[dict[str, Any]]:
        """Stored versions, newest first: version, created (ISO), n_triggers, meta, current."""
        current = self.current_version()
        rows = self._query("SELECT version, created, n_triggers, meta FROM versions ORDER BY seq DESC")
        return [{"version": v, "created": c, "n_triggers": n, "meta": json.loads(m), "current": v == current}
                for v, c, n, m in rows]

    def _resolve(self, version: str | None) -> str | None:
        return version if version is not None else self.current_version()

    def lookup(self, trigger_id: str, path: str = RecallPath.UNION,
               version: str | None = None) -> list[tuple[str, float]]:
        """(news_id, score) best first for one trigger; [] when unknown."""
        return self.lookup_many([trigger_id], path, version)[trigger_id]

    def lookup_many(self, trigger_ids: list[str], path: str = RecallPath.UNION,
                    version: str | None = None) -> dict[str, list[tuple[str, float]]]:
        """``lookup`` for many triggers, read in one snapshot (one statement per 500 triggers)."""
        out: dict[str, list[tuple[str, float]]] = {t: [] for t in trigger_ids}
        unique = list(out)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN")  # one read snapshot: the version cannot change between statements
            try:
                if version is None:
                    row = conn.execute("SELECT version FROM pointer WHERE name = 'current'").fetchone()
                    version = row[0] if row else None
                if version is None:
                    return out
                for start in range(0, len(unique), 500):
                    chunk = unique[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    for trigger, news_ids, scores in conn.execute(
                            f"SELECT trigger_id, news_ids, scores FROM candidates WHERE version = ? AND path = ? "
                            f"AND trigger_id IN ({marks})", (version, path, *chunk)):
                        out[trigger] = list(zip(json.loads(news_ids),
                                                np.frombuffer(scores, dtype=np.float32).tolist()))
            except sqlite3.OperationalError as exc:
                if "no such table" not in str(exc):
                    raise
            finally:
                conn.execute("COMMIT")
        return out

    def paths(self, version: str | None = None) -> list[str]:
        version = self._resolve(version)
        if version is None:
            return []
        return [r[0] for r in self._query("SELECT DISTINCT path FROM candidates WHERE version = ? ORDER BY path",
                                          (version,))]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pack(candidates: pd.DataFrame) -> list[tuple[str, str, str, bytes]]:
    """(trigger_id, path, news_ids JSON, float32 score bytes) per (trigger, path), ordered by rank."""
    if candidates.empty:
        return []
    frame = candidates.loc[:, list(CANDIDATE_COLUMNS)].sort_values(["trigger_id", "path", "rank"], kind="stable")
    if frame[["trigger_id", "path", "news_id"]].isna().any().any():
        raise ValueError("candidates have missing trigger_id, path or news_id values")
    scores = pd.to_numeric(frame["score"], errors="raise").to_numpy(np.float32)
    news = frame["news_id"].astype(str).to_numpy()
    keys = frame[["trigger_id", "path"]].astype(str)
    starts = np.flatnonzero(keys.ne(keys.shift()).any(axis=1).to_numpy())
    ends = np.append(starts[1:], len(frame))
    trig, paths = keys["trigger_id"].to_numpy(), keys["path"].to_numpy()
    return [(trig[s], paths[s], json.dumps(news[s:e].tolist()), scores[s:e].tobytes()) for s, e in zip(starts, ends)]
