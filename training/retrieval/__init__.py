"""Candidate retrieval: a faiss index over news vectors, recall paths and a versioned candidate store."""
from training.retrieval.candidate_store import CandidateStore
from training.retrieval.news_index import (
    IndexConfig,
    NewsIndex,
    RefreshStats,
    choose_kind,
    refresh_index,
)
from training.retrieval.recall_paths import (
    coclick_candidates,
    embedding_candidates,
    query_candidates,
    union_candidates,
)

__all__ = [
    "CandidateStore",
    "IndexConfig",
    "NewsIndex",
    "RefreshStats",
    "choose_kind",
    "coclick_candidates",
    "embedding_candidates",
    "query_candidates",
    "refresh_index",
    "union_candidates",
]
