"""Recall metrics of candidate generation against hand-computed examples."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from training.metrics.recall import found_mask, only_found_by, recall_at_k, recall_table


def cands(rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["trigger_id", "rank", "news_id"])


COCLICK = cands([("t1", 0, "a"), ("t1", 1, "b"), ("t1", 2, "c"), ("t2", 0, "x")])
EMBED = cands([("t1", 0, "c"), ("t1", 1, "d"), ("t2", 0, "y"), ("t2", 1, "x")])
# five target rows; t1->a counted twice (two impressions); t3 has no candidates at all
TARGETS = pd.DataFrame({"trigger_id": ["t1", "t1", "t1", "t2", "t3"], "news_id": ["a", "a", "c", "x", "a"]})


def test_found_mask_and_recall():
    assert found_mask(COCLICK, TARGETS, 1).tolist() == [True, True, False, True, False]
    assert found_mask(COCLICK, TARGETS, 3).tolist() == [True, True, True, True, False]
    assert recall_at_k(COCLICK, TARGETS, 1) == pytest.approx(3 / 5)
    assert recall_at_k(COCLICK, TARGETS, 3) == pytest.approx(4 / 5)
    assert recall_at_k(EMBED, TARGETS, 1) == pytest.approx(1 / 5)  # t1->c
    assert recall_at_k(EMBED, TARGETS, 2) == pytest.approx(2 / 5)  # + t2->x
    assert recall_at_k(cands([]), TARGETS, 10) == 0.0
    assert math.isnan(recall_at_k(COCLICK, TARGETS.iloc[:0], 10))


def test_only_found_by():
    per_path = {"coclick": COCLICK, "embedding": EMBED}
    # at k=1: coclick finds rows 0,1,3; embedding finds row 2 -> each only by itself
    assert only_found_by(per_path, TARGETS, "coclick", 1) == pytest.approx(3 / 5)
    assert only_found_by(per_path, TARGETS, "embedding", 1) == pytest.approx(1 / 5)
    # at k=3: embedding's c and x are also found by coclick
    assert only_found_by(per_path, TARGETS, "embedding", 3) == 0.0
    assert only_found_by(per_path, TARGETS, "coclick", 3) == pytest.approx(2 / 5)
    with pytest.raises(KeyError, match="qprime"):
        only_found_by(per_path, TARGETS, "qprime", 3)


def test_recall_table():
    table = recall_table({"coclick": COCLICK, "embedding": EMBED}, TARGETS, ks=(1, 2))
    assert list(table.columns) == ["path", "recall_at_1", "recall_at_2", "n_targets"]
    assert table["recall_at_1"].tolist() == pytest.approx([3 / 5, 1 / 5])
    assert table["recall_at_2"].tolist() == pytest.approx([3 / 5, 2 / 5])
    assert table["n_targets"].tolist() == [5, 5]


def test_vectorised_on_many_targets():
    rng = np.random.default_rng(0)
    n = 50_000
    big = pd.DataFrame({"trigger_id": [f"t{i % 1000}" for i in range(n)],
                        "rank": np.tile(np.arange(50), 1000), "news_id": [f"n{v}" for v in rng.integers(0, 500, n)]})
    targets = pd.DataFrame({"trigger_id": [f"t{v}" for v in rng.integers(0, 1000, n)],
                            "news_id": [f"n{v}" for v in rng.integers(0, 500, n)]})
    r = recall_at_k(big, targets, 50)
    assert 0.05 < r < 0.15  # about 50 distinct-ish of 500 news per trigger
