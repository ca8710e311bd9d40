"""Recency-weighted click popularity, checked by hand."""
import numpy as np
import pandas as pd
import pytest

from training.baselines.popularity import PopularityConfig, score_popularity


def test_recency_weighted_clicks():
    t = pd.to_datetime(["2019-11-13 00:00", "2019-11-12 00:00", "2019-11-13 12:00", "2019-11-13 12:00", "2019-11-14 01:00"], utc=True)
    past = pd.DataFrame({"time": t, "news_id": ["A", "A", "B", "C", "A"], "label": [1, 1, 1, 0, 1]})
    targets = pd.DataFrame({"news_id": ["A", "B", "C", "Z"]})
    scores = score_popularity(past, targets, "2019-11-14", PopularityConfig(half_life_hours=24))
    # A: clicks 24 h and 48 h before the day -> 0.5 + 0.25 (the click on the 14th is not in the past)
    # B: one click 12 h before -> 0.5 ** 0.5; C: no click; Z: never seen
    np.testing.assert_allclose(scores, [0.75, 0.5 ** 0.5, 0.0, 0.0])
    windowed = score_popularity(past, targets, "2019-11-14", PopularityConfig(half_life_hours=24, window_days=1))
    np.testing.assert_allclose(windowed, [0.5, 0.5 ** 0.5, 0.0, 0.0])


def test_bad_config():
    with pytest.raises(ValueError, match="half_life_hours"):
        PopularityConfig(half_life_hours=0)
