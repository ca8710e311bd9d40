"""Turn a raw MIND folder (news.tsv, behaviors.tsv[, user_profiles.tsv]) into validated parquet tables.

The output folder is written atomically (built beside the target, then swapped in), so a crash mid-run
never leaves a half-written data version behind.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from training.data.mind_reader import mark_catalogue, read_behaviors, read_news, read_user_profiles
from training.data.schema import HISTORIES_FILE, IMPRESSIONS_FILE, NEWS_FILE, USER_PROFILES_FILE
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
    """The validated tables of one MIND folder."""

    news: pd.DataFrame
    impressions: pd.DataFrame
    histories: pd.DataFrame
    user_profiles: pd.DataFrame | None
    validations: list[FileValidation]


def read_mind_dir(raw_dir: str | Path, *, require_labels: bool = True) -> MindTables:
    """Read and validate every MIND file in ``raw_dir`` (user_profiles.tsv is optional)."""
    raw_dir = Path(raw_dir)
    for name in ("news.tsv", "behaviors.tsv"):
        if not (raw_dir / name).is_file():
            raise FileNotFoundError(f"{raw_dir / name} not found: a MIND folder holds news.tsv and behaviors.tsv")
    news, news_v = read_news(raw_dir / "news.tsv")
    impressions, histories, beh_v = read_behaviors(raw_dir / "behaviors.tsv", require_labels=require_labels)
    validations = [news_v, beh_v]
    profiles = None
    if (raw_dir / "user_profiles.tsv").is_file():
        profiles, prof_v = read_user_profiles(raw_dir / "user_profiles.tsv")
        validations.append(prof_v)
    return MindTables(news, mark_catalogue(impressions, news), histories, profiles, validations)


def check_bad_fraction(validations: list[FileValidation], max_bad_fraction: float) -> None:
    """Raise :class:`DataValidationError` when any file's bad-row fraction exceeds the limit."""
    if any(v.n_bad and v.bad_fraction > max_bad_fraction for v in validations):
        raise DataValidationError(validations, max_bad_fraction)


def missing_news(tables: MindTables) -> MissingNews:
    imps = tables.impressions
    missing = ~imps["in_catalogue"]
    hist = tables.histories["history"].explode().dropna()
    hist_missing = ~hist.isin(tables.news["news_id"])
    return MissingNews(
        candidate_rows=int(missing.sum()),
        candidate_fraction=float(missing.mean()) if len(imps) else 0.0,
        distinct_candidate_ids=int(imps.loc[missing, "news_id"].nunique()),
        history_refs=int(hist_missing.sum()),
        history_fraction=float(hist_missing.mean()) if len(hist) else 0.0,
        distinct_history_ids=int(hist[hist_missing].nunique()),
    )


def prepare(raw_dir: str | Path, out_dir: str | Path, *, max_bad_fraction: float = 0.0) -> PrepareReport:
    """Validate ``raw_dir`` and write parquet tables, the quarantine and a report into ``out_dir``.

    Raises :class:`DataValidationError` (naming file, line, field and reason) when a file's share of bad
    rows exceeds ``max_bad_fraction``; below it, bad rows are quarantined verbatim and counted.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    tables = read_mind_dir(raw_dir)
    check_bad_fraction(tables.validations, max_bad_fraction)
    imps = tables.impressions
    issues_by_field: dict[str, int] = {}
    for v in tables.validations:
        for issue in v.issues:
            key = f"{Path(issue.file).name}:{issue.field}"
            issues_by_field[key] = issues_by_field.get(key, 0) + 1
    report = PrepareReport(
        raw_dir=str(raw_dir),
        n_news=len(tables.news),
        n_impressions=len(tables.histories),
        n_candidates=len(imps),
        n_users=int(tables.histories["user_id"].nunique()),
        n_clicks=int((imps["label"] == 1).sum()),
        days=sorted(tables.histories["day"].unique().tolist()),
        candidates_per_day={str(k): int(v) for k, v in imps.groupby("day").size().items()},
        missing_news=missing_news(tables),
        bad_rows={Path(v.file).name: v.n_bad for v in tables.validations},
        issues_by_field=issues_by_field,
    )
    with staged_dir(out_dir) as staging:
        tables.news.to_parquet(staging / NEWS_FILE, index=False)
        imps.to_parquet(staging / IMPRESSIONS_FILE, index=False)
        tables.histories.to_parquet(staging / HISTORIES_FILE, index=False)
        if tables.user_profiles is not None:
            tables.user_profiles.to_parquet(staging / USER_PROFILES_FILE, index=False)
        for v in tables.validations:
            v.write_quarantine(staging / QUARANTINE_DIR)
        (staging / REPORT_FILE).write_text(report.to_json() + "\n", encoding="utf-8")
    return report
