"""The ``ltr_features`` table: each day-role part in order with its grades, only ``train`` sampled and
CTR-masked, then the served ``related`` rows; where grades come from; which day λ is chosen on."""
import numpy as np
import pandas as pd
import pytest
from builders.ltr import START_DAY, logged_inputs

from training.data.quality_truth import OFF_TOPIC_PENALTY
from training.ltr.count_features import LogCounts, PathRanks
from training.ltr.feature_table import lambda_day_roles, pair_grades, ranking_feature_rows
from training.ltr.rows import logged_rows, related_rows
from training.ltr.tradeoff import row_parts

INPUTS = logged_inputs(impressions_per_day=12, days=4, seed=5)
DAYS = [(START_DAY + pd.Timedelta(days=d)).strftime("%Y-%m-%d") for d in range(5)]
ROLES = {"fit_days": [DAYS[0]], "early_stopping_day": DAYS[1], "selection_day": DAYS[2], "test_day": DAYS[3]}
UNION = INPUTS.path_ranks[INPUTS.path_ranks["path"] == "union"]


def student(triggers, candidates):
    t = np.array([int(x[1:]) for x in triggers], dtype=np.float32)
    c = np.array([int(x[1:]) for x in candidates], dtype=np.float32)
    return np.sin(t - c), (t + c) % 5


def ctr(pairs):
    return (pairs["position"].to_numpy() / 10 + 0.01).astype(np.float32)


def grades(pairs):
    return pairs["position"].to_numpy(np.float32) % 5


@pytest.fixture(scope="module")
def counts():
    return LogCounts.from_logs(INPUTS.impressions, INPUTS.pairs)


def _table(counts, parts, **knobs):
    lines = []
    rows = ranking_feature_rows(INPUTS.pairs, parts, grades, UNION, DAYS[4], INPUTS.times, counts,
                                INPUTS.news_vectors, PathRanks(INPUTS.path_ranks), student, ctr, log=lines.append,
                                **knobs)
    return rows, lines


def test_parts_come_in_role_order_with_grades_and_only_train_is_sampled_and_masked(counts):
    parts = row_parts(INPUTS.pairs["day"], **ROLES)
    rows, lines = _table(counts, parts, train_impressions=5, ctr_mask_fraction=1.0, seed=3)
    assert rows["part"].drop_duplicates().tolist() == ["train", "valid", "selection", "test", "related"]
    assert (np.diff(pd.Categorical(rows["part"], ["train", "valid", "selection", "test", "related"]).codes) >= 0).all()
    logged = rows[rows["part"] != "related"]
    for part in ("valid", "selection", "test"):
        assert (logged["part"] == part).sum() == (parts == part).sum()
    train = logged[logged["part"] == "train"]
    assert train["impression_id"].nunique() == 5 < INPUTS.pairs.loc[parts == "train", "impression_id"].nunique()
    np.testing.assert_array_equal(logged["quality"], logged["position"].to_numpy(np.float32) % 5)
    assert train["ctr_score"].isna().all() and logged.loc[logged["part"] != "train", "ctr_score"].notna().all()
    assert [line.split(":")[0] for line in lines] == ["train", "valid", "selection", "test"]
    assert lines[0] == f"train: {len(train):,} pairs, 5 impressions"


def test_each_part_holds_the_rows_featurised_alone(counts):
    parts = row_parts(INPUTS.pairs["day"], **ROLES)
    rows, _ = _table(counts, parts, batch_size=4)
    test = INPUTS.pairs[parts == "test"].assign(part="test")
    test["quality"] = grades(test)
    expected = logged_rows(test, INPUTS.times, counts, INPUTS.news_vectors, INPUTS.path_ranks, student, ctr)
    stacked = rows.loc[rows["part"] == "test", expected.columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(stacked, expected, check_dtype=False)   # ints are floats beside related rows
    related = related_rows(UNION, counts, DAYS[4], INPUTS.news_vectors, INPUTS.path_ranks, student)
    served = rows[rows["part"] == "related"].dropna(axis=1, how="all").reset_index(drop=True)
    pd.testing.assert_frame_equal(served, related.assign(part="related").dropna(axis=1, how="all"),
                                  check_like=True)
    assert (rows["part"] == "train").sum() == (parts == "train").sum()   # 0: no sampling


def test_a_short_window_has_no_selection_part_and_parts_must_match_the_rows(counts):
    shared = {"fit_days": [DAYS[0]], "early_stopping_day": DAYS[1], "selection_day": DAYS[1], "test_day": DAYS[3]}
    logged = INPUTS.pairs[INPUTS.pairs["day"] != DAYS[2]]
    parts = row_parts(logged["day"], **shared)
    rows = ranking_feature_rows(logged, parts, grades, UNION, DAYS[4], INPUTS.times, counts, INPUTS.news_vectors,
                                INPUTS.path_ranks, student, None, log=lambda _: None)
    assert rows["part"].drop_duplicates().tolist() == ["train", "valid", "test", "related"]
    assert rows["ctr_score"].isna().all()                                  # no CTR model
    with pytest.raises(ValueError, match=r"one part per logged row \(\d+\), got shape \(3,\)"):
        ranking_feature_rows(logged, parts[:3], grades, UNION, DAYS[4], INPUTS.times, counts, None, None,
                             student, None)


def test_grades_come_from_the_truth_on_demo_data():
    truth = pd.DataFrame({"news_id": ["A", "B", "C"], "quality": [4, 3, 0], "clickbait": False, "spam": False,
                          "duplicate_of": None})
    news = pd.DataFrame({"news_id": ["A", "B", "C"], "category": ["sports", "sports", "news"]})
    pairs = pd.DataFrame({"trigger_id": ["A", "A", "C"], "candidate_id": ["B", "C", "A"]}, index=[7, 3, 9])
    labels = pd.DataFrame({"trigger_id": ["A"], "candidate_id": ["B"], "score": [0.0]})   # ignored: truth wins
    grade = pair_grades(pairs, truth, news, labels)
    assert grade.dtype == np.float32
    assert grade.tolist() == [3.0, 0.0, 4.0 - OFF_TOPIC_PENALTY]   # C is off-topic for A: 0 stays 0 (clipped)


def test_grades_come_from_the_judge_otherwise_first_label_wins():
    pairs = pd.DataFrame({"trigger_id": ["A", "A", "B"], "candidate_id": ["B", "C", "A"]}, index=[5, 1, 2])
    labels = pd.DataFrame({"trigger_id": ["A", "A", "B", "X"], "candidate_id": ["B", "B", "A", "Y"],
                           "score": [2, 4, 1, 3], "judge": "llm"})
    grade = pair_grades(pairs, None, pd.DataFrame(), labels)
    assert grade.dtype == np.float32
    np.testing.assert_array_equal(grade, [2.0, np.nan, 1.0])


def test_lambda_day_roles_say_whether_lambda_is_held_out():
    held = lambda_day_roles(np.array(["train", "valid", "selection", "test"], dtype=object), ["d0", "d1"], "d2", "d3")
    assert held == {"fit_days": "d0, d1", "early_stopping_day": "d2", "selection_day": "d3",
                    "lambda_day_held_out": True}
    shared = lambda_day_roles(np.array(["train", "valid", "test"], dtype=object), ["d0"], "d1", "d1")
    assert shared["selection_day"] == "d1" and shared["lambda_day_held_out"] is False
