"""Recency-weighted click popularity, checked by hand."""
import numpy as np
import pandas as pd
import pytest

from training.baselines.popularity import PopularityConfig, popularity_metrics, popularity_scores, score_popularity
from training.metrics.mind import mind_metrics

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


SCORED = pd.DataFrame({"impression_id": [1, 1, 2, 2], "position": [0, 1, 0, 1], "news_id": ["A", "B", "A", "C"],
                       "label": [1, 0, 0, 1], "score": [0.5, 0.25, 2.0, 0.0]})


def test_popularity_scores_match_pairs_by_impression_and_position():
    """Scores follow the pairs' order, matched on both keys (the same news in two impressions scores differently)."""
    pairs = pd.DataFrame({"impression_id": [2, 1, 2, 1], "position": [1, 1, 0, 0],
                          "trigger_id": ["T", "T", "T", "T"], "candidate_id": ["C", "B", "A", "A"]})
    scores = popularity_scores(SCORED, pairs)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, [0.0, 0.25, 2.0, 0.5])


def test_popularity_scores_name_the_unscored_pair():
    pairs = pd.DataFrame({"impression_id": [1, 3, 2], "position": [0, 4, 5]})
    with pytest.raises(ValueError, match=r"not score 2 of 3 evaluation pairs \(first: impression_id 3, position 4\)"):
        popularity_scores(SCORED, pairs)


def test_popularity_metrics_on_exactly_the_gate_impressions():
    metrics = popularity_metrics(SCORED, [2, 1, 1])
    assert metrics == mind_metrics(SCORED["impression_id"], SCORED["label"], SCORED["score"]).as_dict()
    assert metrics["auc"] == 0.5 and metrics["n_impressions"] == 2   # impression 1 ranked right, 2 wrong
    with pytest.raises(ValueError, match=r"\(1 of 3 unscored, 0 others scored\)"):
        popularity_metrics(SCORED, [1, 2, 3])
    with pytest.raises(ValueError, match=r"\(0 of 1 unscored, 1 others scored\)"):
        popularity_metrics(SCORED, [1])
