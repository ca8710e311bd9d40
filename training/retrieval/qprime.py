"""Q' recall end to end (Bing "Explore Further", section 5): trigger article -> prompt -> generated search
queries -> query vectors from the news encoder -> top ``per_query`` news per query -> union -> ranked.

The pieces live in their own modules (``training.slm`` generates, ``training.retrieval`` indexes and
retrieves); this module composes them for the assets, the gate and the evaluation:

* :func:`trigger_messages` / :func:`user_messages`: the generation inputs of the ``news`` and ``user`` tasks;
* :func:`news_space`: the news vectors queries retrieve among, encoded as queries are (:data:`QUERY_SPACE`);
* :func:`query_retriever` / :func:`live_retriever`: query texts -> top-k news ids (over an index; over the
  news live at each of a trigger's impressions: the "Enhanced" target filter);
* :func:`qprime_candidates`: generated queries -> a candidates frame (path ``RecallPath.QPRIME``);
* :func:`random_queries`: the random-queries baseline at equal coverage;
* :func:`gate_slice`, :func:`heldout_recall`: the query generator's gate metric, recall of the news clicked next.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.embedding_table import EmbeddingTable
from training.prec.encode_cache import encode_news, query_vectors
from training.prec.news_encoder_store import SavedNewsEncoder
from training.retrieval.live_news import LiveWindow, live_index
from training.retrieval.news_index import IndexConfig, NewsIndex
from training.retrieval.recall_paths import RecallPath, query_candidates
from training.slm.prompts import PROMPT_WITH_ABSTRACT, news_row_prompt, user_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM
    from training.slm.query_generation import GenerationConfig, GenerationStats
    from training.slm.query_targets import QueryTargets

#: Columns of a generation input frame.
MESSAGE_COLUMNS = ("input_id", "message")


def trigger_messages(news: pd.DataFrame, trigger_ids: Sequence[str],
                     with_abstract: bool = PROMPT_WITH_ABSTRACT) -> pd.DataFrame:
    """The ``news`` task's input for each trigger: its title, category and (by default) abstract as a prompt."""
    table = news.drop_duplicates("news_id").set_index("news_id")
    missing = [t for t in trigger_ids if t not in table.index]
    if missing:
        raise KeyError(f"{len(missing)} trigger(s) are not in the news catalogue, e.g. {missing[:3]}")
    rows = table.loc[list(trigger_ids)].reset_index()
    messages = [news_row_prompt(row, with_abstract) for row in rows.to_dict("records")]
    return pd.DataFrame({"input_id": list(trigger_ids), "message": messages})


def user_messages(histories: pd.DataFrame, news: pd.DataFrame, max_items: int = 5) -> pd.DataFrame:
    """The ``user`` task's input for each impression: the titles of the user's most recent reads."""
    titles = news.set_index("news_id")["title"].astype(str).to_dict()
    messages = []
    for history in histories["history"]:
        known = [titles[n] for n in list(history) if n in titles]
        messages.append(user_prompt(known[-max_items:], max_items=max_items))
    return pd.DataFrame({"input_id": histories["impression_id"].astype(str).to_numpy(), "message": messages})


#: The vector space Q' retrieves in: ``title`` (news encoded from their title alone, exactly as a query is:
#: the same encoder, the title slot, the other views empty) or ``full`` (the news_embeddings vectors, title
#: and abstract, against title-only query vectors). Chosen on the development data (generator seed 7).
QUERY_SPACE = "title"
SPACES = ("title", "full")
#: The ``training.settings.cache_dir`` folder of Q''s title vectors, shared by every step that retrieves with Q'.
VECTOR_CACHE = "qprime_news_vectors"


def title_vectors(encoder: SavedNewsEncoder, news: pd.DataFrame, cache: str | Path | None = None) -> EmbeddingTable:
    """Vectors of ``news`` (news_id, title) from their title alone, through the query encoding path
    (:func:`training.prec.encode_cache.query_vectors`); with ``cache``, each distinct title is encoded once
    per encoder version (the news vector cache, keyed by content)."""
    ids = news["news_id"].astype(str).tolist()
    titles = news["title"].fillna("").astype(str).tolist()
    if cache is None:
        return EmbeddingTable(ids, query_vectors(encoder, titles, progress=False))
    as_query = pd.DataFrame({"news_id": ids, "title": titles, "abstract": "", "title_entities": ""})
    table, _ = encode_news(encoder, as_query, cache, progress=False)
    return table


