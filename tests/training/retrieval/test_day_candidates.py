"""One day's recall candidates: every path among the news live on the day, the union in UNION_PATHS' order, and the
random-queries baseline beside the served lists, never in them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.retrieval.day_candidates import day_candidates
from training.retrieval.live_news import LiveWindow
from training.retrieval.news_index import IndexConfig, NewsIndex
from training.retrieval.recall_paths import UNION_PATHS, RecallPath

DAY = "2019-11-14"
BEFORE = pd.Timestamp("2019-11-13 08:00")


def _behaviors() -> BehaviorLog:
    """N1..N7 first shown the day before ``DAY`` (live on it), N8 two weeks before (not live)."""
    shown = [(f"N{i}", BEFORE, "2019-11-13") for i in range(1, 8)] + [("N8", pd.Timestamp("2019-11-01"), "2019-11-01")]
    impressions = pd.DataFrame(shown, columns=["news_id", "time", "day"])
    histories = pd.DataFrame([
        ("i1", "u1", pd.Timestamp("2019-11-13 09:00"), "2019-11-13", ["N1", "N2", "N3"]),   # u1's older history
        ("i2", "u1", pd.Timestamp("2019-11-13 12:00"), "2019-11-13", ["N1", "N2", "N4"]),   # u1's latest
        ("i3", "u2", pd.Timestamp("2019-11-13 10:00"), "2019-11-13", ["N5", "N7"]),
        ("i4", "u3", pd.Timestamp(f"{DAY} 09:00"), DAY, ["N1", "N5"]),                    # the day itself
    ], columns=["impression_id", "user_id", "time", "day", "history"])
    return BehaviorLog(impressions, histories)


def _rank(triggers: list[str], news_ids: list[str]) -> np.ndarray:
    """The smaller the news number, the better."""
    return np.array([-float(n[1:]) for n in news_ids])


@pytest.fixture(scope="module")
def found(catalogue, tiny_news_encoder, tmp_path_factory):
    rng = np.random.default_rng(0)
    vectors = EmbeddingTable(catalogue["news_id"].tolist(), rng.normal(size=(len(catalogue), 8)).astype(np.float32))
    behaviors = _behaviors()
    train_pairs = pd.DataFrame({"trigger_id": ["N1", "N1", "N8"], "candidate_id": ["N6", "N7", "N1"],
                                "clicked": [1, 0, 1]})
    queries = pd.DataFrame({"input_id": ["N1", "N1", "N3"], "query_rank": [0, 1, 0],
                            "query": ["coast storm", "storm damage", "rates"]})
    return day_candidates(DAY, catalogue, behaviors, train_pairs, vectors,
                          NewsIndex.build(vectors, IndexConfig(kind="flat")), tiny_news_encoder, queries, _rank,
                          LiveWindow.from_impressions(behaviors.impressions, 2), k=3, per_query=3, keep=2, union_k=4,
                          vector_cache=tmp_path_factory.mktemp("vectors"))


def _lists(frame: pd.DataFrame, path: str) -> dict[str, list[str]]:
    part = frame[frame["path"] == path].sort_values(["trigger_id", "rank"])
    return {t: g["news_id"].tolist() for t, g in part.groupby("trigger_id")}


def test_every_path_proposes_only_live_news_and_never_the_trigger(found):
    assert set(found.served["path"]) == {"coclick", "embedding", "qprime", "union"}
    assert "N8" not in set(found.candidates["news_id"])                      # not live on the day
    assert not (found.candidates["trigger_id"] == found.candidates["news_id"]).any()


def test_coclick_counts_the_latest_histories_before_the_day_and_the_clicks(found):
    # u1's latest history (N2, N4) and the click N1 -> N6; not u1's older N3, not the day's N5, not unclicked N7
    assert _lists(found.served, "coclick")["N1"] == ["N2", "N4", "N6"]


def test_qprime_ranks_the_retrieved_news_with_rank_and_keeps_the_top(found):
    qprime = found.served[found.served["path"] == "qprime"]
    assert set(qprime["trigger_id"]) == {"N1", "N3"}
    for _, group in qprime.groupby("trigger_id"):
        scores = group.sort_values("rank")["score"].tolist()
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)   # keep=2 of the 3+ retrieved
    assert qprime["score"].tolist() == _rank([], qprime["news_id"].tolist()).tolist()


def test_the_union_interleaves_the_paths_in_union_order(found):
    lists = {p: _lists(found.served, p) for p in UNION_PATHS}
    union = _lists(found.served, RecallPath.UNION)
    for trigger, served in union.items():
        rounds = max(len(lists[p].get(trigger, [])) for p in UNION_PATHS)
        expected = [lists[p][trigger][r] for r in range(rounds) for p in UNION_PATHS
                    if r < len(lists[p].get(trigger, []))]
        assert served == list(dict.fromkeys(expected))[:4], trigger
    assert union["N1"][0] == "N2"                                           # coclick's first comes first


def test_the_random_queries_baseline_is_beside_the_served_lists(found):
    baseline = found.candidates[found.candidates["path"] == RecallPath.RANDOM_QUERIES]
    assert set(baseline["trigger_id"]) == {"N1", "N3"}                      # Q''s coverage
    assert RecallPath.RANDOM_QUERIES not in set(found.served["path"])
    pd.testing.assert_frame_equal(found.candidates.iloc[:len(found.served)], found.served)
    assert len(found.candidates) == len(found.served) + len(baseline)


def test_coverage_and_timings_name_each_path(found):
    assert found.coverage == {
        f"triggers_{p}": found.candidates.loc[found.candidates["path"] == p, "trigger_id"].nunique()
        for p in ("coclick", "embedding", "qprime", "union", "random_queries")}
    assert found.coverage["triggers_qprime"] == 2 and found.coverage["triggers_embedding"] == 8
    assert set(found.timings) == {"coclick_seconds", "embedding_seconds", "qprime_seconds"}
    assert all(seconds >= 0 for seconds in found.timings.values())


def test_shown_before_is_the_news_first_shown_before_the_day_starts():
    import pandas as pd

    first = pd.Series(pd.to_datetime(["2019-11-13 23:59", "2019-11-14 00:00", "2019-11-10 08:00"]),
                      index=["N1", "N2", "N3"])
    window = LiveWindow(first, 2)
    assert window.shown_before("2019-11-14") == {"N1", "N3"}
    assert window.shown_before("2019-11-10") == set()
    utc = LiveWindow(first.dt.tz_localize("UTC"), 2)   # a tz-aware log compares in its own zone
    assert utc.shown_before("2019-11-14") == {"N1", "N3"}
