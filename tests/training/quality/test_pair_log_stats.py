"""The counts ``pair_logs`` logs, on a pair log counted by hand (training.quality.pair_log_stats)."""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from training.quality.pair_log_stats import distinct_fit_pairs, pair_log_stats, repeated_triplet_share


def test_stats_of_the_small_pair_log(small_pair_logs):
    assert pair_log_stats(small_pair_logs) == {
        "n_train_pairs": 9,              # fit day 2 + 3, early-stopping day 2, selection day 2
        "n_test_pairs": 4,
        "n_triplets": 2,                 # N1/N2/N3 (twice), N1/N2/N4
        "n_triplets_total": 2,
        "n_early_stopping_triplets": 1,  # N5/N6/N2
        "n_unlabelled": 3,               # N1 -> N2, N3, N4
        "n_unlabelled_total": 3,
        "n_without_trigger": 1,
        "n_outside_catalogue": 1,
        "repeated_triplet_share": 0.5,
    }


def test_the_unlabelled_total_counts_distinct_fit_pairs_before_the_cap(small_pair_logs):
    capped = dataclasses.replace(small_pair_logs, unlabelled=small_pair_logs.unlabelled.head(2))
    stats = pair_log_stats(capped)
    assert stats["n_unlabelled"] == 2 and stats["n_unlabelled_total"] == distinct_fit_pairs(capped) == 3


def test_repeated_triplet_share_is_zero_without_triplets():
    assert repeated_triplet_share(pd.DataFrame({"frequency": pd.Series([], dtype=int)})) == 0.0
    assert repeated_triplet_share(pd.DataFrame({"frequency": [1, 2, 3, 1]})) == pytest.approx(0.5)
