"""Recency-weighted click popularity: the floor every learned model must beat.

A candidate shown at time ``t`` scores ``sum(0.5 ** ((t - t_click) / half_life_hours))`` over the
earlier clicks on the same news. Two horizons:

- ``same_day=True`` (default): every click strictly before the impression time, the target day's
  included, as an online popularity counter would see it. Causal: an impression never sees its
  own or later clicks.
- ``same_day=False``: only clicks on the days before the target day, decayed to its start. On
  fresh-news data this is a weak floor: yesterday's hits are today's stale news.

News never clicked before score 0 (ties are broken by candidate order in the metrics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PopularityConfig:
    half_life_hours: float = 24.0
    window_days: int | None = None  # None: every day before the target day
    same_day: bool = True

    def __post_init__(self) -> None:
        if self.half_life_hours <= 0:
            raise ValueError(f"half_life_hours must be > 0, got {self.half_life_hours}")
        if self.window_days is not None and self.window_days < 1:
            raise ValueError(f"window_days must be >= 1 or None, got {self.window_days}")


def _hours(times: np.ndarray, origin: np.datetime64) -> np.ndarray:
    return (times - origin) / np.timedelta64(1, "h")


def _utc(times: pd.Series) -> np.ndarray:
    """Naive UTC datetime64 values."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def score_popularity(past_impressions: pd.DataFrame, targets: pd.DataFrame, day: str,
                     config: PopularityConfig = PopularityConfig()) -> np.ndarray:
    """Scores for ``targets`` (a day's candidates, with ``news_id`` and ``time``), aligned with its rows.

    ``past_impressions`` holds the labelled candidates of the days before ``day``; with ``same_day`` the
    clicks among ``targets`` themselves are used too, each only for impressions strictly later.
    """
    start = pd.Timestamp(day, tz="UTC")
    events = past_impressions
    if config.window_days is not None:
        events = events[events["time"] >= start - pd.Timedelta(days=config.window_days)]
    events = events[(events["label"] == 1) & (events["time"] < start)]
    if config.same_day:
        events = pd.concat([events, targets[targets["label"] == 1]], ignore_index=True)
    # decay(t - tc) = 2**(-(t - start)/h) * 2**((tc - start)/h): a cumulative sum per news, then an as-of lookup
    h = config.half_life_hours
    origin = np.datetime64(start.tz_localize(None), "ns")
    click_times = _utc(events["time"])
    clicks = pd.DataFrame({"news_id": events["news_id"].to_numpy(), "time": click_times,
                           "w": np.exp2(_hours(click_times, origin) / h)}).sort_values("time", kind="stable")
    clicks["cum"] = clicks.groupby("news_id")["w"].cumsum()
    # several clicks at the same second: keep the last cumulative value
    clicks = clicks.drop_duplicates(["news_id", "time"], keep="last")
    when = _utc(targets["time"]) if config.same_day else np.full(len(targets), origin)
    query = pd.DataFrame({"news_id": targets["news_id"].to_numpy(), "time": when,
                          "row": np.arange(len(targets))}).sort_values("time", kind="stable")
    joined = pd.merge_asof(query, clicks[["news_id", "time", "cum"]], on="time", by="news_id",
                           allow_exact_matches=False)
    decay = np.exp2(-_hours(joined["time"].to_numpy(), origin) / h)
    scores = np.empty(len(targets))
    scores[joined["row"].to_numpy()] = joined["cum"].fillna(0.0).to_numpy() * decay
    return scores
