"""``DemoReport``: what a demo dataset contains, how realistic it is, and the best achievable metrics.

Per day, ``ceiling`` scores every candidate by its true click probability (Bayes-optimal for
MIND's per-impression metrics) and ``popularity_oracle`` by the popularity + position part of
the true model only; a recommender is good when it closes the gap between the two.
``stats["quality"]`` summarises the news quality truth: how grades spread, how weakly they follow
the click propensity, and how often clicks land on low-grade (``<= 1``) or clickbait news.
With a realism feature on (:attr:`DemoConfig.realism`), ``stats["realism"]`` (:func:`realism_stats`) adds
the story, trigger and quality-evidence figures and ``model["trigger_model"]`` the trigger term; with all
off the report has exactly the keys it had before those features existed. With user signals on
(``user_signals.tsv``), ``stats["signals"]`` (:func:`signal_stats`) says how much they tell about the clicks
(the share of next-day clicks in the categories searched, against other users' searches) and
``model["signal_model"]`` how they were drawn.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from training.data.demo.config import DemoConfig
from training.metrics.mind import mind_metrics
from training.metrics.quality import pairwise_accuracy

CLICK_MODEL = ("p = sigmoid(intercept + interest_weight * affinity(user, news, day) "
               "+ popularity_weight * popularity(news, t) + appeal_weight * appeal(news) "
               "+ clickbait_weight * clickbait(news) - position_weight * log(1 + position))")
#: News with at least this clickbait propensity count as clickbait in the report.
CLICKBAIT_THRESHOLD = 0.5


@dataclass(frozen=True)
class DemoReport:
    """Mirror of ``demo_report.json``."""

    config: dict[str, Any]
    counts: dict[str, int]
    model: dict[str, Any]
    stats: dict[str, Any]
    overall: dict[str, dict[str, float]]
    days: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DemoReport:
        return cls(**json.loads(text))

    def day(self, day: str) -> dict[str, Any]:
        """The entry of one ``YYYY-MM-DD`` day."""
        for entry in self.days:
            if entry["day"] == day:
                return entry
        raise KeyError(f"no impressions on {day}; days are {[d['day'] for d in self.days]}")


def _distribution(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": round(float(v.mean()), 3), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
        "min": float(v.min()), "max": float(v.max()),
    }


def _history_stats(lengths: np.ndarray) -> dict[str, float]:
    return {**_distribution(lengths), "pct_empty": round(100.0 * float((lengths == 0).mean()), 3)}


def _metrics(impression_ids: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    metrics = mind_metrics(impression_ids, labels, scores).as_dict()
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties averaged."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on tie-averaged ranks)."""
    return float(np.corrcoef(_ranks(np.asarray(x)), _ranks(np.asarray(y)))[0, 1])


def _quality_stats(*, offsets: np.ndarray, labels: np.ndarray, probability: np.ndarray, candidate_news: np.ndarray,
                   grade: np.ndarray, clickbait: np.ndarray, propensity: np.ndarray, spam: np.ndarray,
                   duplicate: np.ndarray, marker: np.ndarray) -> dict[str, Any]:
    clicked = labels == 1
    low_click = clicked & (grade[candidate_news] <= 1)
    row_imp = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    bait_news = clickbait >= CLICKBAIT_THRESHOLD
    bait_rows = bait_news[candidate_news]

    def pct(mask: np.ndarray) -> float:
        return round(100.0 * float(np.mean(mask)), 3)

    return {
        "pct_news_per_grade": {str(g): pct(grade == g) for g in range(5)},
        "spearman_propensity_grade": round(spearman(propensity, grade), 4),
        "pct_clicks_grade_le1": pct(grade[candidate_news][clicked] <= 1),
        "pct_impressions_with_click_grade_le1":
            pct(np.bincount(row_imp, weights=low_click, minlength=offsets.size - 1) > 0),
        "clickbait": {
            "threshold": CLICKBAIT_THRESHOLD, "pct_news": pct(bait_news),
            "mean_probability": round(float(probability[bait_rows].mean()), 5) if bait_rows.any() else None,
            "mean_probability_other": round(float(probability[~bait_rows].mean()), 5) if (~bait_rows).any() else None,
            "mean_grade": round(float(grade[bait_news].mean()), 3) if bait_news.any() else None,
            "mean_grade_other": round(float(grade[~bait_news].mean()), 3) if (~bait_news).any() else None,
        },
        "pct_news_spam": pct(spam), "pct_news_near_duplicate": pct(duplicate), "pct_titles_with_marker": pct(marker),
    }


