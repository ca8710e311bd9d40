"""training.metrics.quality against plain per-group loops, hand-computed examples and MIND's nDCG."""
from __future__ import annotations

import math
from itertools import groupby

import numpy as np
import pandas as pd
import pytest

from training.metrics import (
    click_ndcg,
    mind_metrics,
    pairwise_accuracy,
    quality_filtered_click_ndcg,
    reco_dcg,
)

# --- independent reference: one group at a time, ranking by score descending, ties by row order ---


def ref_groups(ids, *columns):
    """Yield per-group column lists, for runs of equal consecutive ids (any id type, any id order)."""
    rows = list(zip(list(ids), *(list(c) for c in columns)))
    for _, run in groupby(rows, key=lambda row: row[0]):
        run = list(run)
        yield [[row[i + 1] for row in run] for i in range(len(columns))]


def ref_ranked(values, scores):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # sorted() is stable: ties by row order
    return [values[i] for i in order]


def ref_dcg(gains, k):
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ref_reco_dcg(ids, quality, scores, k):
    values = []
    for q, s in ref_groups(ids, quality, scores):
        rel = [x / 4 for x in ref_ranked(q, s)]
        values.append(ref_dcg(rel, k) / ref_dcg([1.0] * len(rel), k))
    return sum(values) / len(values)


def ref_ndcg_by_group(ids, clicks, quality, scores, k, threshold=None):
    values = []
    for y, q, s in ref_groups(ids, clicks, quality, scores):
        if not any(v > 0 for v in y):
            continue
        if threshold is not None and any(v > 0 and g <= threshold for v, g in zip(y, q)):
            continue
        values.append(ref_dcg(ref_ranked(y, s), k) / ref_dcg(sorted(y, reverse=True), k))
    return values


def ref_pairwise(labels, preds):
    good = total = 0.0
    n = len(labels)
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] == labels[j]:
                continue
            total += 1
            d = (labels[i] - labels[j]) * (preds[i] - preds[j])
            good += 1.0 if d > 0 else 0.5 if preds[i] == preds[j] else 0.0
    return good / total


