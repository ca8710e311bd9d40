"""training.metrics.mind against a plain per-impression loop of MIND's official evaluate.py code."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.metrics.mind import (
    MindMetrics,
    format_metrics_table,
    impression_metrics,
    mind_metrics,
    rank_within_impressions,
)

# --- independent reference: official msnews.github.io evaluate.py formulas, one impression at a time ---
# Deviation from the official text, on purpose: ``np.argsort(-score, kind="stable")`` instead of
# ``np.argsort(score)[::-1]`` so that ties are broken by candidate order (the documented rule).


def ref_order(y_score):
    return np.argsort(-np.asarray(y_score, dtype=float), kind="stable")


def ref_dcg(y_true, y_score, k=10):
    order = ref_order(y_score)
    y_true = np.take(y_true, order[:k])
    gains = 2 ** y_true - 1
    discounts = np.log2(np.arange(len(y_true)) + 2)
    return np.sum(gains / discounts)


def ref_ndcg(y_true, y_score, k=10):
    best = ref_dcg(y_true, y_true, k)
    return math.nan if best == 0 else ref_dcg(y_true, y_score, k) / best


def ref_mrr(y_true, y_score):
    order = ref_order(y_score)
    y_true = np.take(y_true, order)
    rr = y_true / (np.arange(len(y_true)) + 1)
    return math.nan if np.sum(y_true) == 0 else np.sum(rr) / np.sum(y_true)


def ref_auc(y_true, y_score):
    return math.nan if len(set(y_true.tolist())) < 2 else roc_auc_score(y_true, y_score)


def ref_impression_metrics(ids, labels, scores) -> pd.DataFrame:
    rows, index = [], []
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        y, s = labels[a:b], scores[a:b]
        rows.append((ref_auc(y, s), ref_mrr(y, s), ref_ndcg(y, s, 5), ref_ndcg(y, s, 10), b - a, int(y.sum())))
        index.append(ids[a])
    return pd.DataFrame(rows, index=pd.Index(index, name="impression_id"),
                        columns=["auc", "mrr", "ndcg5", "ndcg10", "n_candidates", "n_clicks"])


def random_impressions(seed: int, n_impressions: int, ties: bool):
    """Impressions of 1..300 candidates (many tiny), shuffled unique ids, varied click rates."""
    rng = np.random.default_rng(seed)
    sizes = np.where(rng.random(n_impressions) < 0.3, rng.integers(1, 4, n_impressions),
                     rng.integers(1, 301, n_impressions))
    ids = rng.permutation(10 * n_impressions)[:n_impressions] + 1
    click_rate = rng.choice([0.0, 0.02, 0.1, 0.5, 1.0], size=n_impressions, p=[0.1, 0.4, 0.3, 0.15, 0.05])
    row_ids = np.repeat(ids, sizes)
    labels = (rng.random(row_ids.size) < np.repeat(click_rate, sizes)).astype(np.int8)
    if ties:  # few distinct values: many tied scores inside impressions, across classes
        scores = rng.integers(0, 6, row_ids.size) / 5.0
    else:
        scores = rng.normal(size=row_ids.size)
    return row_ids, labels, scores


def assert_frames_match(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert got.index.equals(want.index)
    for col in ("n_candidates", "n_clicks"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    for col in ("auc", "mrr", "ndcg5", "ndcg10"):
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=0, atol=1e-9, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(got[col].to_numpy()), np.isnan(want[col].to_numpy()))


@pytest.mark.parametrize("ties", [False, True], ids=["no-ties", "ties"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_official_loop(seed, ties):
    ids, labels, scores = random_impressions(seed, 400, ties)
    want = ref_impression_metrics(ids, labels, scores)
    assert want["n_clicks"].eq(0).sum() > 10 and (want["n_clicks"] == want["n_candidates"]).sum() > 3
    assert_frames_match(impression_metrics(ids, labels, scores), want)

    got = mind_metrics(ids, labels, scores)
    assert got.auc == pytest.approx(want["auc"].mean(), abs=1e-9)  # pandas mean skips NaN
    assert got.mrr == pytest.approx(want["mrr"].mean(), abs=1e-9)
    assert got.ndcg5 == pytest.approx(want["ndcg5"].mean(), abs=1e-9)
    assert got.ndcg10 == pytest.approx(want["ndcg10"].mean(), abs=1e-9)
    assert got.n_impressions == len(want)
    assert got.n_candidates == ids.size
    assert got.n_auc_skipped == int(want["auc"].isna().sum())
    assert got.n_no_click == int((want["n_clicks"] == 0).sum())


def test_lexsort_fallback_matches_loop(monkeypatch):
    # Forces the path taken when the packed int64 sort key would overflow.
    monkeypatch.setattr("training.metrics.mind._KEY_LIMIT", 0)
    ids, labels, scores = random_impressions(5, 150, ties=True)
    assert_frames_match(impression_metrics(ids, labels, scores), ref_impression_metrics(ids, labels, scores))


def test_integer_and_float32_scores_match_loop():
    ids, labels, scores = random_impressions(7, 200, ties=True)
    for s in ((scores * 5).astype(np.int64), scores.astype(np.float32)):
        assert_frames_match(impression_metrics(ids, labels, s), ref_impression_metrics(ids, labels, s))


def test_hand_worked_example():
    # Impression 10: labels [1,0,0], scores [.1,.5,.1] -> order (stable, desc): c1(.5), c0(.1), c2(.1).
    #   Click at rank 2: MRR = 1/2, nDCG@k = (1/log2 3) / 1 = 0.6309...
    #   AUC: pos .1 vs neg .5 -> 0, vs neg .1 -> tie 1/2; (0 + 1/2) / 2 = 0.25.
    # Impression 20: labels [0,0], no click -> AUC/MRR/nDCG NaN.
    # Impression 30: labels [1,0,1,0], scores [.9,.8,.2,.3] -> order c0, c1, c3, c2; clicks at ranks 1 and 4.
    #   MRR = (1 + 1/4) / 2 = 0.625.
    #   DCG@10 = 1 + 1/log2(5); ideal = 1 + 1/log2(3); nDCG@5 = nDCG@10 = 1.4307/1.6309 = 0.87722...
    #   AUC: .9 beats .8 and .3 (2 pairs), .2 beats neither -> 2/4 = 0.5.
    ids = [10, 10, 10, 20, 20, 30, 30, 30, 30]
    labels = [1, 0, 0, 0, 0, 1, 0, 1, 0]
    scores = [.1, .5, .1, .3, .2, .9, .8, .2, .3]
    df = impression_metrics(ids, labels, scores)
    assert list(df.index) == [10, 20, 30]
    ndcg30 = (1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert df.loc[10, "auc"] == pytest.approx(0.25)
    assert df.loc[10, "mrr"] == pytest.approx(0.5)
    assert df.loc[10, "ndcg5"] == pytest.approx(1 / math.log2(3))
    assert df.loc[20, ["auc", "mrr", "ndcg5", "ndcg10"]].isna().all()
    assert df.loc[30, "auc"] == pytest.approx(0.5)
    assert df.loc[30, "mrr"] == pytest.approx(0.625)
    assert df.loc[30, "ndcg10"] == pytest.approx(ndcg30)
    assert df["n_candidates"].tolist() == [3, 2, 4] and df["n_clicks"].tolist() == [1, 0, 2]

    m = mind_metrics(ids, labels, scores)
    assert m == MindMetrics(auc=pytest.approx(0.375), mrr=pytest.approx(0.5625),
                            ndcg5=pytest.approx((1 / math.log2(3) + ndcg30) / 2),
                            ndcg10=pytest.approx((1 / math.log2(3) + ndcg30) / 2),
                            n_impressions=3, n_candidates=9, n_auc_skipped=1, n_no_click=1)


def test_ndcg5_cuts_off_after_rank_5():
    # One click at rank 6 (scores descending along candidates): nDCG@5 = 0, nDCG@10 = 1/log2(7).
    labels = [0, 0, 0, 0, 0, 1, 0]
    scores = [7, 6, 5, 4, 3, 2, 1]
    df = impression_metrics([1] * 7, labels, scores)
    assert df.loc[1, "ndcg5"] == 0.0
    assert df.loc[1, "ndcg10"] == pytest.approx(1 / math.log2(7))
    assert df.loc[1, "mrr"] == pytest.approx(1 / 6)


def test_ties_rank_earlier_candidate_first_but_auc_counts_half():
    # Two tied candidates: the earlier one ranks first for MRR/nDCG; AUC counts the tie as 1/2.
    later_clicked = impression_metrics([5, 5], [0, 1], [0.5, 0.5])
    assert later_clicked.loc[5, "mrr"] == 0.5 and later_clicked.loc[5, "auc"] == 0.5
    earlier_clicked = impression_metrics([5, 5], [1, 0], [0.5, 0.5])
    assert earlier_clicked.loc[5, "mrr"] == 1.0 and earlier_clicked.loc[5, "auc"] == 0.5


def test_single_class_and_no_click_are_skipped_and_counted():
    # Impression 1 all clicked: AUC skipped, MRR = (1/1 + 1/2) / 2 = 0.75, nDCG = 1 (ideal order).
    # Impression 2 no click: everything skipped. Impression 3: the click ranks 1st, all metrics 1.
    # Means: AUC 1 (only impression 3), MRR (0.75 + 1) / 2 = 0.875, nDCG 1.
    ids = [1, 1, 2, 2, 2, 3, 3]
    labels = [1, 1, 0, 0, 0, 0, 1]
    scores = [0.2, 0.1, 0.3, 0.2, 0.1, 0.1, 0.9]
    m = mind_metrics(ids, labels, scores)
    assert (m.n_auc_skipped, m.n_no_click, m.n_impressions, m.n_candidates) == (2, 1, 3, 7)
    assert m.auc == 1.0 and m.mrr == pytest.approx(0.875) and m.ndcg5 == pytest.approx(1.0)


def test_all_auc_skipped_gives_nan_mean():
    m = mind_metrics([1, 1, 2], [0, 0, 1], [0.1, 0.2, 0.3])
    assert math.isnan(m.auc) and m.mrr == 1.0 and m.n_auc_skipped == 2


def test_empty_input():
    m = mind_metrics([], [], [])
    assert (m.n_impressions, m.n_candidates, m.n_auc_skipped, m.n_no_click) == (0, 0, 0, 0)
    assert math.isnan(m.auc) and math.isnan(m.mrr)
    assert impression_metrics([], [], []).empty


def test_string_ids_and_index():
    df = impression_metrics(np.array(["a", "a", "b"]), [1, 0, 1], [0.9, 0.1, 0.5])
    assert list(df.index) == ["a", "b"] and df.index.name == "impression_id"


def test_non_contiguous_impression_is_rejected_by_id():
    with pytest.raises(ValueError, match=r"impression 7 .*not contiguous|impression 7.*reappears"):
        mind_metrics([7, 7, 8, 7], [1, 0, 1, 0], [0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("labels, pattern", [([0, 2, 1], "0 or 1"), ([0, 0.5, 1], "0 or 1"),
                                             ([0, np.nan, 1], "0 or 1"), ([0, 1], "labels must be 1-D")])
def test_bad_labels_rejected(labels, pattern):
    with pytest.raises(ValueError, match=pattern):
        mind_metrics([1, 1, 1], labels, [0.1, 0.2, 0.3])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_scores_rejected(bad):
    with pytest.raises(ValueError, match="impression 2"):
        mind_metrics([1, 2, 2], [1, 0, 1], [0.1, bad, 0.3])


def test_bool_labels_accepted():
    a = mind_metrics([1, 1, 1], np.array([True, False, True]), [0.3, 0.2, 0.1])
    b = mind_metrics([1, 1, 1], [1, 0, 1], [0.3, 0.2, 0.1])
    assert a == b


def test_rank_within_impressions_matches_stable_argsort():
    ids, _, scores = random_impressions(3, 100, ties=True)
    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    want = np.empty(ids.size, dtype=np.int64)
    for a, b in zip(bounds[:-1], bounds[1:]):
        want[a + ref_order(scores[a:b])] = np.arange(1, b - a + 1)
    np.testing.assert_array_equal(rank_within_impressions(ids, scores), want)


def test_as_dict_keys():
    d = mind_metrics([1, 1], [1, 0], [0.9, 0.1]).as_dict()
    assert list(d) == ["auc", "mrr", "ndcg5", "ndcg10", "n_impressions", "n_candidates",
                       "n_auc_skipped", "n_no_click"]
    assert d["auc"] == 1.0 and d["n_candidates"] == 2


def test_format_metrics_table():
    m = MindMetrics(auc=0.68123, mrr=0.33333, ndcg5=0.36, ndcg10=math.nan, n_impressions=1,
                    n_candidates=2, n_auc_skipped=0, n_no_click=0)
    table = format_metrics_table({"nrms": m, "pop|ular": {"auc": 0.5, "mrr": 0.25, "ndcg5": 0.1, "ndcg10": 0.2}})
    lines = table.strip().splitlines()
    assert lines[0] == "| name | AUC | MRR | nDCG@5 | nDCG@10 |"
    assert lines[2] == "| nrms | 0.6812 | 0.3333 | 0.3600 | n/a |"
    assert lines[3] == r"| pop\|ular | 0.5000 | 0.2500 | 0.1000 | 0.2000 |"
    with pytest.raises(KeyError, match="ndcg10"):
        format_metrics_table({"x": {"auc": 0.5, "mrr": 0.2, "ndcg5": 0.1}})
