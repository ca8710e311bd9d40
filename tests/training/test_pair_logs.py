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
    assert train[["trigger_id", "candidate_id", "clicked"]].values.tolist() == [
        ["N2", "N4", 1], ["N2", "N5", 0], ["N2", "N6", 0]]
    assert test[["trigger_id", "candidate_id", "clicked", "position"]].values.tolist() == [
        ["N3", "N4", 0, 0], ["N3", "N7", 1, 1]]
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


DAYS = [f"2019-11-0{d}" for d in range(1, 8)]   # 11-01 .. 11-07


def daily_log(n_days: int) -> BehaviorLog:
    """One impression a day: trigger N1, candidate N{day index + 2} clicked, N9 not; the last day is the partition."""
    news_ids = [f"N{i}" for i in range(1, 10)]
    assert n_days <= len(news_ids) - 2
    hist = pd.DataFrame({"impression_id": range(n_days), "day": DAYS[:n_days], "history": [["N1"]] * n_days})
    imps = pd.DataFrame([(i, DAYS[i], f"N{i + 2}", 1, 0) for i in range(n_days)]
                        + [(i, DAYS[i], "N9", 0, 1) for i in range(n_days)],
                        columns=["impression_id", "day", "news_id", "label", "position"])
    return BehaviorLog(imps.sort_values(["impression_id", "position"]).reset_index(drop=True), hist)


NEWS9 = pd.DataFrame({"news_id": [f"N{i}" for i in range(1, 10)]})


def test_roles_of_a_five_day_window():
    logs = build_pair_logs(NEWS9, daily_log(6), DAYS[5], window_days=5)
    assert logs.fit_days == DAYS[:3] and logs.early_stopping_day == DAYS[3] and logs.selection_day == DAYS[4]
    assert logs.test_day == DAYS[5] and not logs.roles_shared
    assert logs.days("fit") == DAYS[:3] and logs.days("test") == [DAYS[5]]
    by_day = logs.pairs.drop_duplicates("day").set_index("day")["role"].to_dict()
    assert by_day == {DAYS[0]: "fit", DAYS[1]: "fit", DAYS[2]: "fit", DAYS[3]: "early_stopping",
                      DAYS[4]: "selection", DAYS[5]: "test"}
    assert set(logs.role("fit", "early_stopping")["day"]) == set(DAYS[:4])
    # triplets from the fit days only (clicked N2, N3, N4), early-stopping triplets from D-2 only (N5)
    assert sorted(logs.triplets["pos_id"]) == ["N2", "N3", "N4"] and set(logs.triplets["neg_id"]) == {"N9"}
    assert logs.early_stopping_triplets[["trigger_id", "pos_id", "neg_id"]].values.tolist() == [["N1", "N5", "N9"]]
    assert logs.n_triplets_total == 3
    # the distillation set: distinct fit-day pairs, never the early-stopping, selection or test day's
    assert sorted(logs.unlabelled["candidate_id"]) == ["N2", "N3", "N4", "N9"]
    with pytest.raises(ValueError, match="unknown role"):
        logs.role("fit", "validation")


def test_roles_of_a_two_day_window_share_the_last_day():
    logs = build_pair_logs(NEWS9, daily_log(3), DAYS[2], window_days=2)
    assert logs.fit_days == [DAYS[0]] and logs.early_stopping_day == logs.selection_day == DAYS[1]
    assert logs.roles_shared
    # the shared day is labelled by its first use: early stopping
    assert logs.part("train").set_index("day")["role"].to_dict() == {DAYS[0]: "fit", DAYS[1]: "early_stopping"}
    assert logs.triplets["pos_id"].tolist() == ["N2"]
    assert logs.early_stopping_triplets["pos_id"].tolist() == ["N3"]
    assert set(logs.role("selection")["day"]) == {DAYS[1]}


def test_a_one_day_window_fits_and_stops_on_the_same_day():
    logs = build_pair_logs(NEWS9, daily_log(2), DAYS[1], window_days=1)
    assert logs.fit_days == [DAYS[0]] == [logs.early_stopping_day] and logs.roles_shared
    assert set(logs.part("train")["role"]) == {"fit"}
    assert logs.triplets["pos_id"].tolist() == logs.early_stopping_triplets["pos_id"].tolist() == ["N2"]
