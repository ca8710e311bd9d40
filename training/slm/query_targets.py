"""Training targets for the query generators without a large teacher model (pluggable sources).

* :func:`click_refined_targets` (``news`` task): a trigger's targets are the key phrases of the news
  clicked after it, most clicked first, post-filtered; with a retriever, only phrases whose live top 10 holds
  a news clicked after the trigger are kept (the paper's "Enhanced" filter: targets whose documents got clicks).
* :func:`timed_clicks`: the training window's clicks with their impression time, the input of the above.
* :func:`user_targets` (``user`` task): the key phrases of the news clicked in an impression, with the
  user's recent history titles as input.
* :func:`read_query_labels`: a TSV of labels written by a stronger model or by editors.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.columns import require_columns
from training.slm.prompts import MAX_QUERIES, filter_queries, format_target, news_row_prompt, user_prompt

STOPWORDS = frozenset("""
a an the and or but nor so yet of in on at to for from by with about as into onto over under after
before during than then this that these those it its it's is are was were be been being am do does did
has have had having will would can could should may might must shall i me my we our you your he him his
she her they them their who whom whose what which when where why how not no all any some more most
just very too also up down out off here there says said say new gets get got now
""".split())
#: Phrases removed before key-phrase extraction (clickbait framing, not content).
CLICKBAIT_PHRASES = (
    "you won't believe", "you wont believe", "what happened next", "will blow your mind", "you need to know",
    "here's why", "here is why", "this is why", "the reason why", "can't stop", "must see", "must-see",
    "jaw-dropping", "goes viral", "you have to see", "is everything", "watch:",
)
#: Single words dropped from key phrases.
CLICKBAIT_WORDS = frozenset("""
shocking amazing unbelievable incredible viral omg wow insane stunning epic hilarious heartbreaking
breaking exclusive watch video photos pics
""".split())
_WORD = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")


class QueryLabelError(ValueError):
    """A bad row in a query-label TSV; the message names the file, line and field."""


def key_phrase(title: str, max_words: int = 5) -> str:
    """Lowercased content words of ``title`` (stopwords, clickbait and punctuation removed), first
    ``max_words`` of them; ``""`` when nothing is left."""
    text = str(title or "").lower().replace("\u2019", "'")
    for phrase in CLICKBAIT_PHRASES:
        text = text.replace(phrase, " ")
    words = []
    for word in _WORD.findall(text):
        word = word.removesuffix("'s")
        if word and word not in STOPWORDS and word not in CLICKBAIT_WORDS:
            words.append(word)
    return " ".join(words[:max_words])


@dataclass(frozen=True)
class QueryTargets:
    """Targets per input plus what each filter removed.

    ``inputs``: (input_id, message) for every input that kept a target; ``targets``: (input_id, query,
    source_news_id), most clicked first within an input.
    """

    inputs: pd.DataFrame
    targets: pd.DataFrame
    n_inputs: int                     # distinct inputs seen
    n_candidates_before_filter: int   # key phrases derived (one per distinct clicked news)
    n_dropped_filter: int             # removed by filter_queries (length, language, duplicates)
    n_dropped_retrieval: int          # removed because their retrieved news hold no clicked follow-up
    n_inputs_without_target: int      # inputs dropped because no query was left
    n_unknown_news: int = 0           # clicked news ids missing from the news table

    def to_examples(self) -> pd.DataFrame:
        """One row per input: (input_id, message, queries: list[str], target: the formatted answer)."""
        if self.targets.empty:
            return pd.DataFrame({"input_id": [], "message": [], "queries": [], "target": []})
        grouped = self.targets.groupby("input_id", sort=False)["query"].agg(list).rename("queries")
        out = self.inputs.merge(grouped, left_on="input_id", right_index=True, how="inner")
        out["target"] = [format_target(q) for q in out["queries"]]
        return out.reset_index(drop=True)


def _ranked_phrases(clicked: pd.Series, titles: dict[str, str]) -> tuple[list[tuple[str, str]], int]:
    """Distinct clicked news ids, most clicked first (ties: first click first), as (phrase, news_id)
    pairs, and the number of ids missing from ``titles``."""
    counts = clicked.value_counts(sort=False)
    first = {nid: i for i, nid in reversed(list(enumerate(clicked)))}
    order = sorted(counts.index, key=lambda nid: (-counts[nid], first[nid]))
    known = [nid for nid in order if nid in titles]
    return [(key_phrase(titles[nid]), nid) for nid in known], len(order) - len(known)


def _filtered(phrases: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """``filter_queries`` over (phrase, source) pairs, keeping each survivor's source."""
    kept, n_filtered, n_duplicates = filter_queries([p for p, _ in phrases])
    source: dict[str, str] = {}
    for phrase, nid in phrases:
        source.setdefault(phrase, nid)
    return [(q, source[q]) for q in kept], n_filtered + n_duplicates


