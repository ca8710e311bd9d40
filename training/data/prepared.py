"""Load the parquet tables written by :func:`training.data.prepare.prepare`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.data.schema import HISTORIES_FILE, IMPRESSIONS_FILE, NEWS_FILE, USER_PROFILES_FILE


@dataclass
class BehaviorLog:
    """Impressions (one row per candidate) and histories (one row per impression) of some days."""

    impressions: pd.DataFrame
    histories: pd.DataFrame

    @property
    def days(self) -> list[str]:
        return sorted(self.histories["day"].unique().tolist())

    def select_days(self, days: list[str]) -> "BehaviorLog":
        return BehaviorLog(
            self.impressions[self.impressions["day"].isin(days)].reset_index(drop=True),
            self.histories[self.histories["day"].isin(days)].reset_index(drop=True),
        )

    def before(self, day: str, window_days: int | None = None) -> "BehaviorLog":
        """The days strictly before ``day`` (the last ``window_days`` of them when given)."""
        earlier = [d for d in self.days if d < day]
        return self.select_days(earlier[-window_days:] if window_days else earlier)


def load_news(prepared_dir: str | Path) -> pd.DataFrame:
    return pd.read_parquet(Path(prepared_dir) / NEWS_FILE)


def load_behaviors(prepared_dir: str | Path) -> BehaviorLog:
    prepared_dir = Path(prepared_dir)
    return BehaviorLog(pd.read_parquet(prepared_dir / IMPRESSIONS_FILE), pd.read_parquet(prepared_dir / HISTORIES_FILE))


def load_user_profiles(prepared_dir: str | Path) -> pd.DataFrame | None:
    path = Path(prepared_dir) / USER_PROFILES_FILE
    return pd.read_parquet(path) if path.is_file() else None
