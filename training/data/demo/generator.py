"""The demo dataset: MIND-format files drawn from a known generative model, deterministic by seed.

``generate_demo(out_dir, DemoConfig())`` writes ``news.tsv``, ``behaviors.tsv`` (exactly MIND's
layouts), ``user_profiles.tsv`` (optional: user_id, region, device), ``demo_report.json`` (see
:mod:`.report`) and ``click_probabilities.parquet``, one row per logged candidate: impression_id,
position (0-based), news_id, label, probability, popularity_probability, conditional_probability.

Generative model (times are seconds from ``start_day`` 00:00 UTC; day ``d`` is ``[d, d+1)`` days)
------------------------------------------------------------------------------------------------
News ``n``
    Published uniformly over ``[-history_days, n_days)`` days, so a constant stream. Category ~
    the taxonomy's shares; subcategory within it ~ Zipf-like weights ``1/(j+1)^0.7`` (listed order).
    Latents: ``appeal_n ~ N(0, 1)`` (quality) and a lifecycle ``pop_n(t) = exp(-age / tau_n)`` with
    ``tau_n ~ LogNormal(log 1.2 days, 0.35)``: fresh, then decaying over one to two days.
    With probability 0.45 the title names one entity of its category, with probability 0.2 a place.
    Text = templates filled with the subcategory's words (:mod:`.headlines`); ~5% empty abstracts.
    News published before ``start_day`` form the *older pool* that histories are drawn from.
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
    ``exp(interest_weight * affinity(u, n, -1) + appeal_weight * appeal_n)`` (Gumbel top-k),
    and listed oldest first.
Impressions
    ``impressions_per_day`` per day, user ~ activity, hour of day ~ a diurnal curve. Candidate count
    ~ LogNormal(log median_candidates, 0.55) clipped to ``[min_candidates, max_candidates]`` (and to
    the live news). Candidates are drawn without replacement from the *live* news (published before
    the impression's hour and at most ``max_news_age_days`` old) with weights ``0.1 + pop_n(t)``,
    then shown in random order. Candidate at 0-based position ``k`` is clicked with probability
    ``p = sigmoid(b0 + interest_weight * affinity + popularity_weight * pop_n(t)
    + appeal_weight * appeal_n - position_weight * log(1 + k))``.
    ``b0`` is solved by bisection so that the expected CTR of the *logged* data is ``target_ctr``.
At least one click per impression
    MIND logs only impressions with a click. Candidates are *not* redrawn: the label vector of each
    impression is sampled from independent ``Bernoulli(p_k)`` conditioned on at least one click,
    exactly (the first click position ``J`` is drawn from ``P(J=j) ∝ p_j prod_{i<j}(1-p_i)``, later
    candidates independently) -- the same law as redrawing the labels until one is a click. So a
    logged label's probability is ``p_k / P(any click)``, stored as ``conditional_probability``
    beside ``probability = p_k``. Within an impression both order candidates identically, so ranking
    by ``p`` is Bayes-optimal for MIND's per-impression metrics: the report's ``ceiling``.
    ``popularity_probability`` is the popularity + position part alone, with the affinity and appeal
    terms replaced by their mean over logged candidates: the report's ``popularity_oracle``.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from training.data.demo.config import DemoConfig
from training.data.demo.headlines import HeadlineWriter, entity_json
from training.data.demo.mind_files import mind_time, write_tsv
from training.data.demo.report import DemoReport, build_report
from training.data.demo.taxonomy import CATEGORIES, COMMON, DEVICES, REGIONS, Entity, subcategory_table
from training.data.schema import BEHAVIORS_TSV_COLUMNS, NEWS_TSV_COLUMNS, USER_PROFILE_TSV_COLUMNS

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
USER_PROFILES_FILE = "user_profiles.tsv"
CLICK_PROBABILITIES_FILE = "click_probabilities.parquet"
REPORT_FILE = "demo_report.json"

DAY = 86400.0
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

    def popularity(self, news: np.ndarray, t: np.ndarray) -> np.ndarray:
        age_days = np.maximum(t - self.publish[news], 0.0) / DAY
        return np.exp(-age_days / self.decay_days[news])


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
    names = ("news", "text", "users", "history", "impressions", "labels")
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
    return News(category, subcategory, publish, appeal, decay_days, entity, place)


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
    for lo in range(0, config.n_users, chunk):
        u = np.arange(lo, min(lo + chunk, config.n_users))
        logits = (config.interest_weight * users.affinity(u[:, None], pool[None, :], 0, news)
                  + config.appeal_weight * news.appeal[pool][None, :])
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
    for b in np.unique(bucket):
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
    content = config.interest_weight * affinity + config.appeal_weight * news.appeal[cand_news]
    popularity_part = config.popularity_weight * pop + position_term
    b0 = calibrate_intercept(content + popularity_part, offsets, config.target_ctr)
    p = 1.0 / (1.0 + np.exp(-(b0 + content + popularity_part)))
    p_pop = 1.0 / (1.0 + np.exp(-(b0 + content.mean() + popularity_part)))
    labels, p_any = sample_labels_with_click(p, offsets, label_rng)
    return Logged(user, time, offsets, cand_news, position, p, p_pop, p / p_any[cand_imp], labels, b0)


def _news_rows(config: DemoConfig, news: News, rng: np.random.Generator) -> list[tuple[str, ...]]:
    text_rng = random.Random(int(rng.integers(2**62)))
    writer = HeadlineWriter(text_rng)
    codes = text_rng.sample(range(36**5), config.n_news)
    empty_abstract = rng.random(config.n_news) < config.empty_abstract_rate
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rows = []
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
        rows.append((f"N{i + 1}", category.name, sub, title.text, abstract_text, url,
                     entity_json(title, text_rng), abstract_entities))
    return rows


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


def generate_demo(out_dir: str | Path, config: DemoConfig | None = None) -> DemoReport:
    """Write the demo dataset into ``out_dir`` (created if needed) and return its report."""
    config = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rngs = _spawn(config.seed)
    news = make_news(config, rngs["news"])
    users = make_users(config, rngs["users"])
    hist_offsets, hist_flat = make_histories(config, news, users, rngs["history"])
    logged = make_impressions(config, news, users, rngs["impressions"], rngs["labels"])

    write_tsv(out / NEWS_FILE, _news_rows(config, news, rngs["text"]), len(NEWS_TSV_COLUMNS))
    write_tsv(out / BEHAVIORS_FILE, _behavior_rows(config, logged, hist_offsets, hist_flat), len(BEHAVIORS_TSV_COLUMNS))
    if config.user_profiles:
        regions, devices = list(REGIONS), list(DEVICES)
        profiles = [(f"U{u + 1}", regions[users.region[u]], devices[users.device[u]]) for u in range(config.n_users)]
        write_tsv(out / USER_PROFILES_FILE, profiles, len(USER_PROFILE_TSV_COLUMNS))
    pq.write_table(_probability_table(logged), out / CLICK_PROBABILITIES_FILE)

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
    )
    (out / REPORT_FILE).write_text(report.to_json(), encoding="utf-8", newline="\n")
    return report
