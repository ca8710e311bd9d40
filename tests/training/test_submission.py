"""MIND prediction files: write -> read -> score round trip and the error for every malformed case."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.metrics.mind import mind_metrics
from training.metrics.submission import (
    PredictionFormatError,
    PredictionMismatchError,
    read_prediction_file,
    score_prediction,
    write_prediction_file,
)


def make_data(seed: int, n_impressions: int = 300, ties: bool = False):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 120, n_impressions)
    ids = rng.permutation(5 * n_impressions)[:n_impressions] + 1
    row_ids = np.repeat(ids, sizes)
    labels = (rng.random(row_ids.size) < 0.1).astype(np.int8)
    scores = rng.integers(0, 4, row_ids.size) / 3.0 if ties else rng.normal(size=row_ids.size)
    position = np.concatenate([np.arange(n) for n in sizes])
    truth = pd.DataFrame({"impression_id": row_ids, "position": position.astype(np.int32), "label": labels})
    return truth, scores


def assert_metrics_equal(a, b, fields=("auc", "mrr", "ndcg5", "ndcg10")):
    for f in fields:
        assert getattr(a, f) == pytest.approx(getattr(b, f), abs=1e-12), f
    for f in ("n_impressions", "n_candidates", "n_auc_skipped", "n_no_click"):
        assert getattr(a, f) == getattr(b, f), f


def test_round_trip_equals_mind_metrics(tmp_path):
    truth, scores = make_data(0)
    path = tmp_path / "prediction.txt"
    write_prediction_file(path, truth["impression_id"], scores)
    predictions = read_prediction_file(path)
    assert list(predictions) == list(dict.fromkeys(truth["impression_id"].tolist()))  # first-appearance order
    got = score_prediction(truth, predictions)
    assert_metrics_equal(got, mind_metrics(truth["impression_id"], truth["label"], scores))


def test_round_trip_with_ties(tmp_path):
    # Ranks break ties by candidate order, like mind_metrics' MRR/nDCG; AUC from ranks no longer sees ties,
    # so it is checked against sklearn on the tie-broken order (score = -rank) instead.
    truth, scores = make_data(1, ties=True)
    path = tmp_path / "prediction.txt"
    write_prediction_file(path, truth["impression_id"], scores)
    predictions = read_prediction_file(path)
    got = score_prediction(truth, predictions)
    assert_metrics_equal(got, mind_metrics(truth["impression_id"], truth["label"], scores),
                         fields=("mrr", "ndcg5", "ndcg10"))
    aucs = []
    for impression_id, group in truth.groupby("impression_id", sort=False):
        if group["label"].nunique() == 2:
            aucs.append(roc_auc_score(group["label"], -predictions[impression_id]))
    assert got.auc == pytest.approx(np.mean(aucs), abs=1e-12)


def test_shuffled_truth_rows_score_the_same(tmp_path):
    truth, scores = make_data(2)
    path = tmp_path / "prediction.txt"
    write_prediction_file(path, truth["impression_id"], scores)
    predictions = read_prediction_file(path)
    shuffled = truth.sample(frac=1.0, random_state=0)
    assert score_prediction(shuffled, predictions) == score_prediction(truth, predictions)


def test_written_text_and_rank_convention(tmp_path):
    # Impression 5: scores .1 .9 .5 -> ranks 3 1 2. Impression 2: tie .3 .3 -> earlier candidate ranks 1st.
    path = tmp_path / "p.txt"
    write_prediction_file(path, [5, 5, 5, 2, 2], [0.1, 0.9, 0.5, 0.3, 0.3])
    assert path.read_text() == "5 [3,1,2]\n2 [1,2]\n"


def test_reads_official_style_and_spacing(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("1 [3,1,2]\n\n7\t[ 2, 1 ]\n3 [1]\n")
    got = read_prediction_file(path)
    assert list(got) == [1, 7, 3]
    np.testing.assert_array_equal(got[1], [3, 1, 2])
    np.testing.assert_array_equal(got[7], [2, 1])
    assert got[3].dtype == np.int64


def test_score_uses_inverse_rank():
    # Impression 1: labels [0,1,0], ranks [2,1,3] -> click ranked 1st: MRR 1, AUC 1.
    # Impression 2: labels [1,0], ranks [2,1] -> click ranked 2nd: MRR 0.5, AUC 0. Means: MRR .75, AUC .5.
    truth = pd.DataFrame({"impression_id": [1, 1, 1, 2, 2], "position": [0, 1, 2, 0, 1], "label": [0, 1, 0, 1, 0]})
    m = score_prediction(truth, {1: np.array([2, 1, 3]), 2: np.array([2, 1])})
    assert m.mrr == pytest.approx(0.75) and m.auc == pytest.approx(0.5)


@pytest.mark.parametrize("text, line, reason", [
    ("1 [1,2]\nfoo\n", 2, "malformed line"),
    ("1 [1,2]\n2\n", 2, "malformed line"),
    ("x1 [1,2]\n", 1, "not a non-negative integer"),
    ("1.5 [1,2]\n", 1, "not a non-negative integer"),
    ("1 [1,2]\n2 [1,a]\n", 2, "not a list of integers"),
    ("1 1,2\n", 1, "not a list of integers"),
    ("1 [1,2,]\n", 1, "not a list of integers"),
    ("1 []\n", 1, "not a list of integers"),
    ("1 [1.0,2]\n", 1, "not a list of integers"),
    ("1 [2,1]\n2 [1]\n1 [1,2]\n", 3, "duplicate impression id 1 (first on line 1)"),
    ("1 [1,1]\n", 1, "1 repeated, 2 missing"),
    ("1 [0,1]\n", 1, "0 is out of range"),
    ("1 [1,3]\n", 1, "3 is out of range"),
    ("1 [1,99999999999999999999999]\n", 1, "out of range"),
])
def test_format_errors_name_file_and_line(tmp_path, text, line, reason):
    path = tmp_path / "prediction.txt"
    path.write_text(text)
    with pytest.raises(PredictionFormatError) as info:
        read_prediction_file(path)
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(path) in str(info.value) and f"line {line}" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_mismatch_errors_list_ids_and_count():
    truth = pd.DataFrame({
        "impression_id": np.repeat(np.arange(1, 16), 2),
        "position": np.tile([0, 1], 15),
        "label": np.tile([1, 0], 15),
    })
    full = {i: np.array([1, 2]) for i in range(1, 16)}

    with pytest.raises(PredictionMismatchError, match=r"no prediction for impression\(s\) 4 \(1\)"):
        score_prediction(truth, {i: r for i, r in full.items() if i != 4})
    with pytest.raises(PredictionMismatchError) as info:
        score_prediction(truth, {})
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... (15 in all)" in str(info.value) and "11" not in str(info.value)
    with pytest.raises(PredictionMismatchError, match=r"not in the truth: 99 \(1\)"):
        score_prediction(truth, full | {99: np.array([1])})
    with pytest.raises(PredictionMismatchError, match=r"length differs .* 3, 7 \(2\)"):
        score_prediction(truth, full | {3: np.array([1]), 7: np.array([1, 2, 3])})
    with pytest.raises(PredictionMismatchError, match=r"not a permutation .* 5 \(1\)"):
        score_prediction(truth, full | {5: np.array([2, 2])})


def test_mismatch_reports_every_problem_at_once():
    truth = pd.DataFrame({"impression_id": [1, 1, 2], "position": [0, 1, 0], "label": [1, 0, 1]})
    with pytest.raises(PredictionMismatchError) as info:
        score_prediction(truth, {1: np.array([1, 2]), 3: np.array([1])})
    assert "no prediction for impression(s) 2" in str(info.value) and "not in the truth: 3" in str(info.value)


def test_truth_position_gaps_rejected():
    truth = pd.DataFrame({"impression_id": [1, 1], "position": [0, 2], "label": [1, 0]})
    with pytest.raises(ValueError, match="positions"):
        score_prediction(truth, {1: np.array([1, 2])})


def test_write_rejects_non_integer_ids(tmp_path):
    with pytest.raises(ValueError, match="integers"):
        write_prediction_file(tmp_path / "p.txt", ["a", "a"], [0.1, 0.2])


def test_metrics_is_frozen():
    m = mind_metrics([1, 1], [1, 0], [0.2, 0.1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.auc = 0.0  # type: ignore[misc]
