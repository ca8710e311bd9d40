"""The demo dataset: MIND-format files drawn from a known generative model, deterministic by seed.

``generate_demo(out_dir, DemoConfig())`` writes ``news.tsv``, ``behaviors.tsv`` (exactly MIND's
layouts), ``user_profiles.tsv`` (optional: user_id, region, device), ``demo_report.json`` (see
:mod:`.report`), ``click_probabilities.parquet``, one row per logged candidate: impression_id,
position (0-based), news_id, label, probability, popularity_probability, conditional_probability,
and ``news_quality.parquet``, one row per news: news_id, quality (int8 grade 0-4), clickbait
(propensity in [0, 1]), spam (bool), duplicate_of (the copied news id, "" when none); read it with
:mod:`training.data.quality_truth`. Both parquet files are the generator's truth: only ceilings,
golden sets and the simulated judge read them, never a model.

Generative model (times are seconds from ``start_day`` 00:00 UTC; day ``d`` is ``[d, d+1)`` days)
------------------------------------------------------------------------------------------------
News ``n``
    Published uniformly over ``[-history_days, n_days)`` days, so a constant stream. Category ~
    the taxonomy's shares; subcategory within it ~ Zipf-like weights ``1/(j+1)^0.7`` (listed order).
    Latents: ``appeal_n ~ N(0, 1)`` (how engaging the story is) and a lifecycle
    ``pop_n(t) = exp(-age / tau_n)`` with ``tau_n ~ LogNormal(log 1.2 days, 0.35)``: fresh, then
    decaying over one to two days.
    With probability 0.45 the title names one entity of its category, with probability 0.2 a place.
    Text = templates filled with the subcategory's words (:mod:`.headlines`); ~5% empty abstracts.
    News published before ``start_day`` form the *older pool* that histories are drawn from.
News quality (drawn after the news above, from their own random streams ``quality`` and ``cues``)
    Clickbait propensity ``clickbait_n ~ Beta(0.5, 2)`` (mean 0.2; ~15% of news >= 0.5) raises the
    click logit (``clickbait_weight``) and lowers quality. Each news is, exclusively, *spam* with
    probability ``spam_rate`` (``clickbait_n ~ U(0.5, 1)``, no entity, and its title/abstract
    replaced by a spam phrase, e.g. "Win a free cruise...", or by a text of another category, redrawn
    until it names none of its labelled category's nouns), or a *near-duplicate* with probability
    ``duplicate_rate``: it copies the title of a uniformly drawn non-spam, non-duplicate news of its
    category published in the previous 2 days, with one word (outside the entity mentions) changed,
    and takes that news' subcategory, entity, place and clickbait (no earlier news: an original).
    A title gets a clickbait marker (a prefix such as "Shocking:", a suffix such as "- and what
    happened next" or "!", or a "7 reasons..."/"This one trick..." template) with probability
    ``0.05 + 0.8 * clickbait_n``; a near-duplicate keeps its source's marker, spam gets none.
    Grade: spam news get 0; the others are ranked by the latent
    ``q_n = 0.3 * appeal_n + sqrt(1 - 0.3^2) * eps_n - 2 * clickbait_n - 1 * is_duplicate_n``
    (``eps_n ~ N(0, 1)`` independent of everything else) and binned so that the grades 0..4 cover
    10/20/30/25/15 % of all news. Grade and click propensity
    ``appeal_weight * appeal_n + clickbait_weight * clickbait_n`` thus barely correlate (Spearman
    ~ -0.05 by default) while clickbait news are clicked about twice as often and graded ~1.4 lower.
Users ``u``
    Category interests ``theta_u = 0.9 * Dirichlet(3 * shares) + 0.1 * shares`` (a few main
    topics), subcategory preferences ``phi_u ~ Dirichlet(1)`` within each category, 0-3 favourite
    entities drawn from their interests, heavy-tailed activity ``LogNormal(0, 1)``. Interests drift:
    ``log theta`` takes one ``N(0, interest_drift^2)`` step per category per day (renormalised).
    Profile views (region, device) are drawn with logits nudged by interests (taxonomy tables).
Affinity
    ``affinity(u, n, d) = clip(log(K * theta_ud[c_n]) + 0.5 * log(S_c * phi_u[s_n]) + fav_un, -4, 3)``
    with K categories, S_c subcategories in ``c_n`` and ``fav_un = 1`` when the news names one of the
    user's favourite entities: 0 means "as interested as a uniform user".
History (fixed per user for the whole split, as in MIND)
    Length per user ~ LogNormal with ``history_median``/``history_mean`` (defaults 18 and 32, so
    p90 ~70), slightly correlated with activity (so per impression: median ~20, mean ~34, p90 ~80),
    capped at ``max_history``; ``empty_history_rate`` of users have none. Clicks are drawn without replacement from the older pool with weights
    ``exp(interest_weight * affinity(u, n, -1) + appeal_weight * appeal_n + clickbait_weight * clickbait_n)``
    (Gumbel top-k), and listed oldest first.
Impressions
    ``impressions_per_day`` per day, user ~ activity, hour of day ~ a diurnal curve. Candidate count
    ~ LogNormal(log median_candidates, 0.55) clipped to ``[min_candidates, max_candidates]`` (and to
    the live news). Candidates are drawn without replacement from the *live* news (published before
    the impression's hour and at most ``max_news_age_days`` old) with weights ``0.1 + pop_n(t)``,
    then shown in random order. Candidate at 0-based position ``k`` is clicked with probability
    ``p = sigmoid(b0 + interest_weight * affinity + popularity_weight * pop_n(t)
    + appeal_weight * appeal_n + clickbait_weight * clickbait_n - position_weight * log(1 + k))``.
    ``b0`` is solved by bisection so that the expected CTR of the *logged* data is ``target_ctr``.
At least one click per impression
    MIND logs only impressions with a click. Candidates are *not* redrawn: the label vector of each
    impression is sampled from independent ``Bernoulli(p_k)`` conditioned on at least one click,
    exactly (the first click position ``J`` is drawn from ``P(J=j) ∝ p_j prod_{i<j}(1-p_i)``, later
    candidates independently) -- the same law as redrawing the labels until one is a click. So a
    logged label's probability is ``p_k / P(any click)``, stored as ``conditional_probability``
    beside ``probability = p_k``. Within an impression both order candidates identically, so ranking
    by ``p`` is Bayes-optimal for MIND's per-impression metrics: the report's ``ceiling``.
    ``popularity_probability`` is the popularity + position part alone, with the affinity, appeal and
    clickbait terms replaced by their mean over logged candidates: the report's ``popularity_oracle``.
Pairs
    :func:`training.data.quality_truth.pair_quality` grades a (trigger, candidate) pair by the
    candidate's grade, minus 1 when its category differs from the trigger's, clipped to [0, 4].
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from training.data.demo.config import DemoConfig
from training.data.demo.headlines import HeadlineWriter, RenderedText, entity_json, near_duplicate
from training.data.demo.mind_files import mind_time, write_tsv
from training.data.demo.report import DemoReport, build_report
from training.data.demo.taxonomy import CATEGORIES, COMMON, DEVICES, REGIONS, Category, Entity, subcategory_table
from training.data.schema import BEHAVIORS_TSV_COLUMNS, NEWS_TSV_COLUMNS, USER_PROFILE_TSV_COLUMNS

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
USER_PROFILES_FILE = "user_profiles.tsv"
CLICK_PROBABILITIES_FILE = "click_probabilities.parquet"
NEWS_QUALITY_FILE = "news_quality.parquet"
REPORT_FILE = "demo_report.json"

DAY = 86400.0
#: Progress bars show when a sampling loop touches at least this many (row, news) pairs (not at demo size).
PROGRESS_MIN_WORK = 500_000_000
HOUR = 3600.0
#: Relative impression volume per hour of day (UTC): quiet nights, morning and evening peaks.
HOUR_WEIGHTS = np.array([0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.9, 1.4, 1.7, 1.6, 1.4, 1.3,
                         1.3, 1.2, 1.1, 1.1, 1.1, 1.2, 1.3, 1.4, 1.4, 1.2, 0.9, 0.6])
ENTITY_RATE, PLACE_RATE = 0.45, 0.2
DECAY_MEDIAN_DAYS, DECAY_SIGMA = 1.2, 0.35
INTEREST_CONCENTRATION, INTEREST_FLOOR = 3.0, 0.1
SUBCATEGORY_CONCENTRATION, SUBCATEGORY_AFFINITY = 1.0, 0.5
FAVOURITE_SLOTS, FAVOURITE_RATE, FAVOURITE_BONUS = 3, 0.5, 1.0
AFFINITY_RANGE = (-4.0, 3.0)
ACTIVITY_SIGMA, HISTORY_ACTIVITY_CORRELATION = 1.0, 0.1
CANDIDATE_SIGMA, CANDIDATE_FLOOR = 0.55, 0.1
PROFILE_NUDGE = 2.5
CLICKBAIT_BETA = (0.5, 2.0)
SPAM_CLICKBAIT = (0.5, 1.0)
MARKER_BASE, MARKER_SLOPE = 0.05, 0.8
DUPLICATE_WINDOW_DAYS = 2.0
QUALITY_APPEAL, CLICKBAIT_QUALITY_PENALTY, DUPLICATE_QUALITY_PENALTY = 0.3, 2.0, 1.0
#: Share of the news at grades 0..4 (spam news all count at grade 0).
GRADE_SHARES = (0.10, 0.20, 0.30, 0.25, 0.15)
SPAM_TRIES = 50
QUALITY_MODEL = (f"grade = 0 for spam, else the rank bin (shares {'/'.join(f'{100 * g:g}' for g in GRADE_SHARES)} % "
                 f"of all news) of {QUALITY_APPEAL:g} * appeal + {np.sqrt(1 - QUALITY_APPEAL**2):.3f} * noise "
                 f"- {CLICKBAIT_QUALITY_PENALTY:g} * clickbait - {DUPLICATE_QUALITY_PENALTY:g} * is_near_duplicate")

TAXONOMY = subcategory_table()
K = len(CATEGORIES)
SUB_CATEGORY = np.array([[c.name for c in CATEGORIES].index(cat) for cat, _ in TAXONOMY])
SUBS_PER_CATEGORY = np.bincount(SUB_CATEGORY, minlength=K)
#: Every entity once: places first, then the categories' entities (ids are distinct).
ALL_ENTITIES: tuple[Entity, ...] = COMMON.places + tuple(e for c in CATEGORIES for e in c.entities)
CATEGORY_ENTITY_START = np.cumsum([len(COMMON.places)] + [len(c.entities) for c in CATEGORIES])[:-1]
CATEGORY_ENTITY_COUNT = np.array([len(c.entities) for c in CATEGORIES])


@dataclass(frozen=True)
class News:
    """Per-news arrays (index ``i`` is news id ``N{i+1}``)."""

    category: np.ndarray     # index into CATEGORIES
    subcategory: np.ndarray  # index into TAXONOMY
    publish: np.ndarray      # seconds from start (negative: before the window)
    appeal: np.ndarray
    decay_days: np.ndarray
    entity: np.ndarray       # index into ALL_ENTITIES or -1
    place: np.ndarray        # index into ALL_ENTITIES or -1
    clickbait: np.ndarray    # in [0, 1]; zeros until make_quality

    def popularity(self, news: np.ndarray, t: np.ndarray) -> np.ndarray:
        age_days = np.maximum(t - self.publish[news], 0.0) / DAY
        return np.exp(-age_days / self.decay_days[news])


@dataclass(frozen=True)
class Quality:
    """Per-news quality truth (index ``i`` is news id ``N{i+1}``)."""

    grade: np.ndarray         # int8 in 0..4
    spam: np.ndarray          # bool: off-topic spam text, grade 0
    duplicate_of: np.ndarray  # index of the copied news or -1
    marker: np.ndarray        # bool: the title carries a clickbait marker


@dataclass(frozen=True)
class Users:
    """Per-user arrays (index ``u`` is user id ``U{u+1}``); ``interest[:, 0]`` is the pre-window one."""

    interest: np.ndarray      # (U, n_days + 1, K): category interests before the window, then per day
    sub_pref: np.ndarray      # (U, S): subcategory preference, sums to 1 within each category
    favourites: np.ndarray    # (U, FAVOURITE_SLOTS) index into ALL_ENTITIES or -1
    activity: np.ndarray      # (U,) relative impression rate
    region: np.ndarray        # (U,) index into REGIONS
    device: np.ndarray        # (U,) index into DEVICES

    def affinity(self, users: np.ndarray, news_idx: np.ndarray, step: np.ndarray | int, news: News) -> np.ndarray:
        """``affinity(u, n, d)`` of the module docstring, elementwise; ``step`` 0 = before the window, d+1 = day d."""
        cat, sub = news.category[news_idx], news.subcategory[news_idx]
        theta = self.interest[users, step, cat]
        phi = self.sub_pref[users, sub]
        ent = news.entity[news_idx]
        fav = ((self.favourites[users] == ent[..., None]) & (ent[..., None] >= 0)).any(-1)
        raw = np.log(K * theta) + SUBCATEGORY_AFFINITY * np.log(SUBS_PER_CATEGORY[cat] * phi) + FAVOURITE_BONUS * fav
        return np.clip(raw, *AFFINITY_RANGE)

    def affinity_grid(self, users: np.ndarray, news_idx: np.ndarray, step: int, news: News) -> np.ndarray:
        """``affinity(users[:, None], news_idx[None, :], step)``, shape (users, news), the same floats, faster:
        the log terms are taken once per (user, category) and (user, subcategory), then gathered."""
        cat, sub = news.category[news_idx], news.subcategory[news_idx]
        cat_term = np.log(K * self.interest[users, step])                                  # (U, K)
        sub_term = SUBCATEGORY_AFFINITY * np.log(SUBS_PER_CATEGORY[SUB_CATEGORY] * self.sub_pref[users])  # (U, S)
        raw = cat_term[:, cat] + sub_term[:, sub]
        ent = news.entity[news_idx]
        fav = np.zeros(raw.shape, dtype=bool)
        for slot in self.favourites[users].T:
            fav |= (slot[:, None] == ent[None, :]) & (ent >= 0)[None, :]
        raw += FAVOURITE_BONUS * fav
        return np.clip(raw, *AFFINITY_RANGE, out=raw)


@dataclass(frozen=True)
class Logged:
    """Logged impressions (sorted by time; impression id = index + 1) and their candidates, flat."""

    user: np.ndarray          # (I,)
    time: np.ndarray          # (I,) integer seconds from start
    offsets: np.ndarray       # (I + 1,) candidate rows of impression i: offsets[i]:offsets[i+1]
    news: np.ndarray          # (C,) candidate news index
    position: np.ndarray      # (C,) 0-based position in the impression
    probability: np.ndarray   # (C,) p
    popularity_probability: np.ndarray
    conditional_probability: np.ndarray
    label: np.ndarray         # (C,) int8
    intercept: float          # the calibrated b0

    @property
    def impression_of_row(self) -> np.ndarray:
        return np.repeat(np.arange(self.user.size), np.diff(self.offsets))


def _spawn(seed: int) -> dict[str, np.random.Generator]:
    names = ("news", "text", "users", "history", "impressions", "labels", "quality", "cues")
    return {n: np.random.default_rng(s) for n, s in zip(names, np.random.SeedSequence(seed).spawn(len(names)))}


def _category_shares() -> np.ndarray:
    shares = np.array([c.share for c in CATEGORIES])
    return shares / shares.sum()


def make_news(config: DemoConfig, rng: np.random.Generator) -> News:
    n = config.n_news
    publish = rng.uniform(-config.history_days * DAY, config.n_days * DAY, n)
    category = rng.choice(K, size=n, p=_category_shares())
    sub_weight = np.array([1.0 / (j + 1) ** 0.7 for c in CATEGORIES for j in range(len(c.subcategories))])
    subcategory = np.empty(n, dtype=np.int64)
    for k in range(K):
        rows = np.flatnonzero(category == k)
        options = np.flatnonzero(SUB_CATEGORY == k)
        subcategory[rows] = rng.choice(options, size=rows.size, p=sub_weight[options] / sub_weight[options].sum())
    appeal = rng.standard_normal(n)
    decay_days = np.exp(np.log(DECAY_MEDIAN_DAYS) + DECAY_SIGMA * rng.standard_normal(n))
    has_entity = rng.random(n) < ENTITY_RATE
    entity = CATEGORY_ENTITY_START[category] + (rng.random(n) * CATEGORY_ENTITY_COUNT[category]).astype(np.int64)
    entity = np.where(has_entity, entity, -1)
    place = np.where(rng.random(n) < PLACE_RATE, rng.integers(0, len(COMMON.places), n), -1)
    return News(category, subcategory, publish, appeal, decay_days, entity, place, np.zeros(n))


def _grades(latent: np.ndarray, spam: np.ndarray) -> np.ndarray:
    """Spam gets 0; the others are binned by the rank of ``latent`` so that the shares match GRADE_SHARES."""
    target = np.array(GRADE_SHARES) * latent.size
    target[0] = max(target[0] - spam.sum(), 0.0)
    graded = np.flatnonzero(~spam)
    cum = np.rint(np.cumsum(target) / target.sum() * graded.size)
    rank = np.empty(graded.size, dtype=np.int64)
    rank[np.argsort(latent[graded], kind="stable")] = np.arange(graded.size)
    grade = np.zeros(latent.size, dtype=np.int8)
    grade[graded] = np.searchsorted(cum, rank, side="right")
    return grade


def make_quality(config: DemoConfig, news: News, rng: np.random.Generator) -> tuple[News, Quality]:
    """Clickbait, spam, near-duplicates and grades (module docstring); duplicates take their source's
    subcategory, entity, place and clickbait, spam names no entity."""
    n = config.n_news
    clickbait = rng.beta(*CLICKBAIT_BETA, n)
    kind = rng.random(n)
    spam = kind < config.spam_rate
    wants_copy = (kind >= config.spam_rate) & (kind < config.spam_rate + config.duplicate_rate)
    clickbait = np.where(spam, rng.uniform(*SPAM_CLICKBAIT, n), clickbait)
    marker_u, source_u, noise = rng.random(n), rng.random(n), rng.standard_normal(n)

    duplicate_of = np.full(n, -1, dtype=np.int64)
    for k in range(K):
        pool = np.flatnonzero(~spam & ~wants_copy & (news.category == k))
        pool = pool[np.argsort(news.publish[pool], kind="stable")]
        rows = np.flatnonzero(wants_copy & (news.category == k))
        lo = np.searchsorted(news.publish[pool], news.publish[rows] - DUPLICATE_WINDOW_DAYS * DAY, side="left")
        hi = np.searchsorted(news.publish[pool], news.publish[rows], side="left")
        ok = hi > lo
        duplicate_of[rows[ok]] = pool[(lo + source_u[rows] * (hi - lo)).astype(np.int64)[ok]]
    dup = np.flatnonzero(duplicate_of >= 0)
    src = duplicate_of[dup]
    clickbait[dup] = clickbait[src]
    marker = ~spam & (marker_u < MARKER_BASE + MARKER_SLOPE * clickbait)
    marker[dup] = marker[src]

    subcategory, entity, place = news.subcategory.copy(), news.entity.copy(), news.place.copy()
    subcategory[dup], entity[dup], place[dup] = subcategory[src], entity[src], place[src]
    entity[spam], place[spam] = -1, -1
    latent = (QUALITY_APPEAL * news.appeal + np.sqrt(1 - QUALITY_APPEAL**2) * noise
              - CLICKBAIT_QUALITY_PENALTY * clickbait - DUPLICATE_QUALITY_PENALTY * (duplicate_of >= 0))
    news = replace(news, subcategory=subcategory, entity=entity, place=place, clickbait=clickbait)
    return news, Quality(_grades(latent, spam), spam, duplicate_of, marker)


def _categorical_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a (rows, options) probability matrix."""
    u = rng.random(probs.shape[0])[:, None]
    return np.minimum((np.cumsum(probs, axis=1) < u * probs.sum(axis=1, keepdims=True)).sum(axis=1), probs.shape[1] - 1)