def make_groups(seed, n_groups=120, max_size=14, shuffle_ids=True, string_ids=False):
    """Random groups of 1..max_size rows: ids unsorted and non-contiguous in value, coarse scores (ties),
    a third of the groups without a click, graded quality 0..4 (with halves)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, n_groups)
    id_values = rng.permutation(10 * n_groups)[:n_groups] if shuffle_ids else np.arange(n_groups)
    ids = np.repeat(id_values, sizes)
    if string_ids:
        ids = np.array([f"imp-{v}" for v in ids])
    n = ids.size
    scores = rng.integers(0, 6, n) / 5.0  # few levels -> many ties
    quality = rng.integers(0, 9, n) / 2.0
    no_click_group = rng.random(n_groups) < 0.33
    clicks = ((rng.random(n) < 0.25) & ~np.repeat(no_click_group, sizes)).astype(np.int64)
    return ids, clicks, quality, scores


SEEDS = [0, 1, 2, 3, 4]


# --- reco_dcg ---


def test_reco_dcg_hand_example():
    # order by score: 0.9 (q=0), 0.5 (q=2), 0.1 (q=4); top 2 -> rel 0, 2/4
    # (0/log2(2) + (2/4)/log2(3)) / (1/log2(2) + 1/log2(3))
    expected = (0 / 1 + (2 / 4) / math.log2(3)) / (1 + 1 / math.log2(3))
    assert reco_dcg([7, 7, 7], [4, 0, 2], [0.1, 0.9, 0.5], k=2) == pytest.approx(expected, abs=1e-15)


def test_reco_dcg_short_group_and_ties_hand_example():
    # group "b": scores tie at 0.3 -> row order: q=4 then q=1; k=5 > 2 items -> own length in both sums:
    #   (4/4 + (1/4)/log2(3)) / (1 + 1/log2(3))
    # group "a": one item q=3 -> (3/4) / 1
    b = (1 + 0.25 / math.log2(3)) / (1 + 1 / math.log2(3))
    got = reco_dcg(["b", "b", "a"], [4, 1, 3], [0.3, 0.3, 0.0], k=5)
    assert got == pytest.approx((b + 0.75) / 2, abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_reco_dcg_matches_loop(seed, k):
    ids, _, quality, scores = make_groups(seed, string_ids=seed % 2 == 1)
    got = reco_dcg(ids, quality, scores, k)
    assert isinstance(got, float)
    assert got == pytest.approx(ref_reco_dcg(ids, quality, scores, k), abs=1e-12)


def test_reco_dcg_bounds_and_input_types():
    ids, _, quality, scores = make_groups(9)
    assert reco_dcg(ids, np.full(ids.size, 4.0), scores, 5) == pytest.approx(1.0)
    assert reco_dcg(ids, np.zeros(ids.size), scores, 5) == 0.0
    expected = reco_dcg(ids, quality, scores, 5)
    assert reco_dcg(ids.tolist(), quality.tolist(), scores.tolist(), 5) == expected
    assert reco_dcg(pd.Series(ids, index=ids[::-1]), pd.Series(quality), pd.Series(scores), np.int64(5)) == expected


# --- click_ndcg and the quality filter ---


def test_click_ndcg_hand_example():
    # group 1 ranked by score: clicks 0, 1, 0, 1 -> DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    # group 2 has no click -> skipped
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    got = click_ndcg([1, 1, 1, 1, 2, 2], [0, 1, 0, 1, 0, 0], [0.4, 0.3, 0.2, 0.1, 0.9, 0.8], k=5)
    assert got == pytest.approx(expected, abs=1e-15)


def test_click_ndcg_graded_hand_example():
    # linear gain; ranked labels 1, 3, 0 -> DCG = 1 + 3/log2(3); ideal 3, 1, 0 -> 3 + 1/log2(3)
    got = click_ndcg([5, 5, 5], [3, 0, 1], [0.5, 0.1, 0.9], k=10)
    assert got == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)), abs=1e-15)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_click_ndcg_matches_loop(seed, k):
    ids, clicks, quality, scores = make_groups(seed, string_ids=seed % 2 == 0)
    ref = ref_ndcg_by_group(ids, clicks, quality, scores, k)
    assert click_ndcg(ids, clicks, scores, k) == pytest.approx(sum(ref) / len(ref), abs=1e-12)
    graded = clicks * np.random.default_rng(seed).integers(1, 4, clicks.size)  # several click values
    ref = ref_ndcg_by_group(ids, graded, quality, scores, k)
    assert click_ndcg(ids, graded, scores, k) == pytest.approx(sum(ref) / len(ref), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_click_ndcg_equals_mind_ndcg_and_ignores_scale(seed):
    ids, clicks, _, scores = make_groups(seed)
    mind = mind_metrics(ids, clicks, scores)
    assert click_ndcg(ids, clicks, scores, 5) == pytest.approx(mind.ndcg5, abs=1e-12)
    assert click_ndcg(ids, clicks, scores, 10) == pytest.approx(mind.ndcg10, abs=1e-12)
    assert click_ndcg(ids, 100 * clicks, scores, 5) == pytest.approx(mind.ndcg5, abs=1e-12)
    assert click_ndcg(ids, 100.0 * clicks, scores, 10) == pytest.approx(mind.ndcg10, abs=1e-12)


def test_click_ndcg_tie_breaking_follows_mind():
    # the click ties with the first candidate: ranked second by row order -> 1/log2(3), not 1
    assert click_ndcg([1, 1], [0, 1], [0.5, 0.5], 5) == pytest.approx(1 / math.log2(3))
    assert mind_metrics([1, 1], [0, 1], [0.5, 0.5]).ndcg5 == pytest.approx(1 / math.log2(3))


def test_quality_filtered_hand_example():
    # group 1: clicked item has quality 1 <= 1.0 -> dropped; group 2: clicked quality 3 kept, nDCG 1/log2(3);
    # group 3: no click -> skipped. Mean over kept = 1/log2(3)
    ids = [1, 1, 2, 2, 3]
    clicks = [1, 0, 0, 1, 0]
    quality = [1, 4, 0, 3, 0]
    scores = [0.9, 0.1, 0.9, 0.1, 0.5]
    assert quality_filtered_click_ndcg(ids, clicks, quality, scores, 5) == pytest.approx(1 / math.log2(3))
    # threshold 0.5 keeps group 1 (nDCG 1): (1 + 1/log2(3)) / 2
    got = quality_filtered_click_ndcg(ids, clicks, quality, scores, 5, threshold=0.5)
    assert got == pytest.approx((1 + 1 / math.log2(3)) / 2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.0, 1.0, 2.5])
def test_quality_filtered_matches_loop(seed, threshold):
    ids, clicks, quality, scores = make_groups(seed, string_ids=seed % 2 == 1)
    for k in (3, 5):
        ref = ref_ndcg_by_group(ids, clicks, quality, scores, k, threshold=threshold)
        got = quality_filtered_click_ndcg(ids, clicks, quality, scores, k, threshold=threshold)
        assert got == pytest.approx(sum(ref) / len(ref), abs=1e-12)


def test_quality_filter_below_zero_equals_click_ndcg():
    ids, clicks, quality, scores = make_groups(3)
    assert quality_filtered_click_ndcg(ids, clicks, quality, scores, 5, threshold=-1) == click_ndcg(
        ids, clicks, scores, 5)


# --- pairwise_accuracy ---


def test_pairwise_accuracy_hand_examples():
    # pairs (0,1) right, (0,2) right, (1,2) wrong -> 2/3
    assert pairwise_accuracy([0, 1, 2], [0.1, 0.3, 0.2]) == pytest.approx(2 / 3)
    # differing-label pairs: (0,1) tie 1/2, (0,2) 1, (0,3) 1, (1,3) 1, (2,3) 0 -> 3.5 / 5
    assert pairwise_accuracy([0, 1, 1, 2], [0.5, 0.5, 0.7, 0.6]) == pytest.approx(0.7)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_levels", [2, 3, 5, 17, 0])  # 0: continuous labels (all distinct)
def test_pairwise_accuracy_matches_quadratic_loop(seed, n_levels):
    rng = np.random.default_rng(seed)
    n = 150
    labels = rng.normal(size=n) if n_levels == 0 else rng.integers(0, n_levels, n) * 0.7 - 1
    preds = np.round(labels + rng.normal(size=n), 1)  # rounding -> tied predictions
    got = pairwise_accuracy(labels, preds)
    assert isinstance(got, float)
    assert got == pytest.approx(ref_pairwise(labels.tolist(), preds.tolist()), abs=1e-12)


def test_pairwise_accuracy_perfect_reversed_constant():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 1000)
    assert pairwise_accuracy(labels, labels * 2.0 + 1) == 1.0
    assert pairwise_accuracy(labels, -labels) == 0.0
    assert pairwise_accuracy(labels, np.zeros(labels.size)) == 0.5
    assert pairwise_accuracy(pd.Series(labels), (labels * 3).tolist()) == 1.0


# --- errors ---


@pytest.mark.parametrize("call, match", [
    (lambda: reco_dcg([1, 1], [1, 2, 3], [0.1, 0.2], 5), "quality must be 1-D with 2 entries"),
    (lambda: reco_dcg([1, 1], [1, 2], [0.1], 5), "scores must be 1-D with 2 entries"),
    (lambda: reco_dcg([1, 1], [1, 5], [0.1, 0.2], 5), r"quality must be in \[0, 4\]"),
    (lambda: reco_dcg([1, 1], [-1, 2], [0.1, 0.2], 5), r"quality must be in \[0, 4\]"),
    (lambda: reco_dcg([1, 1], [np.nan, 2], [0.1, 0.2], 5), "quality must be finite"),
    (lambda: reco_dcg([1, 1], [1, 2], [np.inf, 0.2], 5), "scores must be finite"),
    (lambda: reco_dcg([1, 1], [1, 2], [0.1, 0.2], 0), "k must be an integer >= 1"),
    (lambda: reco_dcg([1, 1], [1, 2], [0.1, 0.2], 2.5), "k must be an integer >= 1"),
    (lambda: reco_dcg([], [], [], 5), "empty"),
    (lambda: reco_dcg([1, 2, 1], [1, 2, 3], [0.1, 0.2, 0.3], 5), "group_ids: .*not contiguous"),
    (lambda: click_ndcg([1, 1, 2], [0, 0, 0], [0.1, 0.2, 0.3], 5), "no group has a click"),
    (lambda: click_ndcg([1, 1], [0, -1], [0.1, 0.2], 5), "clicks must be >= 0"),
    (lambda: click_ndcg([1, 1], [0, 1, 1], [0.1, 0.2], 5), "clicks must be 1-D with 2 entries"),
    (lambda: quality_filtered_click_ndcg([1, 1], [0, 1], [4, 1], [0.1, 0.2], 5), "no group with a click is left"),
    (lambda: quality_filtered_click_ndcg([1, 1], [0, 1], [4, 9], [0.1, 0.2], 5), r"quality must be in \[0, 4\]"),
    (lambda: quality_filtered_click_ndcg([1, 1], [0, 1], [4, 2], [0.1, 0.2], 5, threshold=np.nan), "threshold"),
    (lambda: pairwise_accuracy([1, 1, 1], [0.1, 0.2, 0.3]), "no pair has different labels"),
    (lambda: pairwise_accuracy([], []), "no pair has different labels"),
    (lambda: pairwise_accuracy([0, 1], [0.1]), "predictions must be 1-D with 2 entries"),
    (lambda: pairwise_accuracy([0, 1], [0.1, np.nan]), "predictions must be finite"),
])
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_per_group_values_average_to_the_scalar_metrics():
    from training.metrics.quality import (
        click_ndcg_per_group,
        quality_filtered_click_ndcg_per_group,
        reco_dcg_per_group,
    )

    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(40), rng.integers(2, 9, size=40))
    quality = rng.integers(0, 5, size=groups.size).astype(float)
    clicks = (rng.random(groups.size) < 0.3).astype(float)
    scores = rng.random(groups.size)
    per_reco = reco_dcg_per_group(groups, quality, scores, 5)
    assert per_reco.shape == (40,)
    assert per_reco.mean() == pytest.approx(reco_dcg(groups, quality, scores, 5))
    per_click = click_ndcg_per_group(groups, clicks, scores, 5)
    assert np.nanmean(per_click) == pytest.approx(click_ndcg(groups, clicks, scores, 5))
    assert np.isnan(per_click).sum() == 40 - len(set(groups[clicks > 0]))
    per_qf = quality_filtered_click_ndcg_per_group(groups, clicks, quality, scores, 5)
    assert np.nanmean(per_qf) == pytest.approx(quality_filtered_click_ndcg(groups, clicks, quality, scores, 5))
    # group 0 by hand: RecoDCG@5 of its top items
    g0 = groups == 0
    order = np.argsort(-scores[g0], kind="stable")[:5]
    disc = 1 / np.log2(np.arange(order.size) + 2)
    assert per_reco[0] == pytest.approx((quality[g0][order] / 4 * disc).sum() / disc.sum())
