"""The click pairs of the query targets: clicked pairs with their impression's time, the most clicked triggers'."""
from __future__ import annotations

import pandas as pd
import pytest

from training.slm.query_targets import timed_clicks

T = pd.Timestamp("2019-11-13 09:00")
PAIRS = pd.DataFrame({
    "impression_id": ["i1", "i1", "i2", "i3", "i4", "i5", "i5"],
    "trigger_id": ["A", "A", "A", "B", "C", "B", "C"],
    "candidate_id": ["x", "y", "z", "x", "y", "z", "x"],
    "clicked": [1, 0, 1, 1, 1, 1, 1],
})
HISTORIES = pd.DataFrame({"impression_id": ["i1", "i2", "i3", "i4", "i5"],
                          "time": [T, T + pd.Timedelta(hours=1), T, None, T + pd.Timedelta(hours=2)]})


def test_clicked_pairs_get_their_impression_time_and_untimed_ones_are_dropped():
    clicks = timed_clicks(PAIRS, HISTORIES)
    assert list(clicks.columns) == ["trigger_id", "candidate_id", "time"]
    assert list(zip(clicks["trigger_id"], clicks["candidate_id"])) == [("A", "x"), ("A", "z"), ("B", "x"),
                                                                       ("B", "z"), ("C", "x")]  # no i4: no time
    assert clicks["time"].tolist() == [T, T + pd.Timedelta(hours=1), T, T + pd.Timedelta(hours=2),
                                       T + pd.Timedelta(hours=2)]


def test_max_inputs_keeps_the_most_clicked_triggers():
    assert sorted(set(timed_clicks(PAIRS, HISTORIES, max_inputs=2)["trigger_id"])) == ["A", "B"]   # 2, 2, then 1
    assert set(timed_clicks(PAIRS, HISTORIES, max_inputs=1)["trigger_id"]) <= {"A", "B"}
    assert len(timed_clicks(PAIRS, HISTORIES, max_inputs=0)) == 5                                  # 0: all


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="clicked"):
        timed_clicks(PAIRS.drop(columns="clicked"), HISTORIES)
    with pytest.raises(ValueError, match="time"):
        timed_clicks(PAIRS, HISTORIES.drop(columns="time"))