def make_users(config: DemoConfig, rng: np.random.Generator) -> Users:
    n, shares = config.n_users, _category_shares()
    theta0 = (1 - INTEREST_FLOOR) * rng.dirichlet(INTEREST_CONCENTRATION * shares, size=n) + INTEREST_FLOOR * shares
    steps = rng.normal(0.0, config.interest_drift, size=(n, config.n_days, K))
    log_theta = np.log(theta0)[:, None, :] + np.concatenate([np.zeros((n, 1, K)), np.cumsum(steps, axis=1)], axis=1)
    interest = np.exp(log_theta)
    interest /= interest.sum(axis=2, keepdims=True)

    gamma = rng.gamma(SUBCATEGORY_CONCENTRATION, size=(n, len(TAXONOMY)))
    block_sum = np.zeros((n, K))
    np.add.at(block_sum.T, SUB_CATEGORY, gamma.T)
    sub_pref = gamma / block_sum[:, SUB_CATEGORY]

    fav_cat = np.stack([_categorical_rows(theta0, rng) for _ in range(FAVOURITE_SLOTS)], axis=1)
    fav = CATEGORY_ENTITY_START[fav_cat] + (rng.random(fav_cat.shape) * CATEGORY_ENTITY_COUNT[fav_cat]).astype(np.int64)
    favourites = np.where(rng.random(fav.shape) < FAVOURITE_RATE, fav, -1)

    activity = np.exp(ACTIVITY_SIGMA * rng.standard_normal(n))
    names = [c.name for c in CATEGORIES]

    def profile(table: dict[str, tuple[str, ...]]) -> np.ndarray:
        nudge = np.stack([theta0[:, [names.index(c) for c in cats]].sum(axis=1) for cats in table.values()], axis=1)
        weights = np.exp(PROFILE_NUDGE * nudge)
        return _categorical_rows(weights / weights.sum(axis=1, keepdims=True), rng)

    return Users(interest, sub_pref, favourites, activity, profile(REGIONS), profile(DEVICES))


