"""One day's recall candidates (``recall_candidates``): for every catalogue news as a trigger, the lists of the
paths the union merges and the union, which the candidate store serves, and beside them, never served, the
random-queries baseline of Q'. Every path retrieves among the news live on the day."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.prec.news_encoder_store import SavedNewsEncoder
from training.retrieval.live_news import LiveWindow, live_index
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import qprime_candidates, qprime_index, random_queries
from training.retrieval.recall_paths import (
    UNION_PATHS,
    RecallPath,
    coclick_candidates,
    embedding_candidates,
    union_candidates,
)


@dataclass(frozen=True)
class DayCandidates:
    """The day's candidate lists (``trigger_id, path, rank, news_id, score`` rows) and their figures."""

    served: pd.DataFrame         # every path of UNION_PATHS, then the union: what the store holds
    candidates: pd.DataFrame     # served, then the random-queries baseline
    timings: dict[str, float]    # <path>_seconds per path of UNION_PATHS
    coverage: dict[str, int]     # triggers_<path>: triggers with candidates, per path, the union and the baseline


def day_candidates(day: str, news: pd.DataFrame, behaviors: BehaviorLog, train_pairs: pd.DataFrame,
                   news_vectors: EmbeddingTable, full_index: NewsIndex, encoder: SavedNewsEncoder,
                   queries: pd.DataFrame, rank: Callable[[list[str], list[str]], np.ndarray], window: LiveWindow, *,
                   k: int = 100, per_query: int = 10, keep: int = 30, union_k: int = 30, random_seed: int = 0,
                   vector_cache: str | Path | None = None) -> DayCandidates:
    """The candidates of every news of ``news`` on ``day``, among the news live on it (``window``):

    * ``coclick``: top ``k`` co-occurring news in the users' latest histories before ``day`` (``behaviors``)
      and the ``train_pairs``' clicks;
    * ``embedding``: top ``k`` nearest news vectors (``news_vectors``, ``full_index``);
    * ``qprime``: the generated ``queries``' (input_id, query) top ``per_query`` news each, united per trigger,
      ranked by ``rank(trigger_ids, news_ids)``, top ``keep`` (title vectors cached under ``vector_cache``);
    * ``union``: the round robin over those, top ``union_k``;
    * ``random_queries`` (not served): as many queries per Q' trigger, titles of random live news
      (``random_seed``), retrieved and ranked as Q'."""
    past = behaviors.before(day).histories
    latest = past.sort_values("time").drop_duplicates("user_id", keep="last")["history"]
    clicks = train_pairs[train_pairs["clicked"] == 1][["trigger_id", "candidate_id"]]
    triggers = news["news_id"].astype(str).tolist()
    live = window.day_news(day)
    timings = {}
    start = time.perf_counter()
    coclick = coclick_candidates(latest, clicks, triggers, k=k, catalogue=live)
    timings[f"{RecallPath.COCLICK}_seconds"] = time.perf_counter() - start
    index = live_index(full_index, live)
    start = time.perf_counter()
    embedding = embedding_candidates(index, news_vectors, triggers, k=k)
    timings[f"{RecallPath.EMBEDDING}_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    query_index = qprime_index(encoder, news, full_index, live, cache=vector_cache)
    qprime = qprime_candidates(queries, encoder, query_index, per_query=per_query, keep=keep, rank=rank)
    timings[f"{RecallPath.QPRIME}_seconds"] = time.perf_counter() - start
    baseline = qprime_candidates(random_queries(queries, news, live, random_seed), encoder, query_index,
                                 per_query=per_query, keep=keep, rank=rank, path=RecallPath.RANDOM_QUERIES)
    paths = pd.concat([coclick, embedding, qprime], ignore_index=True)
    served = pd.concat([paths, union_candidates(paths, k=union_k, order=UNION_PATHS)], ignore_index=True)
    candidates = pd.concat([served, baseline], ignore_index=True)
    coverage = {f"triggers_{p}": int(candidates.loc[candidates["path"] == p, "trigger_id"].nunique())
                for p in (*UNION_PATHS, RecallPath.UNION, RecallPath.RANDOM_QUERIES)}
    return DayCandidates(served, candidates, timings, coverage)