@dataclass(frozen=True)
class RealismArrays:
    """What :func:`realism_stats` reads: the logged candidates (CSR by impression) with each impression's
    trigger (news index or -1) and whether it is a session trigger, and per-news truth arrays."""

    offsets: np.ndarray            # (I + 1,)
    labels: np.ndarray             # (C,)
    candidate_news: np.ndarray     # (C,)
    trigger: np.ndarray            # (I,) news index or -1
    session: np.ndarray            # (I,) bool
    neighbourhood: np.ndarray      # (C,) bool: drawn as a story candidate
    news_story: np.ndarray | None  # (N,) story id or -1; None: stories off
    news_entity: np.ndarray        # (N,) entity index or -1
    news_publish_days: np.ndarray  # (N,) days from the window's start
    news_grade: np.ndarray         # (N,)
    news_spam: np.ndarray          # (N,) bool
    news_latent: np.ndarray        # (N,) grade latent
    news_visible: np.ndarray       # (N,) its visible part


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 3) if whole else None


def _trigger_stats(a: RealismArrays, impressions: np.ndarray) -> dict[str, Any]:
    """Clicks and candidates of ``impressions`` (bool per impression, all with a trigger) against their trigger."""
    row_imp = np.repeat(np.arange(a.offsets.size - 1), np.diff(a.offsets))
    rows = impressions[row_imp]
    cand, trig = a.candidate_news[rows], a.trigger[row_imp[rows]]
    labels = a.labels[rows]
    clicked = labels == 1
    same_story = np.zeros(cand.size, dtype=bool)
    if a.news_story is not None:
        same_story = (a.news_story[cand] == a.news_story[trig]) & (a.news_story[trig] >= 0)
    same_entity = (a.news_entity[cand] == a.news_entity[trig]) & (a.news_entity[trig] >= 0)
    lag = a.news_publish_days[cand] - a.news_publish_days[trig]

    def ctr(mask: np.ndarray) -> float | None:
        return round(float(labels[mask].mean()), 5) if mask.any() else None

    return {
        "impressions": int(impressions.sum()),
        "pct_clicks_on_trigger_story": _pct(float((clicked & same_story).sum()), float(clicked.sum())),
        "pct_clicks_on_trigger_entity": _pct(float((clicked & same_entity).sum()), float(clicked.sum())),
        "pct_candidates_in_trigger_story": _pct(float(same_story.sum()), float(cand.size)),
        "pct_candidates_from_neighbourhood": _pct(float(a.neighbourhood[rows].sum()), float(cand.size)),
        "ctr_trigger_story": ctr(same_story),
        "ctr_other": ctr(~same_story),
        "median_lag_days": round(float(np.median(lag)), 3) if lag.size else None,
    }


def _story_stats(story: np.ndarray) -> dict[str, Any]:
    n_stories = int(story.max(initial=-1)) + 1
    members = np.bincount(story[story >= 0], minlength=n_stories)
    return {
        "stories": n_stories,
        "pct_news_in_story": round(100.0 * float((story >= 0).mean()), 3),
        "pct_news_follow_ups": round(100.0 * float((members - 1).sum()) / story.size, 3),
        "mean_follow_ups": round(float((members - 1).mean()), 3) if n_stories else None,
    }


def hidden_variance_share(latent: np.ndarray, visible: np.ndarray) -> float:
    """Share of the latent's variance its visible part does not explain: ``1 - corr(latent, visible)^2``."""
    return float(1.0 - np.corrcoef(latent, visible)[0, 1] ** 2)


def perfect_text_judge_accuracy(grade: np.ndarray, visible: np.ndarray, spam: np.ndarray) -> float:
    """Pairwise accuracy, over all pairs of news of different grade, of a judge that scores a news by the
    visible part of its grade latent and puts (visibly off-topic) spam last; tied scores count 1/2."""
    score = np.where(spam, visible[~spam].min(initial=0.0) - 1.0, visible)
    return float(pairwise_accuracy(grade, score))


def realism_stats(a: RealismArrays) -> dict[str, Any]:
    """The figures of the realism features: stories, triggers (the impressions with a session trigger, and
    all with a trigger) and the quality evidence (hidden variance share over the graded news; perfect-text
    judge over the distinct candidate news)."""
    has_trigger = a.trigger >= 0
    stats: dict[str, Any] = {}
    if a.news_story is not None:
        stats["stories"] = _story_stats(a.news_story)
    in_story = None
    if a.news_story is not None and a.session.any():
        in_story = _pct(float((a.news_story[a.trigger[a.session]] >= 0).sum()), float(a.session.sum()))
    stats["triggers"] = {
        "pct_impressions_with_trigger": round(100.0 * float(has_trigger.mean()), 3),
        "pct_impressions_with_session_trigger": round(100.0 * float(a.session.mean()), 3),
        "pct_session_triggers_in_story": in_story,
        "session": _trigger_stats(a, a.session) if a.session.any() else None,
        "all": _trigger_stats(a, has_trigger) if has_trigger.any() else None,
    }
    graded = ~a.news_spam
    shown = np.unique(a.candidate_news)
    stats["quality_evidence"] = {
        "hidden_variance_share": round(hidden_variance_share(a.news_latent[graded], a.news_visible[graded]), 4),
        "perfect_text_judge_pairwise_accuracy": round(perfect_text_judge_accuracy(
            a.news_grade[shown], a.news_visible[shown], a.news_spam[shown]), 4),
    }
    return stats


