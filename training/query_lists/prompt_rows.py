"""Per (user, day) prompt rows of the query-list task: what a user showed by the end of day t, and their
clicks on day t + 1 (the rewards' and the evaluation's targets).

Everything in a row's message happened before day t + 1 begins (UTC): the history listed with the user's
latest impression up to then, followed by the news they clicked in impressions up to then (MIND lists a fixed
pre-period history with every impression), and their searches and followed topics up to then.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from training.columns import require_columns
from training.data.schema import SIGNAL_KINDS, USER_SIGNALS_SCHEMA
from training.slm.prompts import MAX_SIGNALS, user_prompt

#: Columns of a user-signals frame (``training.data.schema.USER_SIGNALS_SCHEMA``; ``kind`` one of SIGNAL_KINDS).
SIGNAL_COLUMNS = tuple(USER_SIGNALS_SCHEMA.names)
#: Columns of :func:`user_day_rows`' frame.
ROW_COLUMNS = ("user_id", "day", "target_day", "message", "clicks", "read", "n_searches", "n_follows")
ONE_DAY = pd.Timedelta(days=1)


def utc_naive(times: pd.Series) -> pd.Series:
    """Times as naive UTC ``datetime64`` (aware ones converted to UTC; naive ones taken as UTC already)."""
    times = pd.to_datetime(times)
    return times.dt.tz_convert("UTC").dt.tz_localize(None) if times.dt.tz is not None else times


def _lists_by_user(frame: pd.DataFrame, value: str) -> dict[str, list[str]]:
    """user_id -> ``value`` in time order (frame already sorted by time)."""
    return {str(u): g.tolist() for u, g in frame.groupby("user_id", sort=False)[value]}


def _signals_before(signals: pd.DataFrame | None, cut: pd.Timestamp) -> tuple[dict[str, list[str]], ...]:
    """(searches, follows) per user, oldest first, of the signals strictly before ``cut``."""
    if signals is None or signals.empty:
        return {}, {}
    seen = signals[signals["_time"] < cut]
    return (_lists_by_user(seen[seen["kind"] == "search"], "text"),
            _lists_by_user(seen[seen["kind"] == "follow"], "text"))


def checked_signals(signals: pd.DataFrame) -> pd.DataFrame:
    """``signals`` (:data:`SIGNAL_COLUMNS`) sorted by time (stable), with a naive UTC ``_time`` column; unknown
    kinds raise."""
    require_columns(signals, SIGNAL_COLUMNS, "signals")
    unknown = sorted(set(signals["kind"].astype(str)) - set(SIGNAL_KINDS))
    if unknown:
        raise ValueError(f"signals has unknown kind(s) {unknown}; known kinds: {list(SIGNAL_KINDS)}")
    out = signals.assign(user_id=signals["user_id"].astype(str), text=signals["text"].fillna("").astype(str),
                         _time=utc_naive(signals["time"]))
    return out.sort_values("_time", kind="stable")


def user_day_rows(histories: pd.DataFrame, impressions: pd.DataFrame, news: pd.DataFrame,
                  target_days: Iterable[str], signals: pd.DataFrame | None = None, *, max_history: int = 5,
                  max_signals: int = MAX_SIGNALS) -> pd.DataFrame:
    """One row (:data:`ROW_COLUMNS`) per user with a click on a target day ``t + 1`` and something to show by the
    end of day ``t``: ``message`` (:func:`~training.slm.prompts.user_prompt` of the last ``max_history`` titles
    read and the last ``max_signals`` searches / follows), ``clicks`` (the distinct news clicked on ``t + 1``,
    first click first) and ``read`` (the news whose titles the message lists, oldest first). ``histories``:
    impression_id, user_id, time, history (oldest first); ``impressions``: impression_id, user_id, time, news_id,
    label; ``news``: news_id, title; ``signals``: optional :data:`SIGNAL_COLUMNS` rows. Days are UTC
    ``YYYY-MM-DD``; rows are sorted by target day, then user."""
    require_columns(histories, ("user_id", "time", "history"), "histories")
    require_columns(impressions, ("user_id", "time", "news_id", "label"), "impressions")
    require_columns(news, ("news_id", "title"), "news")
    titles = dict(zip(news["news_id"].astype(str), news["title"].fillna("").astype(str)))
    hist = histories.assign(user_id=histories["user_id"].astype(str), _time=utc_naive(histories["time"]))
    hist = hist.sort_values("_time", kind="stable")
    clicked = impressions[impressions["label"] == 1]
    clicked = clicked.assign(user_id=clicked["user_id"].astype(str), news_id=clicked["news_id"].astype(str),
                             _time=utc_naive(clicked["time"])).sort_values("_time", kind="stable")
    checked = checked_signals(signals) if signals is not None else None
    rows = []
    for target_day in sorted({str(pd.Timestamp(d).date()) for d in target_days}):
        cut = pd.Timestamp(target_day)
        targets = _lists_by_user(clicked[(clicked["_time"] >= cut) & (clicked["_time"] < cut + ONE_DAY)], "news_id")
        before = hist[hist["_time"] < cut].groupby("user_id", sort=False)["history"].last()
        clicks_before = _lists_by_user(clicked[clicked["_time"] < cut], "news_id")
        searches, follows = _signals_before(checked, cut)
        for user in sorted(targets):
            listed = before.get(user)
            read = [str(n) for n in (listed if listed is not None else [])] + clicks_before.get(user, [])
            distinct = list(dict.fromkeys(reversed(read)))[::-1]   # each news at its latest read, oldest first
            titled = [n for n in distinct if titles.get(n, "").strip()]
            shown = [titles[n] for n in titled]
            user_searches, user_follows = searches.get(user, []), follows.get(user, [])
            if not shown and not any(s.strip() for s in user_searches + user_follows):
                continue
            message = user_prompt(shown, max_items=max_history, searches=user_searches, follows=user_follows,
                                  max_signals=max_signals)
            rows.append((user, str((cut - ONE_DAY).date()), target_day, message, list(dict.fromkeys(targets[user])),
                         titled[-max_history:] if max_history > 0 else [], len(user_searches), len(user_follows)))
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS))
