"""Q' recall end to end (Bing "Explore Further", section 5): trigger article -> prompt -> generated search
queries -> query vectors from the news encoder -> top ``per_query`` news per query -> union -> ranked.

The pieces live in their own modules (``training.slm`` generates, ``training.retrieval`` indexes and
retrieves); this module composes them for the assets, the gate and the evaluation:

* :func:`trigger_messages` / :func:`user_messages`: the generation inputs of the ``news`` and ``user`` tasks;
* :func:`query_retriever`: query texts -> top-k news ids (the "Enhanced" target filter uses it);
* :func:`qprime_candidates`: generated queries -> a candidates frame (path ``qprime``);
* :func:`heldout_recall`: the query generator's gate metric, recall of the news clicked next.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from training.metrics.recall import recall_at_k
from training.prec.encode_cache import query_vectors
from training.prec.news_encoder_store import SavedNewsEncoder
from training.retrieval.news_index import NewsIndex
from training.retrieval.recall_paths import query_candidates
from training.slm.prompts import news_prompt, user_prompt

#: Columns of a generation input frame.
MESSAGE_COLUMNS = ("input_id", "message")


def trigger_messages(news: pd.DataFrame, trigger_ids: Sequence[str], with_abstract: bool = False) -> pd.DataFrame:
    """The ``news`` task's input for each trigger: its title and category (and abstract) as a prompt. The
    abstract is off by default: it triples the prompt, and on CPU training and generation time grow with it."""
    table = news.set_index("news_id")
    missing = [t for t in trigger_ids if t not in table.index]
    if missing:
        raise KeyError(f"{len(missing)} trigger(s) are not in the news catalogue, e.g. {missing[:3]}")
    rows = table.loc[list(trigger_ids)]
    messages = [news_prompt(str(t), str(a or "") if with_abstract else "", str(c or ""))
                for t, a, c in zip(rows["title"], rows["abstract"].fillna(""), rows["category"].fillna(""))]
    return pd.DataFrame({"input_id": list(trigger_ids), "message": messages})


def user_messages(histories: pd.DataFrame, news: pd.DataFrame, max_items: int = 5) -> pd.DataFrame:
    """The ``user`` task's input for each impression: the titles of the user's most recent reads."""
    titles = news.set_index("news_id")["title"].astype(str).to_dict()
    messages = []
    for history in histories["history"]:
        known = [titles[n] for n in list(history) if n in titles]
        messages.append(user_prompt(known[-max_items:], max_items=max_items))
    return pd.DataFrame({"input_id": histories["impression_id"].astype(str).to_numpy(), "message": messages})


def query_retriever(encoder: SavedNewsEncoder, index: NewsIndex, k: int) -> Callable[[list[str]], list[list[str]]]:
    """``retrieve(query_texts) -> top-k news ids per query`` over ``index`` (cosine of news-encoder vectors)."""
    def retrieve(texts: list[str]) -> list[list[str]]:
        if not texts:
            return []
        ids, _ = index.search(query_vectors(encoder, texts, progress=False), k)
        return ids
    return retrieve


def qprime_candidates(queries: pd.DataFrame, encoder: SavedNewsEncoder, index: NewsIndex, *,
                      per_query: int = 10, keep: int = 30, exclude: dict[str, set[str]] | None = None,
                      rank: Callable[[list[str], list[str]], np.ndarray] | None = None,
                      path: str = "qprime") -> pd.DataFrame:
    """Candidates of the generated ``queries`` (input_id = trigger id, query): each query's top ``per_query``
    news, their union per trigger without the trigger and ``exclude``, ranked by ``rank`` (the student's
    quality head) or else by similarity, the top ``keep`` kept."""
    columns = ["trigger_id", "path", "rank", "news_id", "score"]
    if queries.empty:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("trigger_id", "path", "news_id") else float)
                             for c in columns})
    frame = pd.DataFrame({"trigger_id": queries["input_id"].astype(str).to_numpy(),
                          "query": queries["query"].astype(str).to_numpy()})
    vectors = query_vectors(encoder, frame["query"].tolist(), progress=False)
    return query_candidates(index, frame, vectors, per_query=per_query, keep=keep, exclude=exclude, rank=rank,
                            path=path)


def clicked_next(pairs: pd.DataFrame) -> pd.DataFrame:
    """Recall targets: one row (trigger_id, news_id) per click that followed a trigger in ``pairs``."""
    clicked = pairs[pairs["clicked"] == 1]
    return pd.DataFrame({"trigger_id": clicked["trigger_id"].astype(str).to_numpy(),
                         "news_id": clicked["candidate_id"].astype(str).to_numpy()})


def heldout_recall(candidates: pd.DataFrame, targets: pd.DataFrame, ks: Sequence[int] = (10, 30)) -> dict[str, float]:
    """``recall_at_<k>`` of ``candidates`` against ``targets`` restricted to the triggers that were asked."""
    return {f"recall_at_{k}": float(recall_at_k(candidates, targets, k)) for k in ks}
