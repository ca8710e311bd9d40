"""Load the parquet tables written by :func:`training.data.prepare.prepare` (behaviours: one file per day)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from training.data.schema import (
    HISTORIES_FILE,
    IMPRESSIONS_FILE,
    NEWS_FILE,
    USER_PROFILES_FILE,
    USER_SIGNALS_FILE,
)


@dataclass
class BehaviorLog:
    """Impressions (one row per candidate) and histories (one row per impression) of some days."""

    impressions: pd.DataFrame
    histories: pd.DataFrame

    @property
    def days(self) -> list[str]:
        return sorted(self.histories["day"].unique().tolist())

    def select_days(self, days: list[str]) -> BehaviorLog:
        return BehaviorLog(
            self.impressions[self.impressions["day"].isin(days)].reset_index(drop=True),
            self.histories[self.histories["day"].isin(days)].reset_index(drop=True),
        )

    def before(self, day: str, window_days: int | None = None) -> BehaviorLog:
        """The days strictly before ``day`` (the last ``window_days`` of them when given)."""
        earlier = [d for d in self.days if d < day]
        return self.select_days(earlier[-window_days:] if window_days else earlier)


def load_news(prepared_dir: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(prepared_dir) / NEWS_FILE)


def load_behaviors(prepared_dir: str | Path, days: list[str] | None = None) -> BehaviorLog:
    """The behaviour log of ``prepared_dir``: every day, or only ``days`` (reading only those days' files)."""
    prepared_dir = Path(prepared_dir)
    return BehaviorLog(_read_days(prepared_dir / IMPRESSIONS_FILE, days),
                       _read_days(prepared_dir / HISTORIES_FILE, days))


def _read_days(path: Path, days: list[str] | None) -> pd.DataFrame:
    """A table stored as one ``<day>.parquet`` per day in folder ``path`` (or, in older folders, one file)."""
    if path.is_file():
        frame = pd.read_parquet(path)
        return frame if days is None else frame[frame["day"].isin(days)].reset_index(drop=True)
    if days is None:
        return pd.read_parquet(path)
    files = [str(path / f"{day}.parquet") for day in sorted(set(days)) if (path / f"{day}.parquet").is_file()]
    if files:
        return pq.read_table(files).to_pandas()
    return pq.read_schema(next(path.glob("*.parquet"))).empty_table().to_pandas()  # same dtypes, no rows


def load_user_profiles(prepared_dir: str | Path) -> pd.DataFrame | None:
    path = Path(prepared_dir) / USER_PROFILES_FILE
    return pd.read_parquet(path) if path.is_file() else None


def load_user_signals(prepared_dir: str | Path) -> pd.DataFrame | None:
    """The user signals (user_id, time, kind, text; sorted by time, user_id), None when the raw folder had no
    user_signals.tsv (real MIND has none)."""
    path = Path(prepared_dir) / USER_SIGNALS_FILE
    return pd.read_parquet(path) if path.is_file() else None
