"""The day's recall report against a hand-computed example: per path, union, Q'-only share, fresh news,
RecoDCG@5 of each path's top 5, and the generator comparison table."""
import numpy as np
import pandas as pd
import pytest

from training.data.prepared import BehaviorLog
from training.retrieval.evaluation import (
    comparison_markdown,
    fresh_targets,
    live_found,
    path_reco_dcg,
    per_trigger_recall,
    recall_report,
)
from training.retrieval.live_news import LiveWindow


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
    # union: the set union of the paths' top k; A (coclick), D and F (qprime) at 1
    assert table.loc["union", "recall_at_1"] == pytest.approx(3 / 4)
    # served: round robin coclick, embedding, qprime: T1 = A, C, D, B; T2 = E, F
    assert table.loc["union_served", "recall_at_1"] == pytest.approx(1 / 4)     # A
    assert table.loc["union_served", "recall_at_2"] == pytest.approx(2 / 4)     # A, F
    assert report.only_qprime == pytest.approx(2 / 4)                           # D and F at 30, no one else
    assert table.loc["qprime", "fresh_recall_at_30"] == pytest.approx(2 / 2)    # D and F are the fresh clicks
    assert table.loc["coclick", "fresh_recall_at_30"] == 0.0
    assert report.qprime_trigger_coverage == 1.0
    assert table.loc["union", "n_triggers"] == 2 and table.loc["coclick", "n_triggers"] == 1
    assert report.qprime_vs_random is None and "not measured" in report.decision()


@pytest.mark.parametrize("seed", range(5))
def test_union_recall_is_never_below_a_path_on_random_data(seed):
    rng = np.random.default_rng(seed)
    news = [f"N{i}" for i in range(60)]
    rows = []
    for t in range(12):
        for path in ("coclick", "embedding", "qprime"):
            picks = rng.choice(news, size=rng.integers(0, 50), replace=False)
            rows += [(f"T{t}", path, r, n, 1.0) for r, n in enumerate(picks)]
    candidates = _candidates(rows)
    first = pd.Series(pd.Timestamp("2019-11-13", tz="UTC") + pd.to_timedelta(rng.uniform(0, 48, 60), unit="h"),
                      index=news)
    targets = pd.DataFrame({"trigger_id": [f"T{t}" for t in rng.integers(0, 14, 200)],
                            "news_id": rng.choice(news, 200),
                            "time": pd.Timestamp("2019-11-14", tz="UTC")
                            + pd.to_timedelta(rng.uniform(0, 24, 200), unit="h")})
    for window in (None, LiveWindow(first, 1)):
        table = recall_report(candidates, targets, ks=(5, 10, 30), window=window).table.set_index("path")
        for k in (5, 10, 30):
            paths = table.loc[["coclick", "embedding", "qprime"], f"recall_at_{k}"]
            assert table.loc["union", f"recall_at_{k}"] >= paths.max()
            assert table.loc["union", f"recall_at_{k}"] >= table.loc["union_served", f"recall_at_{k}"]


def test_a_clicks_candidates_count_only_when_live_at_its_time():
    t = pd.Timestamp("2019-11-14 12:00", tz="UTC")
    first = pd.Series({"OLD": t - pd.Timedelta(days=3), "A": t - pd.Timedelta(hours=5),
                       "LATER": t + pd.Timedelta(hours=2), "B": t - pd.Timedelta(hours=1)})
    window = LiveWindow(first, 2)
    candidates = _candidates([("T", "embedding", 0, "LATER", 1.0), ("T", "embedding", 1, "OLD", 1.0),
                              ("T", "embedding", 2, "A", 1.0), ("T", "embedding", 3, "B", 1.0)])
    targets = pd.DataFrame({"trigger_id": ["T", "T"], "news_id": ["B", "LATER"], "time": [t, t]})
    found = live_found(candidates, targets, (1, 2), window)
    # at 12:00 LATER (first shown 14:00) and OLD (3 days ago) are not live: the list is A, B
    assert found[1].tolist() == [False, False] and found[2].tolist() == [True, False]
    assert live_found(candidates, targets, (4,))[4].tolist() == [True, True]      # no window: as stored
    assert window.live(["A", "LATER", "OLD", "NEVER"], [t] * 4).tolist() == [True, False, False, False]
    with pytest.raises(ValueError, match="time"):
        live_found(candidates, targets.drop(columns="time"), (1,), window)


def test_qprime_is_compared_with_random_queries_per_trigger():
    candidates = pd.concat([CANDIDATES, _candidates([("T1", "random_queries", 0, "A", 1.0),
                                                      ("T2", "random_queries", 0, "X", 1.0)])])
    report = recall_report(candidates, TARGETS, ks=(1,))
    table = report.table.set_index("path")
    assert table.loc["random_queries", "recall_at_1"] == pytest.approx(1 / 4)
    assert table.loc["union", "recall_at_30"] == pytest.approx(3 / 4)             # random queries are not in it
    # per trigger at 30: Q' T1 1/2 (D), T2 1/2 (F); random T1 1/2 (A), T2 0
    assert report.n_paired_triggers == 2
    assert report.qprime_vs_random.estimate == pytest.approx(((0.5 - 0.5) + (0.5 - 0.0)) / 2)
    assert "random queries" in report.decision() and "2 triggers" in report.decision()
    assert per_trigger_recall(np.array([True, False, True, True]), TARGETS, ["T2", "T1"]).tolist() == [1.0, 0.5]


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


def test_live_news_of_a_day_are_those_live_at_some_moment_of_it_and_get_an_exact_index():
    from training.embedding_table import EmbeddingTable
    from training.retrieval.live_news import live_index, live_news
    from training.retrieval.news_index import NewsIndex

    day = pd.Timestamp("2019-11-14", tz="UTC")
    impressions = pd.DataFrame({"news_id": ["OLD", "OLD", "EDGE", "YESTERDAY", "TODAY", "TOMORROW"],
                                "time": [day - pd.Timedelta(days=4), day, day - pd.Timedelta(hours=47),
                                         day - pd.Timedelta(hours=10), day + pd.Timedelta(hours=23),
                                         day + pd.Timedelta(hours=25)]})
    live = live_news(impressions, "2019-11-14", days=2)
    # OLD was first shown too long ago, TOMORROW not yet; EDGE is live at the day's start
    assert live == {"EDGE", "YESTERDAY", "TODAY"}
    assert live_news(impressions, "2019-11-14", days=0.5) == {"YESTERDAY", "TODAY"}
    vectors = np.eye(4, dtype=np.float32)
    index = NewsIndex.build(EmbeddingTable(["OLD", "YESTERDAY", "TODAY", "TOMORROW"], vectors))
    sub = live_index(index, live)
    assert sorted(sub.ids) == ["TODAY", "YESTERDAY"] and sub.kind == "flat"
    ids, _ = sub.search(vectors[[0]], 5)
    assert set(ids[0]) <= live
    with pytest.raises(ValueError, match="no live news"):
        live_index(index, set())
    with pytest.raises(ValueError, match="live days"):
        live_news(impressions, "2019-11-14", days=0)
