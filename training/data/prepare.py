"""Turn a raw MIND folder (news.tsv, behaviors.tsv[, user_profiles.tsv, user_signals.tsv]) into validated parquet
tables.

Behaviours go through the out-of-core DuckDB engine (:mod:`training.data.behaviors_duckdb`); impressions
and histories are written as one parquet file per day (``impressions.parquet/2019-11-14.parquet``).
The output folder is written atomically (built beside the target, then swapped in), so a crash mid-run
never leaves a half-written data version behind.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from training.data.behaviors_duckdb import BehaviorStore, DayPartitions
from training.data.line_chunks import DEFAULT_CHUNK_BYTES
from training.data.mind_reader import read_behaviors, read_news, read_user_profiles, read_user_signals
from training.data.schema import (
    HISTORIES_FILE,
    IMPRESSIONS_FILE,
    NEWS_FILE,
    USER_PROFILES_FILE,
    USER_SIGNALS_FILE,
    USER_SIGNALS_TSV,
)
from training.data.validation import DataValidationError, FileValidation
from training.staging import staged_dir

REPORT_FILE = "prepare_report.json"
QUARANTINE_DIR = "quarantine"


@dataclass
class MissingNews:
    """News ids referenced in behaviors but absent from news.tsv (they keep ID-only features downstream)."""

    candidate_rows: int
    candidate_fraction: float
    distinct_candidate_ids: int
    history_refs: int
    history_fraction: float
    distinct_history_ids: int


@dataclass
class PrepareReport:
    raw_dir: str
    n_news: int
    n_impressions: int
    n_candidates: int
    n_users: int
    n_clicks: int
    days: list[str]
    candidates_per_day: dict[str, int]
    missing_news: MissingNews
    bad_rows: dict[str, int] = field(default_factory=dict)
    issues_by_field: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass
class MindTables:
    """The validated tables of one MIND folder, in memory (small folders: prediction, scoring)."""

    news: pd.DataFrame
    impressions: pd.DataFrame
    histories: pd.DataFrame
    user_profiles: pd.DataFrame | None
    validations: list[FileValidation]
    user_signals: pd.DataFrame | None = None


def _require_mind_files(raw_dir: Path) -> None:
    for name in ("news.tsv", "behaviors.tsv"):
        if not (raw_dir / name).is_file():
            raise FileNotFoundError(f"{raw_dir / name} not found: a MIND folder holds news.tsv and behaviors.tsv")


def _optional_files(raw_dir: Path,
                    validations: list[FileValidation]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(user profiles, user signals) of ``raw_dir``, None for an absent file; their validations join ``validations``."""
    tables: list[pd.DataFrame | None] = []
    for name, reader in (("user_profiles.tsv", read_user_profiles), (USER_SIGNALS_TSV, read_user_signals)):
        table = None
        if (raw_dir / name).is_file():
            table, validation = reader(raw_dir / name)
            validations.append(validation)
        tables.append(table)
    return tables[0], tables[1]


def read_mind_dir(raw_dir: str | Path, *, require_labels: bool = True) -> MindTables:
    """Read and validate every MIND file in ``raw_dir`` into memory (user_profiles.tsv and user_signals.tsv are
    optional)."""
    raw_dir = Path(raw_dir)
    _require_mind_files(raw_dir)
    news, news_v = read_news(raw_dir / "news.tsv")
    impressions, histories, beh_v = read_behaviors(
        raw_dir / "behaviors.tsv", require_labels=require_labels, news_ids=news["news_id"])
    validations = [news_v, beh_v]
    profiles, signals = _optional_files(raw_dir, validations)
    return MindTables(news, impressions, histories, profiles, validations, signals)


@dataclass
class IngestedMind:
    """A MIND folder validated into a :class:`BehaviorStore` (behaviours) plus the small tables in memory."""

    news: pd.DataFrame
    user_profiles: pd.DataFrame | None
    validations: list[FileValidation]
    user_signals: pd.DataFrame | None = None