@dataclass(frozen=True)
class SignalArrays:
    """What :func:`signal_stats` reads: one entry per signal (the generator's truth: category, subcategory,
    whether a search was drawn off-interest) and one per logged click."""

    user: np.ndarray           # (R,) user index
    time: np.ndarray           # (R,) seconds from the window's start
    day: np.ndarray            # (R,) day index
    search: np.ndarray         # (R,) bool: a search, else a follow
    category: np.ndarray       # (R,)
    subcategory: np.ndarray    # (R,)
    off_interest: np.ndarray   # (R,) bool
    words: np.ndarray          # (R,) words of the text
    click_user: np.ndarray     # (L,) one entry per logged click
    click_time: np.ndarray     # (L,) seconds from the window's start
    click_day: np.ndarray      # (L,)
    click_category: np.ndarray
    click_subcategory: np.ndarray
    n_users: int
    n_days: int
    n_categories: int
    n_subcategories: int


def _partner_cells(covered: np.ndarray, n_days: int) -> np.ndarray:
    """Per user-day cell (``user * n_days + day``; ``covered``: (cells, categories) searched) the cell of the next
    user (cyclically, by user index) who searched as many categories that day: a chance level that keeps how much
    a user searches, which goes with how much they click (both follow their activity). A cell without a partner
    keeps its own (its chance level is then its share itself: conservative)."""
    partner = np.arange(covered.shape[0])
    breadth = covered.sum(axis=1)
    day = partner % n_days
    searched = np.flatnonzero(breadth > 0)
    groups = np.lexsort((searched, breadth[searched], day[searched]))  # by day, breadth, then user
    cells = searched[groups]
    key = day[cells] * (covered.shape[1] + 1) + breadth[cells]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for lo, hi in zip(start, np.r_[start[1:], cells.size]):
        partner[cells[lo:hi]] = np.roll(cells[lo:hi], -1)
    return partner


def _followed(a: SignalArrays, click_user: np.ndarray) -> np.ndarray:
    """Per click, whether ``click_user`` followed the clicked subcategory by the click's time."""
    follows = ~a.search
    pair = a.user[follows] * a.n_subcategories + a.subcategory[follows]
    order = np.lexsort((a.time[follows], pair))
    pair, first = np.unique(pair[order], return_index=True)
    since = a.time[follows][order][first]
    wanted = click_user * a.n_subcategories + a.click_subcategory
    if pair.size == 0:
        return np.zeros(wanted.size, dtype=bool)
    at = np.minimum(np.searchsorted(pair, wanted), pair.size - 1)
    return (pair[at] == wanted) & (since[at] <= a.click_time)


def signal_stats(a: SignalArrays) -> dict[str, Any]:
    """How informative the signals are: the share of a user's next-day clicks whose category is among the
    categories the user searched that day (over the clicks on day d + 1 of users who searched on day d), the same
    with each user's searches replaced by those of another user who searched as many categories that day (the
    chance level, :func:`_partner_cells`), and the share of clicks on a topic the user followed by then (against
    the next user's follows)."""
    search = a.search
    cell = a.user[search] * a.n_days + a.day[search]
    covered = np.zeros((a.n_users * a.n_days, a.n_categories), dtype=bool)
    covered[cell, a.category[search]] = True
    searched = np.asarray(covered.any(axis=1))
    later = a.click_day >= 1
    prev = a.click_user[later] * a.n_days + a.click_day[later] - 1
    mine = searched[prev]
    prev, cat = prev[mine], a.click_category[later][mine]
    partner = _partner_cells(covered, a.n_days)
    user_days = a.n_users * a.n_days
    return {
        "searches": int(search.sum()),
        "follows": int((~search).sum()),
        "mean_searches_per_user_day": round(float(search.sum()) / user_days, 4) if user_days else None,
        "pct_user_days_with_search": _pct(float(searched.sum()), float(user_days)),
        "pct_searches_off_interest": _pct(float(a.off_interest[search].sum()), float(search.sum())),
        "mean_search_words": round(float(a.words[search].mean()), 3) if search.any() else None,
        "mean_follows_per_user": round(float((~search).sum()) / a.n_users, 3),
        "next_day_clicks_of_searchers": int(mine.sum()),
        "pct_next_day_clicks_of_searchers": _pct(float(mine.sum()), float(later.sum())),
        "pct_next_day_clicks_in_search_categories": _pct(float(covered[prev, cat].sum()), float(cat.size)),
        "pct_next_day_clicks_in_search_categories_shuffled_users":
            _pct(float(covered[partner[prev], cat].sum()), float(cat.size)),
        "pct_clicks_in_followed_topics": _pct(float(_followed(a, a.click_user).sum()), float(a.click_user.size)),
        "pct_clicks_in_followed_topics_shuffled_users":
            _pct(float(_followed(a, (a.click_user + 1) % a.n_users).sum()), float(a.click_user.size)),
    }