def _retrieval_kept(per_input: dict[str, list[tuple[str, str]]], followups: dict[str, set[str]],
                    retrieve: Callable[[list[str], list[str]], list[list[str]]]
                    ) -> tuple[dict[str, list[tuple[str, str]]], int]:
    """Keep a query only where its retrieved news (``retrieve(input_ids, queries)``, one call) hold a news
    clicked after its input (``followups``), the source of the phrase or another one."""
    flat = [(iid, q, src) for iid, pairs in per_input.items() for q, src in pairs]
    results = retrieve([iid for iid, _, _ in flat], [q for _, q, _ in flat]) if flat else []
    if len(results) != len(flat):
        raise ValueError(f"retrieve returned {len(results)} result lists for {len(flat)} queries")
    kept: dict[str, list[tuple[str, str]]] = {iid: [] for iid in per_input}
    dropped = 0
    for (iid, q, src), hits in zip(flat, results):
        if followups.get(iid, set()) & {str(h) for h in hits}:
            kept[iid].append((q, src))
        else:
            dropped += 1
    return kept, dropped


def followup_hits(targets: pd.DataFrame, click_pairs: pd.DataFrame,
                  retrieve: Callable[[list[str], list[str]], list[list[str]]]) -> np.ndarray:
    """Per target row (input_id, query): whether ``retrieve(input_ids, queries)`` holds a news clicked after
    its input in ``click_pairs`` (trigger_id, candidate_id): the "Enhanced" flag."""
    require_columns(targets, ("input_id", "query"), "targets")
    require_columns(click_pairs, ("trigger_id", "candidate_id"), "click_pairs")
    candidates = click_pairs["candidate_id"].astype(str)
    followups = {t: set(g) for t, g in candidates.groupby(click_pairs["trigger_id"].astype(str))}
    per_input: dict[str, list[tuple[str, str]]] = {}
    for row, (iid, query) in enumerate(zip(targets["input_id"].astype(str), targets["query"].astype(str))):
        per_input.setdefault(iid, []).append((query, str(row)))
    kept, _ = _retrieval_kept(per_input, followups, retrieve)
    rows = {int(r) for pairs in kept.values() for _, r in pairs}
    return np.array([i in rows for i in range(len(targets))], dtype=bool)


def _assemble(messages: dict[str, str], per_input: dict[str, list[tuple[str, str]]], max_queries: int,
              n_candidates: int, n_dropped_filter: int, n_dropped_retrieval: int,
              n_unknown: int) -> QueryTargets:
    rows = [(iid, q, src) for iid, pairs in per_input.items() for q, src in pairs[:max_queries]]
    with_target = [iid for iid in messages if per_input.get(iid)]
    return QueryTargets(
        inputs=pd.DataFrame({"input_id": with_target, "message": [messages[i] for i in with_target]}),
        targets=pd.DataFrame(rows, columns=["input_id", "query", "source_news_id"]),
        n_inputs=len(messages), n_candidates_before_filter=n_candidates, n_dropped_filter=n_dropped_filter,
        n_dropped_retrieval=n_dropped_retrieval, n_inputs_without_target=len(messages) - len(with_target),
        n_unknown_news=n_unknown)


