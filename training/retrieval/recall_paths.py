"""Candidate generation ("recall paths"): co-click counts, embedding neighbours, generated queries, and
their round-robin union.

Every path returns a DataFrame with columns ``trigger_id, path, rank, news_id, score`` (rank 0-based,
best first) and never proposes the trigger itself; :class:`RecallPath` spells each path's name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training.embedding_table import EmbeddingTable
from training.retrieval.news_index import NewsIndex

CANDIDATE_COLUMNS = ["trigger_id", "path", "rank", "news_id", "score"]


class RecallPath(StrEnum):
    """A recall path's name, as the candidates frames, the candidate store, the features and the reports spell it
    (frames and the store hold the plain string: ``str(path)``)."""

    COCLICK = "coclick"                # co-occurrence in histories and click pairs
    EMBEDDING = "embedding"            # nearest news vectors
    QPRIME = "qprime"                  # news retrieved by generated queries (Q')
    UNION = "union"                    # the round-robin merge of UNION_PATHS (served by default)
    RANDOM_QUERIES = "random_queries"  # Q''s baseline: titles of random live news as queries (never served)
    INTEREST = "interest"              # per user: the news a user's interest query list retrieves (issue 24)


#: The paths the union interleaves, in its round-robin order; the store serves each of them and the union.
UNION_PATHS = (RecallPath.COCLICK, RecallPath.EMBEDDING, RecallPath.QPRIME)


def _frame(trigger_ids: Sequence[str] | np.ndarray, news_ids: Sequence[str] | np.ndarray,
           scores: Sequence[float] | np.ndarray, ranks: Sequence[int] | np.ndarray, path: str) -> pd.DataFrame:
    return pd.DataFrame({
        "trigger_id": pd.Series(trigger_ids, dtype=object).astype(str),
        "path": str(path),
        "rank": np.asarray(ranks, dtype=np.int64),
        "news_id": pd.Series(news_ids, dtype=object).astype(str),
        "score": np.asarray(scores, dtype=np.float64),
    }, columns=CANDIDATE_COLUMNS)


def empty_candidates(path: str = "") -> pd.DataFrame:
    return _frame([], [], [], [], path)


def coclick_candidates(histories: pd.Series | list[list[str]], click_pairs: pd.DataFrame, triggers: list[str],
                       k: int = 100, catalogue: set[str] | None = None) -> pd.DataFrame:
    """Top ``k`` news co-occurring with each trigger: in the same user history (each history once, items
    deduplicated) or as a logged (trigger_id, candidate_id) click pair, counted both ways. score = count.

    A history is a list of news ids or a MIND-style space-separated string; missing histories are skipped."""
    missing = {"trigger_id", "candidate_id"} - set(click_pairs.columns)
    if missing:
        raise ValueError(f"click_pairs lacks column(s) {sorted(missing)}")
    history_lists = [list(dict.fromkeys(map(str, h.split() if isinstance(h, str) else h)))
                     for h in histories if isinstance(h, (str, list, tuple, np.ndarray)) and len(h)]
    pair_a = click_pairs["trigger_id"].astype(str).to_numpy()
    pair_b = click_pairs["candidate_id"].astype(str).to_numpy()
    vocab = pd.Index(sorted({news for h in history_lists for news in h} | set(pair_a) | set(pair_b)
                            | set(map(str, triggers))))
    n = len(vocab)

    lengths = np.fromiter((len(h) for h in history_lists), dtype=np.int64, count=len(history_lists))
    cols = vocab.get_indexer([news for h in history_lists for news in h])
    rows = np.repeat(np.arange(len(history_lists)), lengths)
    x = sp.csr_matrix((np.ones(len(cols), dtype=np.float64), (rows, cols)), shape=(len(history_lists), n))
    counts = (x.T @ x).tocsr()
    if len(pair_a):
        a, b = vocab.get_indexer(pair_a), vocab.get_indexer(pair_b)
        ones = np.ones(len(a), dtype=np.float64)
        both_ways = (np.concatenate([a, b]), np.concatenate([b, a]))
        counts = counts + sp.csr_matrix((np.concatenate([ones, ones]), both_ways), shape=(n, n))
    counts = (counts - sp.diags(counts.diagonal())).tocsr()  # a news does not co-occur with itself
    counts.eliminate_zeros()

    wanted = list(dict.fromkeys(map(str, triggers)))
    rows_of = counts[vocab.get_indexer(wanted)]
    if catalogue is not None:
        rows_of = (rows_of @ sp.diags(vocab.isin(list(catalogue)).astype(np.float64))).tocsr()
        rows_of.eliminate_zeros()
    out_row, out_col, out_score = [], [], []
    indptr, indices, data = rows_of.indptr, rows_of.indices, rows_of.data
    for i in range(len(wanted)):
        cols, counts_i = indices[indptr[i]:indptr[i + 1]], data[indptr[i]:indptr[i + 1]]
        if len(cols) > k:  # cut to the k-th count (ties kept) before the exact sort
            keep = counts_i >= np.partition(counts_i, len(counts_i) - k)[len(counts_i) - k]
            cols, counts_i = cols[keep], counts_i[keep]
        order = np.lexsort((cols, -counts_i))[:k]  # count descending, then news id (vocab is sorted)
        out_row.append(np.full(len(order), i))
        out_col.append(cols[order])
        out_score.append(counts_i[order])
    if not out_row:
        return empty_candidates(RecallPath.COCLICK)
    row, col = np.concatenate(out_row), np.concatenate(out_col)
    rank = np.concatenate([np.arange(len(r)) for r in out_row])
    return _frame(np.array(wanted, dtype=object)[row], vocab.to_numpy()[col], np.concatenate(out_score), rank,
                  RecallPath.COCLICK)


def embedding_candidates(index: NewsIndex, vectors: EmbeddingTable, triggers: list[str], k: int = 100) -> pd.DataFrame:
    """Top ``k`` nearest news (cosine) to each trigger's vector; triggers without a vector get no rows."""
    triggers = list(dict.fromkeys(map(str, triggers)))
    query, found = vectors.lookup(triggers)
    kept = [t for t, f in zip(triggers, found) if f]
    if not kept:
        return empty_candidates(RecallPath.EMBEDDING)
    ids, scores = index.search(query[found], k, exclude=[{t} for t in kept])
    return _from_lists(kept, ids, scores, RecallPath.EMBEDDING)