def history_lengths(config: DemoConfig, users: Users, rng: np.random.Generator) -> np.ndarray:
    """Log-normal lengths (median/mean from the config), mildly tied to activity; some users empty."""
    mu = np.log(config.history_median)
    sigma = np.sqrt(2.0 * np.log(config.history_mean / config.history_median))
    z_activity = np.log(users.activity) / ACTIVITY_SIGMA
    rho = HISTORY_ACTIVITY_CORRELATION
    z = rho * z_activity + np.sqrt(1 - rho**2) * rng.standard_normal(z_activity.size)
    lengths = np.clip(np.rint(np.exp(mu + sigma * z)), 1, config.max_history).astype(np.int64)
    lengths[rng.random(lengths.size) < config.empty_history_rate] = 0
    return lengths


def make_histories(config: DemoConfig, news: News, users: Users, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """CSR histories (offsets, flat news indices), oldest first, drawn from the older pool."""
    pool = np.flatnonzero(news.publish < 0)
    pool = pool[np.argsort(news.publish[pool], kind="stable")]  # oldest first
    lengths = np.minimum(history_lengths(config, users, rng), pool.size)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.empty(offsets[-1], dtype=np.int64)
    chunk = max(1, 2_000_000 // max(pool.size, 1))
    for lo in tqdm(range(0, config.n_users, chunk), desc="histories", unit="chunk", mininterval=2.0,
                   disable=config.n_users * pool.size < PROGRESS_MIN_WORK):
        u = np.arange(lo, min(lo + chunk, config.n_users))
        logits = (config.interest_weight * users.affinity_grid(u, pool, 0, news)
                  + (config.appeal_weight * news.appeal[pool] + config.clickbait_weight * news.clickbait[pool])[None, :])
        keys = logits + rng.gumbel(size=logits.shape)
        top = max(int(lengths[u].max()), 1)
        best = np.argpartition(-keys, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
        for row, user in enumerate(u):
            chosen = np.sort(best[row, : lengths[user]])  # pool is sorted by time, so this is oldest first
            flat[offsets[user]:offsets[user + 1]] = pool[chosen]
    return offsets, flat


def _segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(values)])
    return csum[offsets[1:]] - csum[offsets[:-1]]


def _logged_ctr(logits: np.ndarray, offsets: np.ndarray) -> float:
    """Expected CTR once each impression is conditioned on at least one click."""
    p = 1.0 / (1.0 + np.exp(-logits))
    p_any = -np.expm1(_segment_sum(np.log1p(-p), offsets))
    return float((_segment_sum(p, offsets) / np.maximum(p_any, 1e-300)).sum() / p.size)


def calibrate_intercept(logits: np.ndarray, offsets: np.ndarray, target_ctr: float) -> float:
    """Bisection for b0 so that the logged (>= 1 click) expected CTR equals ``target_ctr``."""
    lo, hi = -20.0, 5.0
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _logged_ctr(logits + mid, offsets) < target_ctr else (lo, mid)
    return 0.5 * (lo + hi)


def sample_labels_with_click(p: np.ndarray, offsets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels ~ independent Bernoulli(p) conditioned on >= 1 click per impression; also P(any click)."""
    n_imp = offsets.size - 1
    sizes = np.diff(offsets)
    row_imp = np.repeat(np.arange(n_imp), sizes)
    log_miss = np.log1p(-p)
    csum = np.concatenate([[0.0], np.cumsum(log_miss)])
    before = csum[:-1] - csum[offsets[:-1]][row_imp]            # sum of log(1-p_i) over earlier candidates
    first = p * np.exp(before)                                  # P(first click is here)
    p_any = -np.expm1(csum[offsets[1:]] - csum[offsets[:-1]])
    cum_first = np.cumsum(first)
    start_mass = np.concatenate([[0.0], cum_first])[offsets[:-1]]
    u = start_mass + rng.random(n_imp) * p_any
    j = np.clip(np.searchsorted(cum_first, u, side="right"), offsets[:-1], offsets[1:] - 1)
    rank = np.arange(p.size) - offsets[:-1][row_imp]
    first_rank = (j - offsets[:-1])[row_imp]
    labels = (rng.random(p.size) < p) & (rank > first_rank)
    labels[j] = True
    return labels.astype(np.int8), p_any


def make_impressions(config: DemoConfig, news: News, users: Users, rng: np.random.Generator,
                     label_rng: np.random.Generator) -> Logged:
    per_day = config.impressions_per_day
    n_imp = per_day * config.n_days
    user = rng.choice(config.n_users, size=n_imp, p=users.activity / users.activity.sum())
    hour = rng.choice(24, size=n_imp, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    day = np.repeat(np.arange(config.n_days), per_day)
    time = (day * DAY + hour * HOUR + rng.integers(0, int(HOUR), n_imp)).astype(np.int64)
    order = np.lexsort((user, time))
    user, time, day = user[order], time[order], day[order]

    sizes = np.rint(np.exp(np.log(config.median_candidates) + CANDIDATE_SIGMA * rng.standard_normal(n_imp)))
    sizes = np.clip(sizes, config.min_candidates, config.max_candidates).astype(np.int64)
    bucket = time // int(HOUR)
    parts_news, parts_imp = [], []
    for b in tqdm(np.unique(bucket), desc="impressions", unit="hour", mininterval=2.0,
                  disable=n_imp * config.n_news < PROGRESS_MIN_WORK):
        imps = np.flatnonzero(bucket == b)
        t0 = b * HOUR
        live = np.flatnonzero((news.publish < t0) & (news.publish >= t0 + HOUR - config.max_news_age_days * DAY))
        if live.size < config.min_candidates:
            raise ValueError(
                f"only {live.size} news are live at hour {int(b)} of the window, fewer than min_candidates="
                f"{config.min_candidates}; raise n_news or max_news_age_days, or lower min_candidates"
            )
        k = np.minimum(sizes[imps], live.size)
        sizes[imps] = k
        weight = np.log(CANDIDATE_FLOOR + news.popularity(live, np.full(live.size, t0 + HOUR / 2)))
        keys = weight[None, :] + rng.gumbel(size=(imps.size, live.size))
        top = int(k.max())
        best = np.argpartition(-keys, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
        shown = np.where(np.arange(top)[None, :] < k[:, None], rng.random(best.shape), np.inf)
        best = np.take_along_axis(best, np.argsort(shown, axis=1), axis=1)  # random display order
        mask = np.arange(top)[None, :] < k[:, None]
        parts_news.append(live[best[mask]])
        parts_imp.append(np.repeat(imps, k))
    cand_news, cand_imp = np.concatenate(parts_news), np.concatenate(parts_imp)
    rows = np.argsort(cand_imp, kind="stable")
    cand_news, cand_imp = cand_news[rows], cand_imp[rows]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    position = np.arange(cand_news.size) - offsets[:-1][cand_imp]

    t = time[cand_imp].astype(np.float64)
    pop = news.popularity(cand_news, t)
    affinity = users.affinity(user[cand_imp], cand_news, day[cand_imp] + 1, news)
    position_term = -config.position_weight * np.log1p(position)
    content = (config.interest_weight * affinity + config.appeal_weight * news.appeal[cand_news]
               + config.clickbait_weight * news.clickbait[cand_news])
    popularity_part = config.popularity_weight * pop + position_term
    b0 = calibrate_intercept(content + popularity_part, offsets, config.target_ctr)
    p = 1.0 / (1.0 + np.exp(-(b0 + content + popularity_part)))
    p_pop = 1.0 / (1.0 + np.exp(-(b0 + content.mean() + popularity_part)))
    labels, p_any = sample_labels_with_click(p, offsets, label_rng)
    return Logged(user, time, offsets, cand_news, position, p, p_pop, p / p_any[cand_imp], labels, b0)


def _topic_pattern(category: Category) -> re.Pattern[str]:
    """Matches any noun of ``category`` (its own and its subcategories'), as a whole phrase."""
    nouns = set(category.nouns).union(*category.subcategories.values())
    alternatives = "|".join(map(re.escape, sorted(nouns, key=len, reverse=True)))  # longest phrase first
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def _spam_text(writer: HeadlineWriter, category: int) -> tuple[RenderedText, RenderedText]:
    """A spam phrase or another category's text, redrawn until it names no noun of ``category``."""
    topic = _topic_pattern(CATEGORIES[category])
    others = [k for k in range(K) if k != category]
    for _ in range(SPAM_TRIES):
        other = CATEGORIES[writer.rng.choice(others)]
        title, abstract = writer.spam(other, writer.rng.choice(list(other.subcategories)))
        if not topic.search(title.text) and not topic.search(abstract.text):
            return title, abstract
    raise RuntimeError(f"no off-topic spam text found for category {CATEGORIES[category].name!r}")


def _news_rows(config: DemoConfig, news: News, quality: Quality, rng: np.random.Generator,
               cue_rng: np.random.Generator) -> list[tuple[str, ...]]:
    text_rng = random.Random(int(rng.integers(2**62)))
    writer = HeadlineWriter(text_rng)
    codes = text_rng.sample(range(36**5), config.n_news)
    empty_abstract = rng.random(config.n_news) < config.empty_abstract_rate
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rows: list[list[str]] = []
    titles: list[RenderedText] = []
    for i in range(config.n_news):
        category = CATEGORIES[news.category[i]]
        _, sub = TAXONOMY[news.subcategory[i]]
        ent = ALL_ENTITIES[news.entity[i]] if news.entity[i] >= 0 else None
        place = ALL_ENTITIES[news.place[i]] if news.place[i] >= 0 else None
        title = writer.title(category, sub, ent, place)
        abstract = writer.abstract(category, sub, ent, place)
        abstract_text, abstract_entities = abstract.text, entity_json(abstract, text_rng)
        if empty_abstract[i]:
            abstract_text, abstract_entities = "", "[]"
        code = "".join(alphabet[(codes[i] // 36**k) % 36] for k in range(5))
        url = f"https://assets.newsforge.example/labs/mind/AA{code}.html"
        rows.append([f"N{i + 1}", category.name, sub, title.text, abstract_text, url,
                     entity_json(title, text_rng), abstract_entities])
        titles.append(title)

    # Quality cues, with their own stream: markers on originals, then copies of (marked) originals, then spam.
    cues = HeadlineWriter(random.Random(int(cue_rng.integers(2**62))))
    rewritten: dict[int, RenderedText] = {}
    for i in np.flatnonzero(quality.marker & (quality.duplicate_of < 0)).tolist():
        ent = ALL_ENTITIES[news.entity[i]] if news.entity[i] >= 0 else None
        rewritten[i] = cues.clickbait(titles[i], CATEGORIES[news.category[i]], TAXONOMY[news.subcategory[i]][1], ent)
    for i in np.flatnonzero(quality.duplicate_of >= 0).tolist():
        source = int(quality.duplicate_of[i])
        rewritten[i] = near_duplicate(rewritten.get(source, titles[source]), CATEGORIES[news.category[i]].adjectives, cues.rng)
    for i in np.flatnonzero(quality.spam).tolist():
        rewritten[i], abstract = _spam_text(cues, int(news.category[i]))
        if not empty_abstract[i]:
            rows[i][4], rows[i][7] = abstract.text, "[]"
    for i, title in sorted(rewritten.items()):
        rows[i][3], rows[i][6] = title.text, entity_json(title, cues.rng)
    return [tuple(r) for r in rows]


def _behavior_rows(config: DemoConfig, logged: Logged, hist_offsets: np.ndarray, hist_flat: np.ndarray) -> list[tuple[str, ...]]:
    news_ids = np.array([f"N{i + 1}" for i in range(config.n_news)], dtype=object)
    tokens = (news_ids[logged.news] + np.where(logged.label == 1, "-1", "-0")).tolist()
    history_text = [" ".join(news_ids[hist_flat[hist_offsets[u]:hist_offsets[u + 1]]]) for u in range(config.n_users)]
    start = config.start
    rows = []
    for i in range(logged.user.size):
        u = int(logged.user[i])
        moment = start + timedelta(seconds=int(logged.time[i]))
        rows.append((str(i + 1), f"U{u + 1}", mind_time(moment), history_text[u],
                     " ".join(tokens[logged.offsets[i]:logged.offsets[i + 1]])))
    return rows


def _probability_table(logged: Logged) -> pa.Table:
    return pa.table({
        "impression_id": pa.array(logged.impression_of_row + 1, pa.int64()),
        "position": pa.array(logged.position, pa.int32()),
        "news_id": pa.array([f"N{i + 1}" for i in logged.news.tolist()], pa.string()),
        "label": pa.array(logged.label, pa.int8()),
        "probability": pa.array(logged.probability, pa.float64()),
        "popularity_probability": pa.array(logged.popularity_probability, pa.float64()),
        "conditional_probability": pa.array(logged.conditional_probability, pa.float64()),
    })


def _quality_table(quality: Quality, news: News) -> pa.Table:
    ids = np.array([f"N{i + 1}" for i in range(quality.grade.size)], dtype=object)
    return pa.table({
        "news_id": pa.array(ids.tolist(), pa.string()),
        "quality": pa.array(quality.grade, pa.int8()),
        "clickbait": pa.array(news.clickbait, pa.float64()),
        "spam": pa.array(quality.spam, pa.bool_()),
        "duplicate_of": pa.array(np.where(quality.duplicate_of >= 0, ids[quality.duplicate_of], "").tolist(), pa.string()),
    })


def generate_demo(out_dir: str | Path, config: DemoConfig | None = None) -> DemoReport:
    """Write the demo dataset into ``out_dir`` (created if needed) and return its report."""
    config = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rngs = _spawn(config.seed)
    news, quality = make_quality(config, make_news(config, rngs["news"]), rngs["quality"])
    users = make_users(config, rngs["users"])
    hist_offsets, hist_flat = make_histories(config, news, users, rngs["history"])
    logged = make_impressions(config, news, users, rngs["impressions"], rngs["labels"])

    write_tsv(out / NEWS_FILE, _news_rows(config, news, quality, rngs["text"], rngs["cues"]), len(NEWS_TSV_COLUMNS))
    write_tsv(out / BEHAVIORS_FILE, _behavior_rows(config, logged, hist_offsets, hist_flat), len(BEHAVIORS_TSV_COLUMNS))
    if config.user_profiles:
        regions, devices = list(REGIONS), list(DEVICES)
        profiles = [(f"U{u + 1}", regions[users.region[u]], devices[users.device[u]]) for u in range(config.n_users)]
        write_tsv(out / USER_PROFILES_FILE, profiles, len(USER_PROFILE_TSV_COLUMNS))
    pq.write_table(_probability_table(logged), out / CLICK_PROBABILITIES_FILE)
    pq.write_table(_quality_table(quality, news), out / NEWS_QUALITY_FILE)

    report = build_report(
        config=config,
        impression_day=logged.time // int(DAY),
        offsets=logged.offsets,
        labels=logged.label,
        probability=logged.probability,
        popularity_probability=logged.popularity_probability,
        candidate_categories=np.array([c.name for c in CATEGORIES])[news.category[logged.news]],
        history_lengths_per_user=np.diff(hist_offsets),
        history_lengths_per_impression=np.diff(hist_offsets)[logged.user],
        news_categories=[CATEGORIES[c].name for c in news.category.tolist()],
        n_older_news=int((news.publish < 0).sum()),
        n_users_with_impressions=int(np.unique(logged.user).size),
        intercept=logged.intercept,
        candidate_news=logged.news,
        news_grade=quality.grade,
        news_clickbait=news.clickbait,
        news_propensity=config.appeal_weight * news.appeal + config.clickbait_weight * news.clickbait,
        news_spam=quality.spam,
        news_duplicate=quality.duplicate_of >= 0,
        news_marker=quality.marker,
        quality_model=QUALITY_MODEL,
    )
    (out / REPORT_FILE).write_text(report.to_json(), encoding="utf-8", newline="\n")
    return report