def _build(messages: dict[str, str], clicked_by_input: dict[str, pd.Series], titles: dict[str, str],
           max_queries: int, retrieve: Callable[[list[str], list[str]], list[list[str]]] | None) -> QueryTargets:
    per_input: dict[str, list[tuple[str, str]]] = {}
    n_candidates = n_dropped_filter = n_unknown = 0
    for iid, clicked in clicked_by_input.items():
        phrases, unknown = _ranked_phrases(clicked, titles)
        n_unknown += unknown
        n_candidates += len(phrases)
        per_input[iid], dropped = _filtered(phrases)
        n_dropped_filter += dropped
    n_dropped_retrieval = 0
    if retrieve is not None:
        followups = {iid: set(map(str, clicked)) for iid, clicked in clicked_by_input.items()}
        per_input, n_dropped_retrieval = _retrieval_kept(per_input, followups, retrieve)
    return _assemble(messages, per_input, max_queries, n_candidates, n_dropped_filter, n_dropped_retrieval,
                     n_unknown)


def timed_clicks(pairs: pd.DataFrame, histories: pd.DataFrame, max_inputs: int = 0) -> pd.DataFrame:
    """The clicked pairs of ``pairs`` as (trigger_id, candidate_id, time), ``time`` their impression's
    (``histories``: impression_id, time): the click pairs of :func:`click_refined_targets` and its "Enhanced"
    filter. A pair without a time is dropped; ``max_inputs``: only the ``max_inputs`` most clicked triggers'
    pairs (0: all)."""
    require_columns(pairs, ("impression_id", "trigger_id", "candidate_id", "clicked"), "pairs")
    require_columns(histories, ("impression_id", "time"), "histories")
    clicks = pairs[pairs["clicked"] == 1]
    clicks = clicks.assign(time=clicks["impression_id"].map(histories.set_index("impression_id")["time"]))
    clicks = clicks[["trigger_id", "candidate_id", "time"]].dropna()
    if max_inputs:
        top = clicks["trigger_id"].value_counts().head(max_inputs).index
        clicks = clicks[clicks["trigger_id"].isin(top)]
    return clicks


def click_refined_targets(click_pairs: pd.DataFrame, news: pd.DataFrame, *, max_queries: int = MAX_QUERIES,
                          retrieve: Callable[[list[str], list[str]], list[list[str]]] | None = None) -> QueryTargets:
    """``news``-task targets from (trigger_id, candidate_id) click pairs (clicked candidates only; a
    repeated pair counts as several clicks). Input ids are trigger ids; messages are the trigger's
    :func:`~training.slm.prompts.news_row_prompt`. ``retrieve(input_ids, queries)``: the news each query
    retrieves for its input (e.g. its live top 10, ``training.retrieval.qprime.live_retriever``); with it,
    only the queries whose retrieved news hold a news clicked after the trigger are kept ("Enhanced")."""
    require_columns(click_pairs, ("trigger_id", "candidate_id"), "click_pairs")
    require_columns(news, ("news_id", "title"), "news")
    pairs = click_pairs[["trigger_id", "candidate_id"]].astype(str)
    pairs = pairs[pairs["trigger_id"] != pairs["candidate_id"]]
    table = news.drop_duplicates("news_id").set_index(news.drop_duplicates("news_id")["news_id"].astype(str))
    titles = table["title"].fillna("").astype(str).to_dict()
    messages: dict[str, str] = {}
    clicked_by_input: dict[str, pd.Series] = {}
    triggers = click_pairs["trigger_id"].astype(str).drop_duplicates()
    for trigger in triggers:
        if trigger not in titles or not titles[trigger].strip():
            continue
        messages[trigger] = news_row_prompt(table.loc[trigger].to_dict())
    for trigger, group in pairs.groupby("trigger_id", sort=False):
        if trigger in messages:
            clicked_by_input[trigger] = group["candidate_id"].reset_index(drop=True)
    targets = _build(messages, clicked_by_input, titles, max_queries, retrieve)
    n_untitled = int(triggers.size) - len(messages)
    if not n_untitled:
        return targets
    return QueryTargets(**{**targets.__dict__, "n_inputs": targets.n_inputs + n_untitled,
                           "n_inputs_without_target": targets.n_inputs_without_target + n_untitled})


