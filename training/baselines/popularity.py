"""Recency-weighted click popularity: the floor every learned model must beat.

A candidate shown at time ``t`` scores ``sum(0.5 ** ((t - t_click) / half_life_hours))`` over the
earlier clicks on the same news. Two horizons:

- ``same_day=True`` (default): every click strictly before the impression time, the target day's
  included, as an online popularity counter would see it. Causal: an impression never sees its
  own or later clicks.
- ``same_day=False``: only clicks on the days before the target day, decayed to its start. On
  fresh-news data this is a weak floor: yesterday's hits are today's stale news.

News never clicked before score 0 (ties are broken by candidate order in the metrics).
:func:`popularity_scores` reads the scored baseline back for other evaluation rows (by impression and position),
:func:`popularity_metrics` scores it with MIND's metrics on the impressions a gate measures.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.metrics.mind import mind_metrics


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


def popularity_scores(popularity_baseline: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """The popularity baseline's score of each row of ``pairs``, aligned with them, matched by ``impression_id``
    and ``position``. ``popularity_baseline``: the scored candidates (impression_id, position, score)."""
    pop = popularity_baseline[["impression_id", "position", "score"]]
    merged = pairs[["impression_id", "position"]].merge(pop, on=["impression_id", "position"], how="left")
    missing = merged["score"].isna()
    if missing.any():
        first = merged.loc[missing, ["impression_id", "position"]].iloc[0]
        raise ValueError(f"popularity_baseline does not score {int(missing.sum())} of {len(pairs)} evaluation pairs "
                         f"(first: impression_id {first['impression_id']}, position {first['position']}); "
                         "materialise it for this partition")
    return merged["score"].to_numpy(np.float64)


def popularity_metrics(popularity_baseline: pd.DataFrame, impression_ids: Iterable[int]) -> dict[str, float | int]:
    """MIND's metrics of the popularity baseline (impression_id, label, score), which must score exactly the
    impressions ``impression_ids`` (a gate's slice: the partition day)."""
    scored, wanted = set(popularity_baseline["impression_id"]), set(impression_ids)
    if scored != wanted:
        raise ValueError(f"popularity_baseline does not score the partition day's impressions ({len(wanted - scored)} "
                         f"of {len(wanted)} unscored, {len(scored - wanted)} others scored); materialise it again")
    pop = popularity_baseline
    return mind_metrics(pop["impression_id"], pop["label"], pop["score"]).as_dict()
