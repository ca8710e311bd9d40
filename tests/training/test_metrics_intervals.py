"""Bootstrap intervals against independent computations (scipy's bootstrap and the normal theory)."""
import numpy as np
import pytest
from scipy import stats

from training.metrics.intervals import bootstrap, bootstrap_statistic, format_mean_std, mean_std, paired_difference


def test_interval_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    values = rng.exponential(size=800)
    ours = bootstrap(values, n_resamples=4000, seed=1)
    theirs = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile",
                             confidence_level=0.95, random_state=2)
    assert ours.estimate == pytest.approx(values.mean())
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.01)
    assert ours.std_error == pytest.approx(theirs.standard_error, rel=0.08)
    assert ours.std_error == pytest.approx(values.std(ddof=1) / np.sqrt(values.size), rel=0.08)


def test_paired_interval_removes_the_shared_unit_noise():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(size=2000) * 5      # per-unit noise shared by both arms
    a = difficulty + 0.1 + rng.normal(size=2000) * 0.1
    b = difficulty
    paired = paired_difference(a, b)
    assert paired.verdict() == "above 0" and paired.excludes_zero()
    unpaired_se = np.hypot(a.std(), b.std()) / np.sqrt(a.size)
    assert paired.std_error < unpaired_se / 10
    assert paired_difference(b, a).verdict() == "below 0"
    assert paired_difference(a, a).verdict() == "contains 0"


def test_seeds_are_averaged_before_resampling_units():
    per_seed = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    interval = bootstrap(per_seed, n_resamples=200)
    assert interval.estimate == pytest.approx(0.5)
    assert 0.0 <= interval.low <= 0.5 <= interval.high <= 1.0


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="same units"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="no evaluation units"):
        bootstrap([])
    with pytest.raises(ValueError, match="non-finite"):
        bootstrap([1.0, np.nan])


def test_mean_std_and_format():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert format_mean_std([0.4217], scale=100) == "42.17"
    assert format_mean_std([0.42, 0.44], scale=100) == "43.00 ± 1.41"
    assert bootstrap([0.5] * 10).format(scale=100) == "+50.00 [+50.00, +50.00]"


def test_bootstrap_statistic_of_a_mean_is_the_mean_bootstrap():
    values = np.random.default_rng(5).normal(size=300)
    assert bootstrap_statistic(values.size, lambda idx: values[idx].mean(), seed=4) == bootstrap(values, seed=4)


def test_pairwise_accuracy_interval_matches_scipy_paired_bootstrap():
    from training.metrics.quality import pairwise_accuracy

    rng = np.random.default_rng(11)
    labels = np.repeat([0, 1], 200)
    scores = labels + rng.normal(scale=1.2, size=labels.size)
    ours = bootstrap_statistic(labels.size, lambda idx: pairwise_accuracy(labels[idx], scores[idx]),
                               n_resamples=2000, seed=3)
    theirs = stats.bootstrap((labels, scores), pairwise_accuracy, paired=True, vectorized=False,
                             n_resamples=2000, method="percentile", confidence_level=0.95, random_state=8)
    assert ours.estimate == pytest.approx(pairwise_accuracy(labels, scores))
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=0.01)
    assert ours.std_error == pytest.approx(theirs.standard_error, rel=0.1)
    with pytest.raises(ValueError, match="n_units"):
        bootstrap_statistic(0, lambda idx: 0.0)
