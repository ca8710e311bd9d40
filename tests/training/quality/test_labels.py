"""Which pairs the judge scores, a labels file's pairs, errored scores left out and the grade shares
(training.quality.labels), on the hand-counted pair log of conftest.py."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.quality.labels import (
    LABEL_COLUMNS,
    judge_labels,
    label_stats,
    labels_file_pairs,
    pairs_to_judge,
    without_errors,
)

#: distinct pairs of the fit and early-stopping days of ``small_pair_logs`` (never the selection day's)
TRAIN_PAIRS = {("N1", "N2"), ("N1", "N3"), ("N1", "N4"), ("N5", "N6"), ("N5", "N2")}
IMPRESSION_6, IMPRESSION_7 = {("N2", "N3"), ("N2", "N4")}, {("N3", "N1"), ("N3", "N5")}


def keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["trigger_id"], frame["candidate_id"]))


def test_train_pairs_are_the_distinct_fit_and_early_stopping_pairs(small_pair_logs):
    pairs = pairs_to_judge(small_pair_logs, 100, 0, seed=0, with_test=False)
    assert list(pairs.columns) == ["trigger_id", "candidate_id", "part"] and set(pairs["part"]) == {"train"}
    assert sorted(keys(pairs)) == sorted(TRAIN_PAIRS)


def test_train_pairs_are_a_seeded_sample_of_n_pairs(small_pair_logs):
    first = pairs_to_judge(small_pair_logs, 2, 0, seed=3, with_test=False)
    assert len(first) == 2 and set(keys(first)) <= TRAIN_PAIRS and len(set(keys(first))) == 2
    pd.testing.assert_frame_equal(first, pairs_to_judge(small_pair_logs, 2, 0, seed=3, with_test=False))


def test_test_pairs_are_the_pairs_of_sampled_partition_day_impressions(small_pair_logs):
    every = pairs_to_judge(small_pair_logs, 100, 0, seed=0, with_test=True)
    assert set(keys(every[every["part"] == "test"])) == IMPRESSION_6 | IMPRESSION_7
    assert (every["part"] == "train").sum() == len(TRAIN_PAIRS)
    one = pairs_to_judge(small_pair_logs, 100, 1, seed=0, with_test=True)
    assert set(keys(one[one["part"] == "test"])) in (IMPRESSION_6, IMPRESSION_7)


def test_a_labels_file_serves_the_evaluation_where_it_covers_partition_day_pairs(small_pair_logs):
    given = pd.DataFrame({"trigger_id": ["N1", "N2", "N3"], "candidate_id": ["N2", "N4", "N9"],
                          "score": [3.0, 1.5, 4.0]})
    alone = labels_file_pairs(given, None)
    assert alone.to_dict("list") == {**given.to_dict("list"), "part": ["train"] * 3}
    both = labels_file_pairs(given, small_pair_logs.part("test"))
    assert both.to_dict("list") == {"trigger_id": ["N1", "N2", "N3", "N2"], "candidate_id": ["N2", "N4", "N9", "N4"],
                                    "score": [3.0, 1.5, 4.0, 1.5], "part": ["train"] * 3 + ["test"]}


def test_errored_scores_leave_their_pairs_out():
    pairs = pd.DataFrame({"trigger_id": ["A", "B", "C"], "candidate_id": ["X", "Y", "Z"]}, index=[5, 6, 7])
    kept, scores = without_errors(pairs, np.array([1.0, np.nan, 3.0]))
    assert keys(kept) == [("A", "X"), ("C", "Z")] and list(kept.index) == [0, 1]
    assert scores.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="expected 3 judge scores"):
        without_errors(pairs, np.array([1.0, 2.0]))


def test_labels_and_their_grade_shares():
    pairs = pd.DataFrame({"part": ["train"] * 4 + ["test"], "candidate_id": list("VWXYZ"), "trigger_id": ["T"] * 5})
    labels = judge_labels(pairs, [0.2, 1.5, 2.5, 3.7, 4])
    assert list(labels.columns) == list(LABEL_COLUMNS) and labels["score"].dtype == np.float64
    # rounded (half to even) 0, 2, 2, 4, 4
    assert label_stats(labels, seconds=2.0) == pytest.approx({
        "n_labels": 5, "mean_score": 2.38, "pairs_per_second": 2.5, "share_grade_0": 0.2, "share_grade_1": 0.0,
        "share_grade_2": 0.4, "share_grade_3": 0.0, "share_grade_4": 0.4})
    assert label_stats(labels, seconds=0.0)["pairs_per_second"] == pytest.approx(5e9)