def news_space(encoder: SavedNewsEncoder, news: pd.DataFrame, full: EmbeddingTable | NewsIndex,
               space: str = QUERY_SPACE, cache: str | Path | None = None) -> EmbeddingTable:
    """The news vectors Q' retrieves among (see :data:`QUERY_SPACE`); ``full`` holds the full vectors."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if space == "full":
        return full if isinstance(full, EmbeddingTable) else EmbeddingTable(list(full.ids), full.vectors)
    return title_vectors(encoder, news, cache)


def qprime_index(encoder: SavedNewsEncoder, news: pd.DataFrame, full: NewsIndex, live: set[str],
                 space: str = QUERY_SPACE, cache: str | Path | None = None) -> NewsIndex:
    """An exact index over the ``live`` news in Q''s vector space (``full``: the catalogue's full-vector index)."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if space == "full":
        return live_index(full, live)
    rows = news[news["news_id"].astype(str).isin(live)]
    if rows.empty:
        raise ValueError("no live news in the catalogue: is the partition day in the behaviour log?")
    table = title_vectors(encoder, rows, cache)
    return NewsIndex.build(table, IndexConfig(kind="flat", threads=full.config.threads),
                           f"{full.model_version}-title")


def query_retriever(encoder: SavedNewsEncoder, index: NewsIndex, k: int) -> Callable[[list[str]], list[list[str]]]:
    """``retrieve(query_texts) -> top-k news ids per query`` over ``index`` (cosine of news-encoder vectors)."""
    def retrieve(texts: list[str]) -> list[list[str]]:
        if not texts:
            return []
        ids, _ = index.search(query_vectors(encoder, texts, progress=False), k)
        return ids
    return retrieve


def live_retriever(encoder: SavedNewsEncoder, vectors: EmbeddingTable, window: LiveWindow,
                   times: dict[str, list[Any]], k: int = 10) -> Callable[[list[str], list[str]], list[list[str]]]:
    """``retrieve(input_ids, queries) -> news ids`` per query: the union, over the impressions of its input
    (``times[input_id]``: their times), of the query's top ``k`` among the news live at that impression (the
    "Enhanced" filter: a target query is kept when this holds a clicked follow-up of its trigger)."""
    ids = np.asarray(vectors.ids, dtype=object)
    matrix = np.asarray(vectors.vectors, dtype=np.float32)
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    first = pd.Index(ids.astype(str)).map(window.first_seen)

    def retrieve(input_ids: list[str], queries: list[str]) -> list[list[str]]:
        if len(input_ids) != len(queries):
            raise ValueError(f"{len(input_ids)} input ids for {len(queries)} queries")
        if not queries:
            return []
        q = query_vectors(encoder, queries, progress=False).astype(np.float32)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        out: list[list[str]] = [[] for _ in queries]
        rows_of: dict[str, list[int]] = {}
        for row, input_id in enumerate(input_ids):
            rows_of.setdefault(str(input_id), []).append(row)
        for input_id, rows in rows_of.items():
            scores = q[rows] @ matrix.T
            found: list[set[str]] = [set() for _ in rows]
            for when in times.get(input_id, []):
                when = pd.Timestamp(when)
                live = np.asarray((first <= when) & (first >= when - window.span), dtype=bool)
                if not live.any():
                    continue
                cols = np.flatnonzero(live)
                part = scores[:, cols]
                top = (np.argpartition(-part, k - 1, axis=1)[:, :k] if len(cols) > k    # a set: order is moot
                       else np.broadcast_to(np.arange(len(cols)), part.shape))
                for i in range(len(rows)):
                    found[i].update(ids[cols[top[i]]].tolist())
            for i, row in enumerate(rows):
                out[row] = sorted(found[i])
        return out
    return retrieve


def enhanced_targets(click_pairs: pd.DataFrame, news: pd.DataFrame, encoder: SavedNewsEncoder,
                     full: NewsIndex, window: LiveWindow, *, max_queries: int = 6, k: int = 10,
                     space: str = QUERY_SPACE, cache: str | Path | None = None) -> tuple[QueryTargets, np.ndarray]:
    """Click-derived targets of the window's triggers with the "Enhanced" flag: ``(QueryTargets of every
    target, refined flag per target row)``. A target query is refined when its top ``k`` among the news live
    at one of its trigger's impressions (``click_pairs``: trigger_id, candidate_id, time) holds a news
    clicked after the trigger."""
    from training.slm.query_targets import click_refined_targets, followup_hits

    missing = [c for c in ("trigger_id", "candidate_id", "time") if c not in click_pairs.columns]
    if missing:
        raise ValueError(f"click_pairs lacks column(s) {missing}")
    everything = click_refined_targets(click_pairs, news, max_queries=max_queries)
    if everything.targets.empty:
        return everything, np.zeros(0, dtype=bool)
    times = {t: sorted(set(g)) for t, g in click_pairs.groupby(click_pairs["trigger_id"].astype(str))["time"]}
    start, stop = click_pairs["time"].min() - window.span, click_pairs["time"].max()
    first = window.first_seen
    pool = set(first.index[((first >= start) & (first <= stop)).to_numpy()])
    rows = news[news["news_id"].astype(str).isin(pool)]
    vectors = news_space(encoder, rows, full, space, cache)
    if space == "full":
        keep = [i for i, n in enumerate(vectors.ids) if n in pool]
        vectors = EmbeddingTable([vectors.ids[i] for i in keep], vectors.vectors[keep])
    retrieve = live_retriever(encoder, vectors, window, times, k)
    return everything, followup_hits(everything.targets, click_pairs, retrieve)


def random_queries(queries: pd.DataFrame, news: pd.DataFrame, pool: set[str], seed: int = 0) -> pd.DataFrame:
    """The random-queries baseline at equal coverage: for each ``input_id`` of ``queries``, as many queries,
    each the title of a news drawn at random from ``pool`` (the live news; never the trigger itself)."""
    missing = [c for c in ("input_id", "query") if c not in queries.columns]
    if missing:
        raise ValueError(f"queries lacks column(s) {missing}")
    titles = news.drop_duplicates("news_id").set_index(news.drop_duplicates("news_id")["news_id"].astype(str))["title"]
    choices = np.array(sorted(n for n in pool if n in titles.index and str(titles[n]).strip()), dtype=object)
    if len(choices) < 2:
        raise ValueError(f"random_queries needs at least 2 titled news in the pool, got {len(choices)}")
    rng = np.random.default_rng(seed)
    rows = []
    for input_id, n in queries.groupby(queries["input_id"].astype(str), sort=True).size().items():
        allowed = choices[choices != input_id]
        picks = rng.choice(allowed, size=n, replace=n > len(allowed))
        rows += [(input_id, rank, " ".join(str(titles[p]).split())) for rank, p in enumerate(picks)]
    return pd.DataFrame(rows, columns=["input_id", "query_rank", "query"])


def qprime_candidates(queries: pd.DataFrame, encoder: SavedNewsEncoder, index: NewsIndex, *,
                      per_query: int = 10, keep: int = 30, exclude: dict[str, set[str]] | None = None,
                      rank: Callable[[list[str], list[str]], np.ndarray] | None = None,
                      path: str = RecallPath.QPRIME) -> pd.DataFrame:
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


def sft_data(query_targets: pd.DataFrame, news: pd.DataFrame, which: str) -> tuple[list[str], list[str]]:
    """(messages, target texts) per training trigger of ``query_targets`` (input_id, query, refined): its
    ``which`` targets (``refined``: the Enhanced ones; ``all``), in rank order, one query per line."""
    from training.slm.prompts import format_target

    if which not in ("refined", "all"):
        raise ValueError(f"targets must be 'refined' or 'all', got {which!r}")
    rows = query_targets[query_targets["refined"]] if which == "refined" else query_targets
    if rows.empty:
        raise ValueError(f"query_targets has no {which} targets to train on")
    grouped = rows.groupby("input_id", sort=False)["query"].apply(list)
    messages = trigger_messages(news, grouped.index.astype(str).tolist())
    return messages["message"].tolist(), [format_target(q) for q in grouped]


def generation_rates(stats: GenerationStats) -> dict[str, float]:
    """Malformed and empty shares, duplicates removed and speed of one ``generate_queries`` call."""
    n = max(stats.n_inputs, 1)
    return {"malformed_rate": stats.n_malformed / n, "empty_rate": stats.n_empty / n,
            "duplicate_queries": float(stats.n_duplicates_removed), "tokens_per_second": float(stats.tokens_per_second)}


def generator_recall(model: CausalLM, tokenizer: PreTrainedTokenizerBase, version: str, messages: pd.DataFrame,
                     targets: pd.DataFrame, encoder: SavedNewsEncoder, index: NewsIndex,
                     generation: GenerationConfig | None, per_query: int, window: LiveWindow | None,
                     cache: str | Path | None) -> tuple[dict[str, float], GenerationStats]:
    """Held-out recall@10/30 of one generator's Q' path (ranked by similarity; live at each click with a
    ``window``) and its generation rates, with the generation stats; generations cached under ``cache`` by
    ``version``."""
    from training.slm.query_generation import generate_queries

    queries, stats = generate_queries(model, tokenizer, messages, generation, cache, version, "news")
    candidates = qprime_candidates(queries, encoder, index, per_query=per_query, keep=30)
    metrics = heldout_recall(candidates, targets, window=window)
    metrics.update(generation_rates(stats))
    return metrics, stats


def gate_slice(targets: pd.DataFrame, n_triggers: int, seed: int) -> tuple[list[str], pd.DataFrame]:
    """(triggers, their targets): a seeded sample of ``n_triggers`` of the triggers of ``targets`` (all
    when 0 or fewer exist), e.g. the partition day's clicks from
    :func:`~training.retrieval.evaluation.fresh_targets`."""
    triggers = np.array(sorted(targets["trigger_id"].astype(str).unique()))
    if n_triggers and len(triggers) > n_triggers:
        triggers = np.sort(np.random.default_rng(seed).choice(triggers, n_triggers, replace=False))
    chosen = triggers.tolist()
    return chosen, targets[targets["trigger_id"].astype(str).isin(set(chosen))].reset_index(drop=True)


def heldout_recall(candidates: pd.DataFrame, targets: pd.DataFrame, ks: Sequence[int] = (10, 30),
                   window: LiveWindow | None = None) -> dict[str, float]:
    """``recall_at_<k>`` of ``candidates`` against ``targets`` restricted to the triggers that were asked;
    with a ``window``, only the candidates live at each target's ``time`` count."""
    from training.retrieval.evaluation import live_found

    if not len(targets):
        return {f"recall_at_{k}": float("nan") for k in ks}
    found = live_found(candidates, targets, tuple(ks), window)
    return {f"recall_at_{k}": float(found[k].mean()) for k in ks}
