"""Recency-weighted click popularity, checked by hand."""
import numpy as np
import pandas as pd
import pytest

from training.baselines.popularity import PopularityConfig, score_popularity

PAST = pd.DataFrame({
    "time": pd.to_datetime(["2019-11-13 00:00", "2019-11-12 00:00", "2019-11-13 12:00", "2019-11-13 12:00"], utc=True),
    "news_id": ["A", "A", "B", "C"], "label": [1, 1, 1, 0],
})
TARGETS = pd.DataFrame({
    "time": pd.to_datetime(["2019-11-14 00:00", "2019-11-14 00:00", "2019-11-14 00:00", "2019-11-14 00:00",
                            "2019-11-14 06:00", "2019-11-14 12:00"], utc=True),
    "news_id": ["A", "B", "C", "Z", "Z", "Z"], "label": [0, 0, 0, 0, 1, 0],
})


def test_days_before_only():
    scores = score_popularity(PAST, TARGETS, "2019-11-14", PopularityConfig(half_life_hours=24, same_day=False))
    # A: clicks 24 h and 48 h before the day -> 0.5 + 0.25; B: one click 12 h before -> 0.5 ** 0.5; C: no click
    # Z's click on the 14th is not used
    np.testing.assert_allclose(scores, [0.75, 0.5 ** 0.5, 0.0, 0.0, 0.0, 0.0])
    windowed = score_popularity(PAST, TARGETS, "2019-11-14",
                                PopularityConfig(half_life_hours=24, window_days=1, same_day=False))
    np.testing.assert_allclose(windowed, [0.5, 0.5 ** 0.5, 0.0, 0.0, 0.0, 0.0])


def test_same_day_clicks_count_only_for_later_impressions():
    scores = score_popularity(PAST, TARGETS, "2019-11-14", PopularityConfig(half_life_hours=24))
    # Z is clicked at 06:00: it scores 0 at 00:00 and at 06:00 itself (no own click), 0.5 ** (6/24) at 12:00
    np.testing.assert_allclose(scores, [0.75, 0.5 ** 0.5, 0.0, 0.0, 0.0, 0.5 ** 0.25])


def test_bad_config():
    with pytest.raises(ValueError, match="half_life_hours"):
        PopularityConfig(half_life_hours=0)
