"""Recall paths: co-click counts, embedding neighbours, generated queries and the round-robin union."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.embedding_table import EmbeddingTable
from training.retrieval import (
    IndexConfig,
    NewsIndex,
    coclick_candidates,
    embedding_candidates,
    query_candidates,
    union_candidates,
)
from training.retrieval.recall_paths import UNION_PATHS, RecallPath

COLUMNS = ["trigger_id", "path", "rank", "news_id", "score"]


def as_lists(frame: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    frame = frame.sort_values(["trigger_id", "rank"])
    return {t: list(zip(g["news_id"], g["score"])) for t, g in frame.groupby("trigger_id")}


def test_coclick_counts_histories_and_pairs():
    histories = [["A", "B", "C", "B"], ["A", "B"], ["C", "D"], []]
    pairs = pd.DataFrame({"trigger_id": ["A", "D"], "candidate_id": ["D", "A"]})
    out = coclick_candidates(pd.Series(histories), pairs, ["A", "D", "Z"], k=2)
    assert list(out.columns) == COLUMNS and set(out["path"]) == {"coclick"}
    # A: B twice (B duplicated in history 0 counts once), C once, D twice (pair counted both ways, two pairs)
    assert as_lists(out) == {"A": [("B", 2.0), ("D", 2.0)], "D": [("A", 2.0), ("C", 1.0)]}
    assert out.groupby("trigger_id")["rank"].apply(list).to_dict() == {"A": [0, 1], "D": [0, 1]}
    only = coclick_candidates(histories, pairs, ["A"], k=5, catalogue={"C", "D", "A"})
    assert as_lists(only) == {"A": [("D", 2.0), ("C", 1.0)]}
    as_strings = pd.Series(["A B C B", "A B", "C D", None])  # MIND's space-separated histories
    assert as_lists(coclick_candidates(as_strings, pairs, ["A"], k=2)) == as_lists(out[out["trigger_id"] == "A"])


def test_coclick_without_pairs_and_unknown_triggers():
    out = coclick_candidates([["x", "y"]], pd.DataFrame(columns=["trigger_id", "candidate_id"]), ["q"])
    assert out.empty and list(out.columns) == COLUMNS
    with pytest.raises(ValueError, match="candidate_id"):
        coclick_candidates([["x"]], pd.DataFrame({"trigger_id": []}), ["x"])


@pytest.fixture
def news():
    vectors = np.array([[1, 0, 0], [0.9, 0.1, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    table = EmbeddingTable(["a", "b", "c", "d", "e"], vectors)
    return table, NewsIndex.build(table, IndexConfig())


def test_embedding_candidates(news):
    table, index = news
    out = embedding_candidates(index, table, ["a", "ghost", "d"], k=2)
    lists = as_lists(out)
    assert [n for n, _ in lists["a"]] == ["b", "c"] and [n for n, _ in lists["d"]] == ["c", "b"]
    assert "ghost" not in lists and set(out["path"]) == {"embedding"}
    assert lists["a"][0][1] == pytest.approx(0.9 / np.sqrt(0.82), rel=1e-5)


def test_query_candidates_union_exclude_and_rank(news):
    _, index = news
    queries = pd.DataFrame({"trigger_id": ["a", "a", "e"], "query": ["q1", "q2", "q3"]})
    qv = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    out = query_candidates(index, queries, qv, per_query=3, keep=3, exclude={"a": {"b"}})
    lists = as_lists(out)
    # a: q1 -> (a), b, c, d ; q2 -> d, c, (b); trigger a and excluded b removed, c keeps its max similarity
    assert [n for n, _ in lists["a"]] == ["d", "c", "e"]
    assert lists["a"][1][1] == pytest.approx(np.sqrt(0.5), rel=1e-5)
    assert "e" not in [n for n, _ in lists["e"]]

    calls = []

    def rank(triggers, news_ids):
        calls.append(len(triggers))
        return np.array([ord(n) for n in news_ids], dtype=float)  # later letters score higher

    ranked = as_lists(query_candidates(index, queries, qv, per_query=3, keep=2, exclude={"a": {"b"}}, rank=rank,
                                      path="qprime"))
    assert len(calls) == 1  # one call with every (trigger, news) pair
    assert [n for n, _ in ranked["a"]] == ["e", "d"]
    with pytest.raises(ValueError, match="query vectors"):
        query_candidates(index, queries, qv[:2])


def test_union_round_robin():
    frame = pd.DataFrame(
        [("t", "coclick", 0, "A", 9.0), ("t", "coclick", 1, "B", 8.0), ("t", "coclick", 2, "C", 7.0),
         ("t", "embedding", 0, "B", 0.9), ("t", "embedding", 1, "D", 0.8),
         ("t", "qprime", 0, "E", 0.5), ("t", "qprime", 1, "A", 0.4),
         ("u", "embedding", 0, "X", 0.1), ("t", "other", 0, "Z", 1.0)],
        columns=COLUMNS)
    out = union_candidates(frame)
    lists = as_lists(out)
    assert [n for n, _ in lists["t"]] == ["A", "B", "E", "D", "C"]
    assert [s for _, s in lists["t"]] == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert lists["u"] == [("X", 1.0)] and set(out["path"]) == {"union"}
    assert [n for n, _ in as_lists(union_candidates(frame, k=2))["t"]] == ["A", "B"]
    assert [n for n, _ in as_lists(union_candidates(frame, order=("qprime", "coclick")))["t"]] == ["E", "A", "B", "C"]


def test_path_names_come_from_one_enum(news):
    table, index = news
    assert [str(p) for p in UNION_PATHS] == ["coclick", "embedding", "qprime"]      # the union's order
    assert {str(p) for p in RecallPath} == {"coclick", "embedding", "qprime", "union", "random_queries", "interest"}
    frames = [coclick_candidates([["a", "b"]], pd.DataFrame(columns=["trigger_id", "candidate_id"]), ["a"]),
              embedding_candidates(index, table, ["a"], k=2)]
    frames.append(union_candidates(pd.concat(frames, ignore_index=True)))
    assert [sorted(set(f["path"])) for f in frames] == [["coclick"], ["embedding"], ["union"]]
