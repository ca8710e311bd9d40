"""Recency-weighted click popularity: the floor every learned model must beat.

A candidate's score is the sum over its clicks in the days before the target day of
``0.5 ** (age_hours / half_life_hours)``, age measured from the start of the target day. News never
clicked before score 0 (ties are broken by candidate order in the metrics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PopularityConfig:
    half_life_hours: float = 24.0
    window_days: int | None = None  # None: every day before the target day

    def __post_init__(self) -> None:
        if self.half_life_hours <= 0:
            raise ValueError(f"half_life_hours must be > 0, got {self.half_life_hours}")
        if self.window_days is not None and self.window_days < 1:
            raise ValueError(f"window_days must be >= 1 or None, got {self.window_days}")


def click_popularity(past_impressions: pd.DataFrame, as_of: pd.Timestamp, half_life_hours: float) -> pd.Series:
    """Recency-weighted click counts per news id from impressions strictly before ``as_of``."""
    clicks = past_impressions[(past_impressions["label"] == 1) & (past_impressions["time"] < as_of)]
    age_hours = (as_of - clicks["time"]).dt.total_seconds().to_numpy() / 3600.0
    weights = np.power(0.5, age_hours / half_life_hours)
    return pd.Series(weights, index=clicks["news_id"].to_numpy()).groupby(level=0).sum()


def score_popularity(past_impressions: pd.DataFrame, targets: pd.DataFrame, day: str,
                     config: PopularityConfig = PopularityConfig()) -> np.ndarray:
    """Scores for ``targets`` rows (a day's candidates) from clicks on the days before ``day``."""
    as_of = pd.Timestamp(day, tz="UTC")
    if config.window_days is not None:
        past_impressions = past_impressions[past_impressions["time"] >= as_of - pd.Timedelta(days=config.window_days)]
    popularity = click_popularity(past_impressions, as_of, config.half_life_hours)
    return targets["news_id"].map(popularity).fillna(0.0).to_numpy(dtype=np.float64)
