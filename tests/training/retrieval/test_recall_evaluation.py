"""The day's recall report against a hand-computed example: per path, union, Q'-only share, fresh news,
RecoDCG@5 of each path's top 5, and the generator comparison table."""
import numpy as np
import pandas as pd
import pytest

from training.data.prepared import BehaviorLog
from training.retrieval.evaluation import comparison_markdown, fresh_targets, path_reco_dcg, recall_report


def _candidates(rows):
    return pd.DataFrame(rows, columns=["trigger_id", "path", "rank", "news_id", "score"])


CANDIDATES = _candidates([
    ("T1", "coclick", 0, "A", 3.0), ("T1", "coclick", 1, "B", 2.0),
    ("T1", "embedding", 0, "C", 0.9), ("T1", "embedding", 1, "A", 0.8),
    ("T1", "qprime", 0, "D", 4.0),
    ("T2", "embedding", 0, "E", 0.7),
    ("T2", "qprime", 0, "F", 3.0), ("T2", "qprime", 1, "E", 2.0),
])
# clicked next: T1 -> A (coclick, embedding), T1 -> D (qprime only), T2 -> F (qprime only), T2 -> G (nobody)
TARGETS = pd.DataFrame({"trigger_id": ["T1", "T1", "T2", "T2"], "news_id": ["A", "D", "F", "G"],
                        "fresh": [False, True, True, False]})


def test_recall_per_path_union_and_qprime_only_share():
    report = recall_report(CANDIDATES, TARGETS, ks=(1, 2))
    table = report.table.set_index("path")
    assert table.loc["coclick", "recall_at_1"] == pytest.approx(1 / 4)          # T1->A at rank 0
    assert table.loc["embedding", "recall_at_1"] == 0.0                         # A is rank 1
    assert table.loc["embedding", "recall_at_2"] == pytest.approx(1 / 4)
    assert table.loc["qprime", "recall_at_1"] == pytest.approx(2 / 4)           # D and F at rank 0
    # union, round robin coclick, embedding, qprime: T1 = A, C, D, B; T2 = E, F
    assert table.loc["union", "recall_at_1"] == pytest.approx(1 / 4)            # A
    assert table.loc["union", "recall_at_2"] == pytest.approx(2 / 4)            # A, F
    assert report.only_qprime == pytest.approx(2 / 4)                           # D and F at 30, no one else
    assert table.loc["qprime", "fresh_recall_at_30"] == pytest.approx(2 / 2)    # D and F are the fresh clicks
    assert table.loc["coclick", "fresh_recall_at_30"] == 0.0
    assert report.qprime_trigger_coverage == 1.0
    assert table.loc["union", "n_triggers"] == 2 and table.loc["coclick", "n_triggers"] == 1


def test_fresh_targets_use_the_first_time_a_news_was_shown():
    t = pd.Timestamp("2019-11-14 10:00", tz="UTC")
    impressions = pd.DataFrame({"impression_id": [1, 2, 2], "news_id": ["A", "A", "B"],
                                "time": [t - pd.Timedelta(hours=30), t, t]})
    histories = pd.DataFrame({"impression_id": [1, 2], "time": [t - pd.Timedelta(hours=30), t]})
    pairs = pd.DataFrame({"impression_id": [2, 2], "trigger_id": ["T", "T"], "candidate_id": ["A", "B"],
                          "clicked": [1, 1]})
    out = fresh_targets(pairs, BehaviorLog(impressions, histories))
    assert out["age_hours"].tolist() == [30.0, 0.0] and out["fresh"].tolist() == [False, True]


def test_reco_dcg_of_each_paths_top_five_by_the_truth():
    news = pd.DataFrame({"news_id": ["T1", "T2", *"ABCDEF"], "category": ["x"] * 8})
    truth = pd.DataFrame({"news_id": list("ABCDEF"), "quality": [4, 0, 2, 4, 1, 3]})
    out = path_reco_dcg(CANDIDATES, ["T1"], news, truth).set_index("path")["reco_dcg5"]
    discounts = 1 / np.log2(np.arange(2, 4))
    assert out["coclick"] == pytest.approx((4 / 4 * discounts[0] + 0 / 4 * discounts[1]) / discounts.sum())
    assert out["qprime"] == pytest.approx(1.0)                                   # D has grade 4
    assert np.isnan(path_reco_dcg(CANDIDATES, ["T1"], news, None).set_index("path").loc["qprime", "reco_dcg5"])


def test_comparison_table_reports_mean_and_std_over_seeds():
    rows = [{"variant": "base", "seed": 0, "recall_at_10": 0.1, "recall_at_30": 0.2, "malformed_rate": 0.5,
             "empty_rate": 0.0, "duplicate_queries": 3.0},
            {"variant": "sft", "seed": 1, "recall_at_10": 0.2, "recall_at_30": 0.3, "malformed_rate": 0.0,
             "empty_rate": 0.0, "duplicate_queries": 1.0},
            {"variant": "sft", "seed": 2, "recall_at_10": 0.4, "recall_at_30": 0.5, "malformed_rate": 0.0,
             "empty_rate": 0.0, "duplicate_queries": 3.0}]
    text = comparison_markdown(rows)
    assert "| base | 10.00 | 20.00 | 50.00 | 0.00 | 3.00 | 1 |" in text
    assert f"| sft | 30.00 ± {100 * np.std([0.2, 0.4], ddof=1):.2f} | 40.00 ± " in text


def test_live_news_are_those_first_shown_in_the_last_days_and_get_an_exact_index():
    from training.embedding_table import EmbeddingTable
    from training.retrieval.live_news import live_index, live_news
    from training.retrieval.news_index import NewsIndex

    impressions = pd.DataFrame({"news_id": ["OLD", "OLD", "YESTERDAY", "TODAY", "TOMORROW"],
                                "day": ["2019-11-10", "2019-11-14", "2019-11-13", "2019-11-14", "2019-11-15"]})
    live = live_news(impressions, "2019-11-14", days=2)
    assert live == {"YESTERDAY", "TODAY"}                  # OLD was first shown long ago, TOMORROW not yet
    assert live_news(impressions, "2019-11-14", days=1) == {"TODAY"}
    vectors = np.eye(4, dtype=np.float32)
    index = NewsIndex.build(EmbeddingTable(["OLD", "YESTERDAY", "TODAY", "TOMORROW"], vectors))
    sub = live_index(index, live)
    assert sorted(sub.ids) == ["TODAY", "YESTERDAY"] and sub.kind == "flat"
    ids, _ = sub.search(vectors[[0]], 5)
    assert set(ids[0]) <= live
    with pytest.raises(ValueError, match="no live news"):
        live_index(index, set())