def ingest_mind_dir(raw_dir: Path, store: BehaviorStore, out_dir: Path, *, require_labels: bool = True,
                    chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> IngestedMind:
    """Validate every MIND file of ``raw_dir``; behaviours go out of core, by day, into ``out_dir``."""
    _require_mind_files(raw_dir)
    news, news_v = read_news(raw_dir / "news.tsv")
    store.set_catalogue(news["news_id"].tolist())
    beh_v = store.ingest(raw_dir / "behaviors.tsv", DayPartitions(out_dir / IMPRESSIONS_FILE, out_dir / HISTORIES_FILE),
                         require_labels=require_labels, chunk_bytes=chunk_bytes)
    validations = [news_v, beh_v]
    profiles, signals = _optional_files(raw_dir, validations)
    return IngestedMind(news, profiles, validations, signals)


@dataclass
class MindValidation:
    """What ``newsforge data validate`` prints: per-file validations and the missing-news statistics."""

    validations: list[FileValidation]
    missing_news: MissingNews


def validate_mind_dir(raw_dir: str | Path, *, require_labels: bool = True, memory_limit: str | None = None,
                      threads: int | None = None) -> MindValidation:
    """Validate ``raw_dir`` through the out-of-core engine without keeping its tables."""
    with tempfile.TemporaryDirectory(prefix="newsforge-validate-") as work, \
            BehaviorStore(work, memory_limit=memory_limit, threads=threads) as store:
        out = Path(work) / "rows"
        ingested = ingest_mind_dir(Path(raw_dir), store, out, require_labels=require_labels)
        missing = store.missing_news(out / IMPRESSIONS_FILE, out / HISTORIES_FILE)
        return MindValidation(ingested.validations, MissingNews(**missing))


def check_bad_fraction(validations: list[FileValidation], max_bad_fraction: float) -> None:
    """Raise :class:`DataValidationError` when any file's bad-row fraction exceeds the limit."""
    if any(v.n_bad and v.bad_fraction > max_bad_fraction for v in validations):
        raise DataValidationError(validations, max_bad_fraction)


def prepare(raw_dir: str | Path, out_dir: str | Path, *, max_bad_fraction: float = 0.0,
            memory_limit: str | None = None, threads: int | None = None,
            chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> PrepareReport:
    """Validate ``raw_dir`` and write parquet tables, the quarantine and a report into ``out_dir``.

    Raises :class:`DataValidationError` (naming file, line, field and reason) when a file's share of bad
    rows exceeds ``max_bad_fraction``; below it, bad rows are quarantined verbatim and counted.
    Behaviours are processed out of core (DuckDB, bounded by ``memory_limit``, spilling inside the staging
    folder) and written as one parquet file per day under ``impressions.parquet/`` and ``histories.parquet/``.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    _require_mind_files(raw_dir)
    with staged_dir(out_dir) as staging:
        work = staging / ".duckdb"
        try:
            with BehaviorStore(work, memory_limit=memory_limit, threads=threads) as store:
                ingested = ingest_mind_dir(raw_dir, store, staging, chunk_bytes=chunk_bytes)
                check_bad_fraction(ingested.validations, max_bad_fraction)
                summary = store.summary(staging / IMPRESSIONS_FILE, staging / HISTORIES_FILE)
                missing = MissingNews(**store.missing_news(staging / IMPRESSIONS_FILE, staging / HISTORIES_FILE))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        issues_by_field: dict[str, int] = {}
        for v in ingested.validations:
            for issue in v.issues:
                key = f"{Path(issue.file).name}:{issue.field}"
                issues_by_field[key] = issues_by_field.get(key, 0) + 1
        report = PrepareReport(
            raw_dir=str(raw_dir),
            n_news=len(ingested.news),
            **asdict(summary),   # the behaviour counts DuckDB computed over the written day files
            missing_news=missing,
            bad_rows={Path(v.file).name: v.n_bad for v in ingested.validations},
            issues_by_field=issues_by_field,
        )
        ingested.news.to_parquet(staging / NEWS_FILE, index=False)
        if ingested.user_profiles is not None:
            ingested.user_profiles.to_parquet(staging / USER_PROFILES_FILE, index=False)
        if ingested.user_signals is not None:
            ingested.user_signals.to_parquet(staging / USER_SIGNALS_FILE, index=False)
        for v in ingested.validations:
            v.write_quarantine(staging / QUARANTINE_DIR)
        (staging / REPORT_FILE).write_text(report.to_json() + "\n", encoding="utf-8")
    return report
