"""The labels_file and golden-set readers (bad rows named by line and field) and the simulated judge."""
import numpy as np
import pandas as pd
import pytest

from training.metrics.quality import pairwise_accuracy
from training.quality.golden_set import balanced_subset, read_golden_file, truth_golden_set
from training.quality.pair_files import PairFileError, parse_score, read_pair_file
from training.quality.simulated_judge import SimulatedJudge, pair_noise

NEWS = {"N1", "N2", "N3", "N4"}


def write(tmp_path, text: str):
    path = tmp_path / "labels.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_file_reads_scores_with_an_optional_header(tmp_path):
    path = write(tmp_path, "trigger_id\tcandidate_id\tscore\nN1\tN2\t3.5\n# a comment\n\nN1\tN3\t0\n")
    table = read_pair_file(path, NEWS, "score", parse_score)
    assert table.to_dict("list") == {"trigger_id": ["N1", "N1"], "candidate_id": ["N2", "N3"], "score": [3.5, 0.0]}


@pytest.mark.parametrize("line, field, reason", [
    ("N1\tN2\t4.5", "score", "in [0, 4]"),
    ("N1\tN2\tgood", "score", "could not convert"),
    ("N1\tN2\tnan", "score", "in [0, 4]"),
    ("N1\tN9\t2", "candidate_id", "'N9' is not in the news catalogue"),
    ("N9\tN2\t2", "trigger_id", "'N9' is not in the news catalogue"),
    ("N1\tN2", "row", "expected 3 tab-separated fields"),
])
def test_a_bad_row_rejects_the_file_naming_line_and_field(tmp_path, line, field, reason):
    path = write(tmp_path, f"N1\tN3\t1\nN3\tN4\t2\n{line}\n")
    with pytest.raises(PairFileError) as err:
        read_pair_file(path, NEWS, "score", parse_score)
    message = str(err.value)
    assert f"{path}:3: field '{field}'" in message and reason in message
    assert "the file is rejected" in message


def test_a_repeated_pair_names_both_lines(tmp_path):
    path = write(tmp_path, "N1\tN2\t1\nN3\tN4\t2\nN1\tN2\t3\n")
    with pytest.raises(PairFileError, match=r":3: field 'candidate_id': pair \(N1, N2\) already given on line 1"):
        read_pair_file(path, NEWS, "score", parse_score)


def test_golden_file_labels_and_its_errors(tmp_path):
    path = write(tmp_path, "N1\tN2\tGood\nN1\tN3\tbad\nN2\tN4\t1\n")
    golden = read_golden_file(path, NEWS)
    assert golden["label"].tolist() == [1, 0, 1] and golden["grade"].isna().all()
    with pytest.raises(PairFileError, match=r":1: field 'label': label must be Good or Bad"):
        read_golden_file(write(tmp_path, "N1\tN2\tmaybe\n"), NEWS)
    with pytest.raises(ValueError, match="needs both Good and Bad"):
        read_golden_file(write(tmp_path, "N1\tN2\tGood\n"), NEWS)


def _pairs(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs = pd.DataFrame({"trigger_id": [f"T{i % 97}" for i in range(n)], "candidate_id": [f"C{i}" for i in range(n)]})
    return pairs, rng.integers(0, 5, n)


def test_truth_golden_set_is_balanced_good_and_bad_only():
    pairs, grades = _pairs(2000)
    golden = truth_golden_set(pairs, grades, 300, seed=1)
    assert len(golden) == 300 and golden["label"].sum() == 150
    assert (golden.loc[golden["label"] == 1, "grade"] >= 3).all()
    assert (golden.loc[golden["label"] == 0, "grade"] <= 1).all()
    assert balanced_subset(golden, 20)["label"].tolist().count(1) == 10


@pytest.mark.parametrize("target", [0.7, 0.87, 0.95])
def test_simulated_judge_reaches_the_requested_pairwise_accuracy(target):
    pairs, grades = _pairs(4000)
    golden = truth_golden_set(pairs, grades, 400, seed=2)
    judge = SimulatedJudge.calibrated(golden, target, seed=3)
    scores = judge.score(golden["trigger_id"], golden["candidate_id"], golden["grade"].to_numpy())
    assert pairwise_accuracy(golden["label"], scores) == pytest.approx(target, abs=0.005)
    assert ((scores >= 0) & (scores <= 4)).all() and judge.sigma > 0
    # more accuracy needs less noise
    assert SimulatedJudge.calibrated(golden, min(target + 0.03, 0.99), seed=3).sigma < judge.sigma


def test_simulated_noise_is_a_function_of_the_pair_and_seed():
    a = pair_noise(["T1", "T2", "T3"], ["C1", "C2", "C3"], seed=0)
    b = pair_noise(["T3", "T1"], ["C3", "C1"], seed=0)
    assert b.tolist() == [a[2], a[0]]
    assert not np.allclose(a, pair_noise(["T1", "T2", "T3"], ["C1", "C2", "C3"], seed=1))
    big = pair_noise([f"T{i}" for i in range(20000)], ["C"] * 20000, seed=0)
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05


def test_simulated_judge_rejects_an_impossible_target():
    pairs, grades = _pairs(500)
    golden = truth_golden_set(pairs, grades, 100)
    with pytest.raises(ValueError, match=r"must be in \(0.5, 1\]"):
        SimulatedJudge.calibrated(golden, 0.4)