def _from_lists(triggers: list[str], ids: list[list[str]], scores: list[list[float]], path: str) -> pd.DataFrame:
    lengths = [len(r) for r in ids]
    return _frame(np.repeat(np.array(triggers, dtype=object), lengths), [n for r in ids for n in r],
                  [s for r in scores for s in r], [i for m in lengths for i in range(m)], path)


def query_candidates(index: NewsIndex, queries: pd.DataFrame, query_vectors: np.ndarray, per_query: int = 10,
                     keep: int = 30, exclude: dict[str, set[str]] | None = None,
                     rank: Callable[[list[str], list[str]], np.ndarray] | None = None,
                     path: str = RecallPath.QPRIME) -> pd.DataFrame:
    """News retrieved by generated queries: each query's top ``per_query``, unioned per trigger (max
    similarity), minus the trigger and ``exclude[trigger]``, scored by ``rank(trigger_ids, news_ids)``
    (called once with all pairs) or else by similarity; the top ``keep`` per trigger."""
    if "trigger_id" not in queries.columns:
        raise ValueError("queries lacks column 'trigger_id'")
    if len(queries) != len(query_vectors):
        raise ValueError(f"{len(queries)} queries for {len(query_vectors)} query vectors")
    if not len(queries):
        return empty_candidates(path)
    trig = queries["trigger_id"].astype(str).tolist()
    exclude = exclude or {}
    drop = [{t} | set(exclude.get(t, ())) for t in trig]
    ids, sims = index.search(query_vectors, per_query, exclude=drop)
    hits = _from_lists(trig, ids, sims, path)
    if hits.empty:
        return hits
    hits = (hits.sort_values("score", ascending=False, kind="stable")
                .drop_duplicates(["trigger_id", "news_id"], keep="first"))
    if rank is not None:
        scores = np.asarray(rank(hits["trigger_id"].tolist(), hits["news_id"].tolist()), dtype=np.float64)
        if scores.shape != (len(hits),):
            raise ValueError(f"rank returned shape {scores.shape} for {len(hits)} pairs")
        hits = hits.assign(score=scores)
    hits = hits.sort_values(["trigger_id", "score", "news_id"], ascending=[True, False, True], kind="stable")
    hits["rank"] = hits.groupby("trigger_id", sort=False).cumcount()
    return hits[hits["rank"] < keep].reset_index(drop=True)[CANDIDATE_COLUMNS]


def union_candidates(paths: pd.DataFrame, k: int | None = None,
                     order: tuple[str, ...] = UNION_PATHS) -> pd.DataFrame:
    """Round-robin merge per trigger over ``order``'s paths (every path's rank 0, then rank 1, ...), first
    occurrence kept; score = 1/(1+rank) of the merged list, truncated to ``k`` when given."""
    frame = paths[paths["path"].isin(order)]
    if frame.empty:
        return empty_candidates(RecallPath.UNION)
    path_pos = {p: i for i, p in enumerate(order)}
    frame = frame.assign(_p=frame["path"].map(path_pos))
    frame = (frame.sort_values(["trigger_id", "rank", "_p"], kind="stable")
                  .drop_duplicates(["trigger_id", "news_id"], keep="first"))
    merged_rank = frame.groupby("trigger_id", sort=False).cumcount().to_numpy()
    out = _frame(frame["trigger_id"].tolist(), frame["news_id"].tolist(), 1.0 / (1.0 + merged_rank),
                 merged_rank, RecallPath.UNION)
    if k is not None:
        out = out[out["rank"] < k]
    return out.reset_index(drop=True)