def build_report(
    *,
    config: DemoConfig,
    impression_day: np.ndarray,
    offsets: np.ndarray,
    labels: np.ndarray,
    probability: np.ndarray,
    popularity_probability: np.ndarray,
    candidate_categories: np.ndarray,
    history_lengths_per_user: np.ndarray,
    history_lengths_per_impression: np.ndarray,
    news_categories: list[str],
    n_older_news: int,
    n_users_with_impressions: int,
    intercept: float,
    candidate_news: np.ndarray,
    news_grade: np.ndarray,
    news_clickbait: np.ndarray,
    news_propensity: np.ndarray,
    news_spam: np.ndarray,
    news_duplicate: np.ndarray,
    news_marker: np.ndarray,
    quality_model: str,
    trigger_model: str | None = None,
    realism: dict[str, Any] | None = None,
    signal_model: str | None = None,
    signals: dict[str, Any] | None = None,
) -> DemoReport:
    """Counts, realism statistics and per-day ceilings of one generated dataset.

    ``impression_day`` (day index per impression) and ``offsets`` (CSR rows per impression) describe
    the logged impressions, ids ``1..n`` in order; ``candidate_news`` (index into the ``news_*`` arrays,
    one entry per news) and the other arrays have one entry per candidate row; ``quality_model`` describes
    how grades were drawn; ``trigger_model`` and ``realism`` (:func:`realism_stats`), ``signal_model`` and
    ``signals`` (:func:`signal_stats`) are added only when given.
    """
    n_imp = impression_day.size
    sizes = np.diff(offsets)
    row_imp = np.repeat(np.arange(n_imp), sizes)
    impression_ids = row_imp + 1
    clicks = np.bincount(row_imp, weights=labels, minlength=n_imp)
    counts = {
        "news": len(news_categories), "older_news": n_older_news, "users": config.n_users,
        "users_with_impressions": n_users_with_impressions, "impressions": int(n_imp),
        "candidates": int(sizes.sum()), "clicks": int(labels.sum()),
    }
    stats = {
        "history": _history_stats(history_lengths_per_impression),
        "history_per_user": _history_stats(history_lengths_per_user),
        "candidates_per_impression": _distribution(sizes),
        "clicks_per_impression": _distribution(clicks),
        "ctr": round(float(labels.mean()), 5),
        "mean_probability": round(float(probability.mean()), 5),
        "news_per_category": dict(sorted(Counter(news_categories).items(), key=lambda kv: (-kv[1], kv[0]))),
        "clicks_per_category": dict(sorted(Counter(candidate_categories[labels == 1].tolist()).items(),
                                           key=lambda kv: (-kv[1], kv[0]))),
        "quality": _quality_stats(offsets=offsets, labels=labels, probability=probability,
                                  candidate_news=candidate_news, grade=news_grade, clickbait=news_clickbait,
                                  propensity=news_propensity, spam=news_spam, duplicate=news_duplicate,
                                  marker=news_marker),
    }
    overall = {
        "ceiling": _metrics(impression_ids, labels, probability),
        "popularity_oracle": _metrics(impression_ids, labels, popularity_probability),
    }
    days = []
    for d, name in enumerate(config.days):
        rows = impression_day[row_imp] == d
        if not rows.any():
            continue
        days.append({
            "day": name,
            "n_impressions": int((impression_day == d).sum()),
            "ceiling": _metrics(impression_ids[rows], labels[rows], probability[rows]),
            "popularity_oracle": _metrics(impression_ids[rows], labels[rows], popularity_probability[rows]),
        })
    model = {"click_model": CLICK_MODEL, "quality_model": quality_model, "intercept": round(intercept, 6)}
    if trigger_model is not None:
        model["trigger_model"] = trigger_model
    if realism is not None:
        stats["realism"] = realism
    if signal_model is not None:
        model["signal_model"] = signal_model
    if signals is not None:
        stats["signals"] = signals
    return DemoReport(config.to_dict(), counts, model, stats, overall, days)
