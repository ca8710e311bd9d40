"""The evaluation impressions with their quality: the generator's truth where the raw folder holds it, else the
judge's labels of impressions judged in full (training.quality.evaluation.evaluation_pairs)."""
from __future__ import annotations

import pandas as pd
import pytest

from training.data.demo.generator import NEWS_QUALITY_FILE
from training.quality.evaluation import evaluation_pairs

NEWS = pd.DataFrame({"news_id": ["T1", "T2", "C1", "C2", "C3"], "category": ["a", "b", "a", "b", "b"]})
#: impression 1: T1 (a) -> C1 (a), C2 (b); impression 2: T2 (b) -> C1 (a), C3 (b)
TEST = pd.DataFrame({"impression_id": [1, 1, 2, 2], "position": [0, 1, 0, 1],
                     "trigger_id": ["T1", "T1", "T2", "T2"], "candidate_id": ["C1", "C2", "C1", "C3"],
                     "clicked": [1, 0, 0, 1]})


def labels(rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trigger_id", "candidate_id", "score", "part"])


@pytest.fixture
def truth_dir(tmp_path):
    truth = pd.DataFrame({"news_id": ["T1", "T2", "C1", "C2", "C3"], "quality": [2, 2, 4, 3, 0],
                          "clickbait": False, "spam": False, "duplicate_of": ""})
    truth.to_parquet(tmp_path / NEWS_QUALITY_FILE)
    return tmp_path


def test_truth_grades_take_one_off_a_candidate_of_another_category(truth_dir):
    pairs, source = evaluation_pairs(TEST, NEWS, truth_dir, labels([]), 0, seed=0)
    assert source == "truth"
    assert pairs["quality"].tolist() == [4, 2, 3, 0]   # C1 4, C2 3 - 1, C1 4 - 1, C3 0
    assert pairs.drop(columns="quality").equals(TEST)


def test_truth_pairs_are_whole_sampled_impressions(truth_dir):
    pairs, _ = evaluation_pairs(TEST, NEWS, truth_dir, labels([]), 1, seed=0)
    assert pairs["impression_id"].nunique() == 1
    assert len(pairs) == 2 and pairs["position"].tolist() == [0, 1]


def test_judged_quality_keeps_only_impressions_judged_in_full(tmp_path):
    judged = labels([("T1", "C1", 3.5, "test"), ("T1", "C2", 1.0, "test"), ("T1", "C1", 0.0, "test"),
                     ("T2", "C1", 2.0, "test"), ("T2", "C3", 4.0, "train")])   # T2 -> C3 is judged for training only
    pairs, source = evaluation_pairs(TEST, NEWS, tmp_path, judged, 0, seed=0)
    assert source == "judge"
    assert pairs["impression_id"].tolist() == [1, 1]
    assert pairs["quality"].tolist() == [3.5, 1.0]    # a pair judged twice keeps its first score
    assert "score" not in pairs.columns


def test_no_impression_judged_in_full_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no partition-day impression has judge labels for all its pairs"):
        evaluation_pairs(TEST, NEWS, tmp_path, labels([("T1", "C1", 3.0, "test")]), 0, seed=0)