def user_targets(histories: pd.DataFrame, clicks: pd.DataFrame, news: pd.DataFrame,
                 max_queries: int = MAX_QUERIES, *, max_history: int = 5, by: str = "impression",
                 retrieve: Callable[[list[str], list[str]], list[list[str]]] | None = None) -> QueryTargets:
    """``user``-task targets: the key phrases of the news clicked in an impression (``by="impression"``,
    input id = impression id) or by a user over all impressions (``by="user"``, input id = user id,
    history from the user's latest impression). ``histories``: HISTORIES_SCHEMA rows (impression_id,
    user_id, history oldest first, optional time); ``clicks``: impression rows (impression_id, news_id,
    optional label: only label 1 counts). Input message: :func:`user_prompt` of the last
    ``max_history`` history titles; impressions with an empty history are skipped."""
    if by not in ("impression", "user"):
        raise ValueError(f"by must be 'impression' or 'user', got {by!r}")
    require_columns(histories, ("impression_id", "user_id", "history"), "histories")
    require_columns(clicks, ("impression_id", "news_id"), "clicks")
    require_columns(news, ("news_id", "title"), "news")
    titles = news.drop_duplicates("news_id").set_index(news.drop_duplicates("news_id")["news_id"].astype(str))[
        "title"].fillna("").astype(str).to_dict()
    clicked = clicks if "label" not in clicks.columns else clicks[clicks["label"] == 1]
    hist = histories.sort_values("time", kind="stable") if "time" in histories.columns else histories
    key = "impression_id" if by == "impression" else "user_id"
    impression_key = dict(zip(hist["impression_id"], hist[key].astype(str)))
    latest_history = {str(k): list(h) for k, h in zip(hist[key], hist["history"])}   # later rows win
    messages: dict[str, str] = {}
    n_empty = 0
    for iid, history in latest_history.items():
        shown = [titles[n] for n in history if titles.get(n, "").strip()]
        if shown:
            messages[iid] = user_prompt(shown, max_items=max_history)
        else:
            n_empty += 1
    ids = clicked["impression_id"].map(impression_key)
    frame = pd.DataFrame({"input_id": ids, "news_id": clicked["news_id"].astype(str)}).dropna()
    clicked_by_input = {iid: g["news_id"].reset_index(drop=True)
                        for iid, g in frame.groupby("input_id", sort=False) if iid in messages}
    targets = _build(messages, clicked_by_input, titles, max_queries, retrieve)
    if not n_empty:
        return targets
    return QueryTargets(**{**targets.__dict__, "n_inputs": targets.n_inputs + n_empty,
                           "n_inputs_without_target": targets.n_inputs_without_target + n_empty})


LABEL_HEADER = ("input_id", "query")


def read_query_labels(path: str | Path) -> pd.DataFrame:
    """(input_id, query) rows from a TSV with the header ``input_id<TAB>query``, one row per query.

    Blank lines and lines starting with ``#`` are skipped; a wrong header, a wrong column count or an
    empty field raises :class:`QueryLabelError` naming the file, line number and field.
    """
    path = Path(path)
    rows: list[tuple[str, str]] = []
    header_seen = False
    with path.open(encoding="utf-8", newline="") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE))
            if not header_seen:
                if tuple(f.strip() for f in fields) != LABEL_HEADER:
                    raise QueryLabelError(f"{path}:{line_no}: field 'header': expected "
                                          f"'input_id<TAB>query', got {text[:80]!r}")
                header_seen = True
                continue
            if len(fields) != len(LABEL_HEADER):
                field = LABEL_HEADER[min(len(fields), len(LABEL_HEADER) - 1)] if len(fields) < 2 else "row"
                raise QueryLabelError(f"{path}:{line_no}: field {field!r}: expected 2 tab-separated columns "
                                      f"(input_id, query), got {len(fields)}")
            input_id, query = (" ".join(f.split()) for f in fields)
            for name, value in zip(LABEL_HEADER, (input_id, query)):
                if not value:
                    raise QueryLabelError(f"{path}:{line_no}: field {name!r}: empty")
            rows.append((input_id, query))
    if not header_seen:
        raise QueryLabelError(f"{path}:1: field 'header': missing header 'input_id<TAB>query'")
    return pd.DataFrame(rows, columns=list(LABEL_HEADER))
