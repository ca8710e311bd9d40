"""Pairs, click triplets and the unlabelled set from impression logs (training.data.pairs)."""
import numpy as np
import pandas as pd
import pytest

from training.data.pairs import build_pair_logs, click_triplets, impression_triggers, triplet_weight
from training.data.prepared import BehaviorLog

NEWS = pd.DataFrame({"news_id": [f"N{i}" for i in range(1, 9)]})


def log() -> BehaviorLog:
    """Impressions 1-2 on day 1, 3 on day 2 (the partition). Impression 2's history has no catalogue item."""
    hist = pd.DataFrame({
        "impression_id": [1, 2, 3],
        "day": ["2019-11-09", "2019-11-09", "2019-11-10"],
        "history": [["N1", "N2", "X9"], ["X8"], ["N3"]],
    })
    rows = [(1, "N4", 1), (1, "N5", 0), (1, "N6", 0), (1, "X7", 0),
            (2, "N4", 1), (2, "N5", 0),
            (3, "N4", 0), (3, "N7", 1)]
    imps = pd.DataFrame(rows, columns=["impression_id", "news_id", "label"])
    imps["day"] = imps["impression_id"].map({1: "2019-11-09", 2: "2019-11-09", 3: "2019-11-10"})
    imps["position"] = imps.groupby("impression_id").cumcount()
    return BehaviorLog(imps, hist)


def test_trigger_is_the_newest_history_item_in_the_catalogue():
    triggers = impression_triggers(log().histories, set(NEWS["news_id"]))
    assert triggers.to_dict() == {1: "N2", 3: "N3"}


def test_pair_logs_split_train_and_test_and_count_what_they_leave_out():
    logs = build_pair_logs(NEWS, log(), "2019-11-10", window_days=3)
    train, test = logs.part("train"), logs.part("test")
    assert train[["trigger_id", "candidate_id", "clicked"]].values.tolist() == [["N2", "N4", 1], ["N2", "N5", 0], ["N2", "N6", 0]]
    assert test[["trigger_id", "candidate_id", "clicked", "position"]].values.tolist() == [["N3", "N4", 0, 0], ["N3", "N7", 1, 1]]
    assert logs.n_without_trigger == 1 and logs.n_outside_catalogue == 1
    assert logs.train_days == ["2019-11-09"] and logs.test_day == "2019-11-10"
    assert logs.triplets[["trigger_id", "pos_id", "neg_id"]].values.tolist() == [["N2", "N4", "N5"], ["N2", "N4", "N6"]]
    assert sorted(map(tuple, logs.unlabelled.values.tolist())) == [("N2", "N4"), ("N2", "N5"), ("N2", "N6")]


def test_triplet_frequency_and_log_weight_keep_singletons_at_one():
    pairs = pd.DataFrame({
        "impression_id": [1, 1, 2, 2, 3, 3, 3],
        "trigger_id": ["T"] * 7,
        "candidate_id": ["A", "B", "A", "B", "A", "B", "C"],
        "clicked": [1, 0, 1, 0, 1, 0, 0],
    })
    t = click_triplets(pairs).set_index(["pos_id", "neg_id"])
    assert t.loc[("A", "B"), "frequency"] == 3 and t.loc[("A", "C"), "frequency"] == 1
    assert t.loc[("A", "B"), "weight"] == pytest.approx(1 + np.log(3))  # 2.0986
    assert t.loc[("A", "C"), "weight"] == 1.0
    with pytest.raises(ValueError):
        triplet_weight(np.array([0]))


def test_sampling_limits_are_seeded():
    big = log()
    a = build_pair_logs(NEWS, big, "2019-11-10", 3, max_triplets=1, max_unlabelled=2, seed=5)
    b = build_pair_logs(NEWS, big, "2019-11-10", 3, max_triplets=1, max_unlabelled=2, seed=5)
    assert len(a.triplets) == 1 and len(a.unlabelled) == 2 and a.n_triplets_total == 2
    pd.testing.assert_frame_equal(a.unlabelled, b.unlabelled)


def test_a_partition_without_earlier_days_is_an_error():
    with pytest.raises(ValueError, match="no impressions in the 3 day"):
        build_pair_logs(NEWS, log(), "2019-11-09", 3)
    with pytest.raises(ValueError, match="no impressions on 2019-11-11"):
        build_pair_logs(NEWS, log(), "2019-11-11", 3)
