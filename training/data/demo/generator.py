"""The demo dataset: MIND-format files drawn from a known generative model, deterministic by seed.

``generate_demo(out_dir, DemoConfig())`` writes ``news.tsv``, ``behaviors.tsv`` (exactly MIND's
layouts), ``user_profiles.tsv`` (optional: user_id, region, device), ``demo_report.json`` (see
:mod:`.report`), ``click_probabilities.parquet``, one row per logged candidate: impression_id,
position (0-based), news_id, label, probability, popularity_probability, conditional_probability,
and ``news_quality.parquet``, one row per news: news_id, quality (int8 grade 0-4), clickbait
(propensity in [0, 1]), spam (bool), duplicate_of (the copied news id, "" when none); read it with
:mod:`training.data.quality_truth`; with stories on it also has ``story`` (int story id, -1 when
none), with visible quality ``source`` (outlet name), ``authority`` and ``thin`` (bool). Both parquet
files are the generator's truth: only ceilings, golden sets and the simulated judge read them, never a model.
With ``DemoConfig.user_signals`` it also writes ``user_signals.tsv`` (user_id, time, kind ``search`` or
``follow``, text; no header; docs/data.md), drawn from the stream ``signals`` only, so every other file keeps
its bytes (:mod:`.signals`).

Realism features (``DemoConfig.story_rate``, ``session_rate``, ``story_click_bonus``,
``story_candidate_share``, ``visible_quality``; all off by default, see docs/demo_data.md) are drawn
from their own random streams (``stories``, ``sessions``, ``story_candidates``, ``sources``, spawned
after the original eight), and only when on: with all off every file is byte-identical to the
generator before they existed. A paragraph or sentence below that names a feature's field applies only
when that feature is on.

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
Stories (``story_rate`` > 0; stream ``stories``; drawn once spam and would-be duplicates are known)
    ``round(story_rate * n_news)`` news become *follow-ups*. Leads are read in a random order from
    the news that are neither spam nor would-be near-duplicates; each gets ``1 + Poisson(2)``
    follow-ups published after it at cumulative ``Exponential(mean 0.6 day)`` gaps, and follow-ups
    falling after the window's end are dropped (a lead left with none is no story). Leads are taken
    until the follow-ups reach the target (the last story's latest ones cut); the follow-up rows are
    other such news, drawn at random and rewritten: each takes its lead's category, subcategory,
    entity (a lead without one is given a uniform entity of its category) and place, the follow-up's
    publish time, and ``appeal = 0.7 * appeal_lead + sqrt(1 - 0.7^2) * appeal_own``. Every story has
    a *keyword*, a uniform noun of its subcategory: every title of the story (clickbait rewrites
    included) has it as subject noun and names the entity (entity templates). Story ids follow the
    leads' publish times. Spam is never in a story; a near-duplicate never joins one (it is a copy,
    not a development) but keeps its source's subcategory, entity and place, so it is in the entity
    neighbourhood below.
Visible quality (``visible_quality``; stream ``sources``; replaces the grade latent above)
    Each news has a *source* among ``taxonomy.OUTLETS`` (16 invented outlets, authority 0.05-0.95,
    drawn by share; spam only from outlets below authority 0.25), shown by the URL's domain
    ``https://www.<domain>.example/<category>/AA<code>.html``. A non-spam news has a *thin body* when
    its abstract is empty (``empty_abstract_rate``) or, with probability
    ``0.03 + 0.35 * (1 - authority)``, is replaced by nothing (half of them) or one short sentence of
    ``headlines.THIN_ABSTRACTS``. The latent is ``visible + s * hidden`` with
    ``visible = 3 * authority - 1.5 * marker - 1.5 * thin - 1.5 * is_duplicate`` (marker: the title's
    clickbait marker), ``hidden = 0.3 * appeal + sqrt(1 - 0.3^2) * eps`` residualised on ``visible``
    over the non-spam news, and ``s`` such that ``hidden`` has exactly ``hidden_quality_share`` of
    the latent's variance there. Grades are binned as above (same shares, spam 0).
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
History (fixed per user for the whole split, as in MIND, except for session triggers)
    Length per user ~ LogNormal with ``history_median``/``history_mean`` (defaults 18 and 32, so
    p90 ~70), slightly correlated with activity (so per impression: median ~20, mean ~34, p90 ~80),
    capped at ``max_history``; ``empty_history_rate`` of users have none. Clicks are drawn without replacement
    from the older pool with weights
    ``exp(interest_weight * affinity(u, n, -1) + appeal_weight * appeal_n + clickbait_weight * clickbait_n)``
    (Gumbel top-k), and listed oldest first.
Triggers
    An impression's *trigger* is the last item of its history (the news its user read last, as
    :mod:`training.data.pairs` reads it): its session trigger when it has one, else the user's
    newest history item, else none. It is used only by the three features below.
Session triggers (``session_rate`` > 0; stream ``sessions``)
    With probability ``session_rate`` an impression's user read one more news just before it: a
    news live at the impression's second (published before it, at most ``max_news_age_days`` old),
    not in the user's history, drawn with weights ``exp(interest_weight * affinity(u, n, d) +
    popularity_weight * pop_n(t_h) + appeal_weight * appeal_n + clickbait_weight * clickbait_n)``
    (``t_h`` the middle of the impression's hour); with stories on, half of them (when one is live)
    among the live story articles only. It is appended to that impression's history only
    (behaviors.tsv lists it last) and is never one of its candidates.
Impressions
    ``impressions_per_day`` per day, user ~ activity, hour of day ~ a diurnal curve. Candidate count
    ~ LogNormal(log median_candidates, 0.55) clipped to ``[min_candidates, max_candidates]`` (and to
    the live news). Candidates are drawn without replacement from the *live* news (published before
    the impression's hour and at most ``max_news_age_days`` old) with weights ``0.1 + pop_n(t)``,
    then shown in random order.
    (Story candidates, ``story_candidate_share`` > 0; stream ``story_candidates``.) For an impression
    with a trigger, ``floor(story_candidate_share * k + U(0, 1))`` of its ``k`` candidates are drawn
    first from the trigger's *neighbourhood* among the live news: its story, then its entity, then
    its subcategory (tier by tier; within a tier with the weights above, without replacement); the
    rest are drawn as above among the other live news.
    Candidate at 0-based position ``k`` is clicked with probability
    ``p = sigmoid(b0 + interest_weight * affinity + popularity_weight * pop_n(t)
    + appeal_weight * appeal_n + clickbait_weight * clickbait_n - position_weight * log(1 + k))``.
    (Same-story bonus, ``story_click_bonus`` > 0.) The logit gains ``story_click_bonus`` for a
    candidate in the trigger's story and ``0.5 * story_click_bonus`` for one naming the trigger's
    entity outside it (a near-duplicate of a story article included).
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
    clickbait (and same-story bonus) terms replaced by their mean over logged candidates: the report's
    ``popularity_oracle``.
Realism report (any feature on)
    ``stats["realism"]`` of the report (:func:`.report.realism_stats`): story counts, the share of
    clicks and candidates in the trigger's story / entity / neighbourhood, the median publish lag of
    candidates after their trigger, the hidden share ``1 - corr(latent, visible)^2`` of the grade
    latent over the non-spam news and the perfect-text judge's pairwise accuracy (scores = the
    visible part, spam last). Without visible quality the visible part is taken as
    ``-2 * clickbait_n - 1 * is_duplicate_n`` (generous: only the marker shows the propensity).
User signals (``user_signals``; stream ``signals``, spawned last; nothing else reads it)
    Searches: per user ``u`` and day ``d``, ``Poisson(search_rate * activity_u)`` of them. Each is
    off-interest (noise) with probability ``signal_noise``: a uniform category, a uniform subcategory in
    it; else its category ~ that day's interests ``theta_u,d`` (the clicks' own, ``Users.interest[u, d + 1]``)
    and its subcategory ~ ``phi_u`` within it. Its text (2-8 words, :func:`.signals.query_text`) names a
    noun of the subcategory (the subject noun of its headlines) with the category's words; with
    probability 0.3 it also names an entity: one of the user's favourites in that category when
    on-interest and there is one, else a uniform entity of the category. Time: the day's hour ~ the
    diurnal curve above, uniform within it.
    Follows: at the window's start ``Poisson(follows_per_user)`` distinct subcategories per user, drawn
    without replacement with weights ``(1 - signal_noise) * theta_u0[c_s] * phi_u[s] + signal_noise / S``
    (S subcategories); then, per user-day with probability 0.02, one more not yet followed, with that
    day's interests; the text is the subcategory's name. ``stats["signals"]`` of the report
    (:func:`.report.signal_stats`) gives the share of a user's next-day clicks in the categories the user
    searched that day, against the searches of the next user who searched as many categories that day
    (chance level), and the share of searches off-interest.
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

from training.data.demo.clock import DAY, HOUR, HOUR_WEIGHTS
from training.data.demo.config import DemoConfig
from training.data.demo.draws import categorical_rows
from training.data.demo.headlines import THIN_ABSTRACTS, HeadlineWriter, RenderedText, entity_json, near_duplicate
from training.data.demo.mind_files import mind_time, write_tsv
from training.data.demo.report import (
    DemoReport,
    RealismArrays,
    SignalArrays,
    build_report,
    realism_stats,
    signal_stats,
)
from training.data.demo.signals import SIGNAL_MODEL, Signals, draw_signals, signal_rows
from training.data.demo.taxonomy import (
    CATEGORIES,
    COMMON,
    DEVICES,
    OUTLETS,
    REGIONS,
    Category,
)
from training.data.demo.taxonomy_index import (
    ALL_ENTITIES,
    CATEGORY_ENTITY_COUNT,
    CATEGORY_ENTITY_START,
    SUB_CATEGORY,
    SUB_NOUNS,
    SUBS_PER_CATEGORY,
    TAXONOMY,
    K,
)
from training.data.schema import (
    BEHAVIORS_TSV_COLUMNS,
    NEWS_TSV_COLUMNS,
    USER_PROFILE_TSV_COLUMNS,
    USER_SIGNAL_TSV_COLUMNS,
    USER_SIGNALS_TSV,
)

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
USER_PROFILES_FILE = "user_profiles.tsv"
CLICK_PROBABILITIES_FILE = "click_probabilities.parquet"
NEWS_QUALITY_FILE = "news_quality.parquet"
REPORT_FILE = "demo_report.json"

#: Progress bars show when a sampling loop touches at least this many (row, news) pairs (not at demo size).
PROGRESS_MIN_WORK = 500_000_000
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
#: Stories: follow-ups per lead ~ 1 + Poisson(STORY_FOLLOW_UPS), published after the lead with cumulative
#: Exponential(mean STORY_GAP_DAYS) gaps; a follow-up's appeal has correlation STORY_APPEAL_CORRELATION with its lead's.
STORY_FOLLOW_UPS, STORY_GAP_DAYS, STORY_APPEAL_CORRELATION = 2.0, 0.6, 0.7
#: With stories on, this share of session triggers is drawn among the live story articles only.
SESSION_STORY_SHARE = 0.5
#: Share of ``story_click_bonus`` given to a candidate naming the trigger's entity outside the trigger's story.
ENTITY_BONUS_SHARE = 0.5
#: Neighbourhood tiers of a trigger (story candidates are taken tier by tier): same story, entity, subcategory.
NEIGHBOURHOOD_TIER_GAP = 1e6
#: Visible quality: spam comes from outlets below SPAM_MAX_AUTHORITY; P(thin body) = THIN_BASE + THIN_SLOPE *
#: (1 - authority), and a drawn thin body is empty with probability THIN_EMPTY_SHARE, else a short sentence.
SPAM_MAX_AUTHORITY = 0.25
THIN_BASE, THIN_SLOPE, THIN_EMPTY_SHARE = 0.03, 0.35, 0.5
#: Weights of the visible evidence in the grade latent (visible-quality model).
VISIBLE_AUTHORITY, VISIBLE_MARKER, VISIBLE_THIN, VISIBLE_DUPLICATE = 3.0, 1.5, 1.5, 1.5
QUALITY_MODEL = (f"grade = 0 for spam, else the rank bin (shares {'/'.join(f'{100 * g:g}' for g in GRADE_SHARES)} % "
                 f"of all news) of {QUALITY_APPEAL:g} * appeal + {np.sqrt(1 - QUALITY_APPEAL**2):.3f} * noise "
                 f"- {CLICKBAIT_QUALITY_PENALTY:g} * clickbait - {DUPLICATE_QUALITY_PENALTY:g} * is_near_duplicate")
VISIBLE_QUALITY_MODEL = (
    f"grade = 0 for spam, else the rank bin (shares {'/'.join(f'{100 * g:g}' for g in GRADE_SHARES)} % of all news) of "
    f"visible + s * hidden, visible = {VISIBLE_AUTHORITY:g} * source_authority - {VISIBLE_MARKER:g} * clickbait_marker "
    f"- {VISIBLE_THIN:g} * thin_body - {VISIBLE_DUPLICATE:g} * is_near_duplicate, hidden = {QUALITY_APPEAL:g} * appeal "
    f"+ {np.sqrt(1 - QUALITY_APPEAL**2):.3f} * noise (residualised on visible), s such that hidden has a "
    f"hidden_quality_share of the variance")
TRIGGER_MODEL = ("trigger = the impression's newest history item (its session trigger when it has one); "
                 "+ story_click_bonus to the click logit of a candidate of the trigger's story, "
                 f"+ {ENTITY_BONUS_SHARE:g} * story_click_bonus for one naming the trigger's entity in another story "
                 "(or none)")

OUTLET_AUTHORITY = np.array([o.authority for o in OUTLETS])
OUTLET_SHARE = np.array([o.share for o in OUTLETS])


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
    story: np.ndarray | None = None  # story id or -1 (None: stories off)
    story_keyword: tuple[str, ...] = ()  # per story id: the subcategory noun every title of the story names

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
    latent: np.ndarray        # the grade latent (spam news excepted, grades are its rank bins)
    visible: np.ndarray       # its visible part (what a judge reading the text and source could know)
    evidence: Evidence | None = None  # source and thin body (None: visible quality off)


@dataclass(frozen=True)
class Evidence:
    """Visible quality evidence per news (visible-quality model)."""

    source: np.ndarray        # index into OUTLETS
    thin: np.ndarray          # bool: empty or one-short-sentence abstract (never set for spam)
    short_body: np.ndarray    # index into THIN_ABSTRACTS for a thin body written as a short sentence, else -1

    @property
    def authority(self) -> np.ndarray:
        return OUTLET_AUTHORITY[self.source]


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
    trigger: np.ndarray       # (I,) newest history item (the session trigger when there is one) or -1
    session: np.ndarray       # (I,) bool: the trigger is a session trigger, appended to this impression's history
    neighbourhood: np.ndarray  # (C,) bool: drawn as a story candidate from the trigger's neighbourhood

    @property
    def impression_of_row(self) -> np.ndarray:
        return np.repeat(np.arange(self.user.size), np.diff(self.offsets))


def _spawn(seed: int) -> dict[str, np.random.Generator]:
    # New streams go at the end: SeedSequence children depend on their index only, so earlier ones keep their seeds.
    names = ("news", "text", "users", "history", "impressions", "labels", "quality", "cues",
             "stories", "sessions", "story_candidates", "sources", "signals")
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


def _story_follow_up_times(news: News, leads: np.ndarray, end: float,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, 1 + Poisson follow-up times (lead time + cumulative exponential gaps), keeping those before
    ``end``: (flat times, count kept per lead), listed lead by lead, oldest first."""
    counts = 1 + rng.poisson(STORY_FOLLOW_UPS, leads.size)
    gaps = rng.exponential(STORY_GAP_DAYS * DAY, int(counts.sum()))
    first = np.repeat(np.cumsum(counts) - counts, counts)
    elapsed = np.cumsum(gaps)
    elapsed -= (elapsed - gaps)[first]  # cumulative gaps within each story
    times = news.publish[np.repeat(leads, counts)] + elapsed
    kept = times < end
    return times[kept], np.bincount(np.repeat(np.arange(leads.size), counts)[kept], minlength=leads.size)


def make_stories(config: DemoConfig, news: News, eligible: np.ndarray, rng: np.random.Generator) -> News:
    """Story leads and follow-ups among the ``eligible`` news (module docstring): follow-ups are rewritten
    to share their lead's category, subcategory, entity (a lead without one is given one of its category)
    and place, and are republished after it; sets ``story`` and ``story_keyword``."""
    target = int(round(config.story_rate * config.n_news))
    order = rng.permutation(np.flatnonzero(eligible))  # leads are read from the front, follow-up rows from the back
    times, kept = _story_follow_up_times(news, order, config.n_days * DAY, rng)
    scanned = int(np.searchsorted(np.cumsum(kept), target)) + 1 if target else 0
    if scanned + target > order.size:
        raise ValueError(f"story_rate={config.story_rate} needs more news than the {order.size} that may join a "
                         "story (not spam, not near-duplicates); lower story_rate, spam_rate or duplicate_rate")
    head, kept = order[:scanned], kept[:scanned]
    is_lead = np.flatnonzero(kept > 0)
    by_time = is_lead[np.argsort(news.publish[head[is_lead]], kind="stable")]
    leads = head[by_time]                           # story id = rank of the lead's publish time
    story_of_head = np.full(scanned, -1, dtype=np.int64)
    story_of_head[by_time] = np.arange(by_time.size)
    follow_story = np.repeat(story_of_head, kept)[:target]  # the last lead's latest follow-ups may be cut
    follow_time = times[:target]
    rows = order[order.size - target:]

    category, subcategory, entity, place = (a.copy()
                                            for a in (news.category, news.subcategory, news.entity, news.place))
    publish, appeal = news.publish.copy(), news.appeal.copy()
    cat = category[leads]
    forced = CATEGORY_ENTITY_START[cat] + (rng.random(leads.size) * CATEGORY_ENTITY_COUNT[cat]).astype(np.int64)
    entity[leads] = np.where(entity[leads] >= 0, entity[leads], forced)
    lead_of = leads[follow_story]
    for column in (category, subcategory, entity, place):
        column[rows] = column[lead_of]
    publish[rows] = follow_time
    rho = STORY_APPEAL_CORRELATION
    appeal[rows] = rho * appeal[lead_of] + np.sqrt(1 - rho**2) * appeal[rows]
    story = np.full(config.n_news, -1, dtype=np.int64)
    story[leads], story[rows] = np.arange(leads.size), follow_story
    nouns = [SUB_NOUNS[s] for s in subcategory[leads].tolist()]
    pick = (rng.random(leads.size) * np.array([len(n) for n in nouns])).astype(np.int64)
    keywords = tuple(n[i] for n, i in zip(nouns, pick.tolist()))
    return replace(news, category=category, subcategory=subcategory, publish=publish, appeal=appeal, entity=entity,
                   place=place, story=story, story_keyword=keywords)


def make_evidence(config: DemoConfig, spam: np.ndarray, empty_abstract: np.ndarray,
                  rng: np.random.Generator) -> Evidence:
    """Sources (spam from content farms) and thin bodies, likelier at low authority; an empty abstract is thin."""
    n = config.n_news
    source = rng.choice(len(OUTLETS), size=n, p=OUTLET_SHARE / OUTLET_SHARE.sum())
    farms = np.flatnonzero(OUTLET_AUTHORITY < SPAM_MAX_AUTHORITY)
    spam_source = rng.choice(farms, size=n, p=OUTLET_SHARE[farms] / OUTLET_SHARE[farms].sum())
    source = np.where(spam, spam_source, source)
    drawn = rng.random(n) < THIN_BASE + THIN_SLOPE * (1 - OUTLET_AUTHORITY[source])
    sentence = np.where(rng.random(n) < THIN_EMPTY_SHARE, -1, rng.integers(0, len(THIN_ABSTRACTS), n))
    thin = ~spam & (drawn | empty_abstract)
    short_body = np.where(~spam & drawn & ~empty_abstract, sentence, -1)
    return Evidence(source, thin, short_body)


def _visible_latent(config: DemoConfig, appeal: np.ndarray, noise: np.ndarray, marker: np.ndarray,
                    duplicate: np.ndarray, spam: np.ndarray, evidence: Evidence) -> tuple[np.ndarray, np.ndarray]:
    """(latent, visible part) of the visible-quality model: the hidden part is residualised on the visible
    one over the graded news and scaled to ``hidden_quality_share`` of the latent's variance."""
    visible = (VISIBLE_AUTHORITY * evidence.authority - VISIBLE_MARKER * marker - VISIBLE_THIN * evidence.thin
               - VISIBLE_DUPLICATE * duplicate)
    hidden = QUALITY_APPEAL * appeal + np.sqrt(1 - QUALITY_APPEAL**2) * noise
    graded = ~spam
    v, h = visible[graded] - visible[graded].mean(), hidden[graded] - hidden[graded].mean()
    hidden = hidden - hidden[graded].mean() - (v @ h) / (v @ v) * (visible - visible[graded].mean())
    share = config.hidden_quality_share
    scale = np.sqrt(share / (1 - share) * visible[graded].var() / hidden[graded].var())
    return visible + scale * hidden, visible


def make_quality(config: DemoConfig, news: News, rng: np.random.Generator, *,
                 story_rng: np.random.Generator | None = None, source_rng: np.random.Generator | None = None,
                 empty_abstract: np.ndarray | None = None) -> tuple[News, Quality]:
    """Clickbait, spam, near-duplicates and grades (module docstring); duplicates take their source's
    subcategory, entity, place and clickbait, spam names no entity. With ``story_rate`` > 0 the stories are
    drawn (``story_rng``) once spam and duplicates are known; with ``visible_quality`` the sources and thin
    bodies are (``source_rng``; ``empty_abstract`` are the text's empty abstracts, thin too)."""
    n = config.n_news
    clickbait = rng.beta(*CLICKBAIT_BETA, n)
    kind = rng.random(n)
    spam = kind < config.spam_rate
    wants_copy = (kind >= config.spam_rate) & (kind < config.spam_rate + config.duplicate_rate)
    clickbait = np.where(spam, rng.uniform(*SPAM_CLICKBAIT, n), clickbait)
    marker_u, source_u, noise = rng.random(n), rng.random(n), rng.standard_normal(n)
    if config.story_rate > 0:
        news = make_stories(config, news, ~spam & ~wants_copy, _needed(story_rng, "story_rng", "story_rate > 0"))

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
    evidence = None
    if config.visible_quality:
        if empty_abstract is None:
            raise ValueError("make_quality: visible_quality needs empty_abstract (the text's empty-abstract draws)")
        evidence = make_evidence(config, spam, empty_abstract, _needed(source_rng, "source_rng", "visible_quality"))
        latent, visible = _visible_latent(config, news.appeal, noise, marker, duplicate_of >= 0, spam, evidence)
    else:
        latent = (QUALITY_APPEAL * news.appeal + np.sqrt(1 - QUALITY_APPEAL**2) * noise
                  - CLICKBAIT_QUALITY_PENALTY * clickbait - DUPLICATE_QUALITY_PENALTY * (duplicate_of >= 0))
        visible = -CLICKBAIT_QUALITY_PENALTY * clickbait - DUPLICATE_QUALITY_PENALTY * (duplicate_of >= 0)
    news = replace(news, subcategory=subcategory, entity=entity, place=place, clickbait=clickbait)
    return news, Quality(_grades(latent, spam), spam, duplicate_of, marker, latent, visible, evidence)


def _needed(rng: np.random.Generator | None, name: str, feature: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"make_quality: {feature} needs {name}")
    return rng


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

    fav_cat = np.stack([categorical_rows(theta0, rng) for _ in range(FAVOURITE_SLOTS)], axis=1)
    fav = CATEGORY_ENTITY_START[fav_cat] + (rng.random(fav_cat.shape) * CATEGORY_ENTITY_COUNT[fav_cat]).astype(np.int64)
    favourites = np.where(rng.random(fav.shape) < FAVOURITE_RATE, fav, -1)

    activity = np.exp(ACTIVITY_SIGMA * rng.standard_normal(n))
    names = [c.name for c in CATEGORIES]

    def profile(table: dict[str, tuple[str, ...]]) -> np.ndarray:
        nudge = np.stack([theta0[:, [names.index(c) for c in cats]].sum(axis=1) for cats in table.values()], axis=1)
        weights = np.exp(PROFILE_NUDGE * nudge)
        return categorical_rows(weights / weights.sum(axis=1, keepdims=True), rng)

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


def make_histories(config: DemoConfig, news: News, users: Users,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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
                  + (config.appeal_weight * news.appeal[pool]
                     + config.clickbait_weight * news.clickbait[pool])[None, :])
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


def sample_labels_with_click(p: np.ndarray, offsets: np.ndarray,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
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


def _impression_slots(config: DemoConfig, users: Users, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user, time, day, candidate count) per impression, sorted by time then user."""
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
    return user, time, day, sizes


def _history_items(hist_offsets: np.ndarray, hist_flat: np.ndarray, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, news) for every history item of ``users[row]``."""
    lengths = np.diff(hist_offsets)[users]
    row = np.repeat(np.arange(users.size), lengths)
    within = np.arange(row.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return row, hist_flat[hist_offsets[users][row] + within]


def _columns(live: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Position of each of ``items`` in the sorted ``live``, -1 when absent."""
    if live.size == 0:
        return np.full(items.shape, -1, dtype=np.int64)
    col = np.minimum(np.searchsorted(live, items), live.size - 1)
    return np.where((items >= 0) & (live[col] == items), col, -1)


def draw_session_triggers(config: DemoConfig, news: News, users: Users, user: np.ndarray, time: np.ndarray,
                          hist_offsets: np.ndarray, hist_flat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per impression, the session trigger (module docstring) or -1: with probability ``session_rate``, a news
    live at the impression's time and not in the user's history, drawn with weights exp(the click logit's
    interest, popularity (at the middle of the hour), appeal and clickbait terms); with stories on,
    ``SESSION_STORY_SHARE`` of them among the live story articles only (when one is live)."""
    n_imp = user.size
    wanted = rng.random(n_imp) < config.session_rate
    story_only = (rng.random(n_imp) < SESSION_STORY_SHARE) & (news.story is not None)
    in_story = news.story >= 0 if news.story is not None else np.zeros(config.n_news, dtype=bool)
    content = config.appeal_weight * news.appeal + config.clickbait_weight * news.clickbait
    max_age = config.max_news_age_days * DAY
    trigger = np.full(n_imp, -1, dtype=np.int64)
    bucket = time // int(HOUR)
    for b in tqdm(np.unique(bucket[wanted]), desc="session triggers", unit="hour", mininterval=2.0,
                  disable=n_imp * config.n_news < PROGRESS_MIN_WORK):
        imps = np.flatnonzero(wanted & (bucket == b))
        window = np.flatnonzero((news.publish < (b + 1) * HOUR) & (news.publish >= b * HOUR - max_age))
        if window.size == 0:
            continue
        published = news.publish[window][None, :]
        moment = time[imps, None].astype(np.float64)
        ok = (published < moment) & (published >= moment - max_age)
        row, item = _history_items(hist_offsets, hist_flat, user[imps])
        col = _columns(window, item)
        ok[row[col >= 0], col[col >= 0]] = False
        story_ok = ok & in_story[window][None, :]
        ok = np.where((story_only[imps] & story_ok.any(axis=1))[:, None], story_ok, ok)
        popularity = news.popularity(window, np.full(window.size, (b + 0.5) * HOUR))
        prior = config.popularity_weight * popularity + content[window]
        weights = np.exp(config.interest_weight * users.affinity_grid(user[imps], window, int(b // 24) + 1, news)
                         + prior[None, :])
        weights *= ok
        found = ok.any(axis=1)
        trigger[imps[found]] = window[categorical_rows(weights[found], rng)]
    return trigger


def _newest_history_item(hist_offsets: np.ndarray, hist_flat: np.ndarray, user: np.ndarray) -> np.ndarray:
    """The last (newest) history item of each user of ``user``, -1 for an empty history."""
    end = hist_offsets[user + 1]
    return np.where(end > hist_offsets[user], hist_flat[np.maximum(end - 1, 0)], -1)


def _matching_pairs(live_values: np.ndarray, trigger_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, live column) of every live news whose value equals row's trigger value (values >= 0 only)."""
    order = np.argsort(live_values, kind="stable")
    ordered = live_values[order]
    lo = np.searchsorted(ordered, trigger_values, side="left")
    counts = np.where(trigger_values >= 0, np.searchsorted(ordered, trigger_values, side="right") - lo, 0)
    row = np.repeat(np.arange(trigger_values.size), counts)
    within = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return row, order[np.repeat(lo, counts) + within]


def _neighbourhood(news: News, trigger: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, live column, tier) of each trigger's neighbourhood among the live news, the trigger itself
    excepted, each pair once at its best tier: 0 same story, 1 same entity, 2 same subcategory."""
    parts = [(_matching_pairs(news.entity[live], news.entity[trigger]), 1),
             (_matching_pairs(news.subcategory[live], news.subcategory[trigger]), 2)]
    if news.story is not None:
        parts.append((_matching_pairs(news.story[live], news.story[trigger]), 0))
    row = np.concatenate([r for (r, _), _ in parts])
    col = np.concatenate([c for (_, c), _ in parts])
    tier = np.concatenate([np.full(r.size, t, dtype=np.int64) for (r, _), t in parts])
    order = np.lexsort((tier, col, row))
    row, col, tier = row[order], col[order], tier[order]
    first = np.ones(row.size, dtype=bool)
    first[1:] = (row[1:] != row[:-1]) | (col[1:] != col[:-1])
    keep = first & (live[col] != trigger[row])
    return row[keep], col[keep], tier[keep]


def _neighbourhood_picks(config: DemoConfig, news: News, trigger: np.ndarray, k: np.ndarray, live: np.ndarray,
                         weight: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(row, live column) of the story candidates of impressions with triggers ``trigger`` (>= 0) and ``k``
    candidates: ``story_candidate_share * k`` of them (stochastically rounded), tier by tier, within a tier
    with the freshness weights (Gumbel top-k over the neighbourhood only)."""
    slots = np.floor(config.story_candidate_share * k + rng.random(k.size)).astype(np.int64)
    row, col, tier = _neighbourhood(news, trigger, live)
    key = weight[col] + rng.gumbel(size=row.size) - NEIGHBOURHOOD_TIER_GAP * tier
    order = np.lexsort((-key, row))
    row, col = row[order], col[order]
    rank = np.arange(row.size) - np.searchsorted(row, row)  # 0-based rank within the row
    take = rank < slots[row]
    return row[take], col[take]


def _candidates(config: DemoConfig, news: News, time: np.ndarray, sizes: np.ndarray, trigger: np.ndarray,
                session: np.ndarray, rng: np.random.Generator, story_rng: np.random.Generator | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(candidate news, impression, from the neighbourhood) rows, impression by impression, each impression's
    in display order; ``sizes`` is cut to the live news. A session trigger is never its impression's candidate."""
    n_imp = time.size
    bucket = time // int(HOUR)
    parts_news, parts_imp, parts_picked = [], [], []
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
        weight = np.log(CANDIDATE_FLOOR + news.popularity(live, np.full(live.size, t0 + HOUR / 2)))
        keys = weight[None, :] + rng.gumbel(size=(imps.size, live.size))
        excluded = np.zeros(imps.size, dtype=np.int64)
        if session.any():
            col = np.where(session[imps], _columns(live, trigger[imps]), -1)
            keys[np.flatnonzero(col >= 0), col[col >= 0]] = -np.inf
            excluded = (col >= 0).astype(np.int64)
        k = np.minimum(sizes[imps], live.size - excluded)
        sizes[imps] = k
        if story_rng is not None:
            rows = np.flatnonzero(trigger[imps] >= 0)
            row, col = _neighbourhood_picks(config, news, trigger[imps[rows]], k[rows], live, weight, story_rng)
            keys[rows[row], col] = np.inf
        top = int(k.max())
        best = np.argpartition(-keys, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(best, np.argsort(-np.take_along_axis(keys, best, axis=1), axis=1), axis=1)
        shown = np.where(np.arange(top)[None, :] < k[:, None], rng.random(best.shape), np.inf)
        best = np.take_along_axis(best, np.argsort(shown, axis=1), axis=1)  # random display order
        mask = np.arange(top)[None, :] < k[:, None]
        parts_news.append(live[best[mask]])
        parts_imp.append(np.repeat(imps, k))
        parts_picked.append(np.take_along_axis(keys, best, axis=1)[mask] == np.inf)
    cand_news, cand_imp, picked = np.concatenate(parts_news), np.concatenate(parts_imp), np.concatenate(parts_picked)
    rows = np.argsort(cand_imp, kind="stable")
    return cand_news[rows], cand_imp[rows], picked[rows]


def _trigger_bonus(config: DemoConfig, news: News, cand_news: np.ndarray, trigger: np.ndarray) -> np.ndarray:
    """Per candidate row (``trigger`` per row): ``story_click_bonus`` in the trigger's story, ``ENTITY_BONUS_SHARE``
    of it when naming the trigger's entity otherwise, else 0."""
    t = np.maximum(trigger, 0)
    has = trigger >= 0
    if news.story is not None:
        same_story = has & (news.story[cand_news] == news.story[t]) & (news.story[t] >= 0)
    else:
        same_story = False
    same_entity = has & (news.entity[cand_news] == news.entity[t]) & (news.entity[t] >= 0)
    return config.story_click_bonus * np.where(same_story, 1.0, ENTITY_BONUS_SHARE * same_entity)


def make_impressions(config: DemoConfig, news: News, users: Users, rng: np.random.Generator,
                     label_rng: np.random.Generator, hist_offsets: np.ndarray | None = None,
                     hist_flat: np.ndarray | None = None, rngs: dict[str, np.random.Generator] | None = None) -> Logged:
    """Impressions, candidates and labels (module docstring). The realism features need the histories and the
    ``sessions`` and ``story_candidates`` streams of ``rngs``."""
    user, time, day, sizes = _impression_slots(config, users, rng)
    n_imp = user.size
    trigger = np.full(n_imp, -1, dtype=np.int64)
    session = np.zeros(n_imp, dtype=bool)
    if config.realism:
        if hist_offsets is None or hist_flat is None or rngs is None:
            raise ValueError("make_impressions: the realism features need the histories and the random streams")
        trigger = _newest_history_item(hist_offsets, hist_flat, user)
        if config.session_rate > 0:
            drawn = draw_session_triggers(config, news, users, user, time, hist_offsets, hist_flat, rngs["sessions"])
            session = drawn >= 0
            trigger = np.where(session, drawn, trigger)
    story_rng = rngs["story_candidates"] if rngs is not None and config.story_candidate_share > 0 else None
    cand_news, cand_imp, picked = _candidates(config, news, time, sizes, trigger, session, rng, story_rng)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    position = np.arange(cand_news.size) - offsets[:-1][cand_imp]

    t = time[cand_imp].astype(np.float64)
    pop = news.popularity(cand_news, t)
    affinity = users.affinity(user[cand_imp], cand_news, day[cand_imp] + 1, news)
    position_term = -config.position_weight * np.log1p(position)
    content = (config.interest_weight * affinity + config.appeal_weight * news.appeal[cand_news]
               + config.clickbait_weight * news.clickbait[cand_news])
    if config.story_click_bonus > 0:
        content = content + _trigger_bonus(config, news, cand_news, trigger[cand_imp])
    popularity_part = config.popularity_weight * pop + position_term
    b0 = calibrate_intercept(content + popularity_part, offsets, config.target_ctr)
    p = 1.0 / (1.0 + np.exp(-(b0 + content + popularity_part)))
    p_pop = 1.0 / (1.0 + np.exp(-(b0 + content.mean() + popularity_part)))
    labels, p_any = sample_labels_with_click(p, offsets, label_rng)
    return Logged(user, time, offsets, cand_news, position, p, p_pop, p / p_any[cand_imp], labels, b0,
                  trigger, session, picked)


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


def _text_layout(config: DemoConfig, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """(seed of the text's ``random.Random``, which news have an empty abstract), from the ``text`` stream."""
    seed = int(rng.integers(2**62))
    return seed, rng.random(config.n_news) < config.empty_abstract_rate


def _url(code: str, category: Category, evidence: Evidence | None, i: int) -> str:
    """MIND-like URL; with visible quality its domain names the news' source."""
    if evidence is None:
        return f"https://assets.newsforge.example/labs/mind/AA{code}.html"
    return f"https://www.{OUTLETS[evidence.source[i]].domain}.example/{category.name}/AA{code}.html"


def _keyword(news: News, i: int) -> str | None:
    """The story keyword news ``i``'s titles must name, None outside a story."""
    return news.story_keyword[news.story[i]] if news.story is not None and news.story[i] >= 0 else None


def _news_rows(config: DemoConfig, news: News, quality: Quality, text_seed: int, empty_abstract: np.ndarray,
               cue_rng: np.random.Generator) -> list[tuple[str, ...]]:
    text_rng = random.Random(text_seed)
    writer = HeadlineWriter(text_rng)
    codes = text_rng.sample(range(36**5), config.n_news)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    evidence = quality.evidence
    rows: list[list[str]] = []
    titles: list[RenderedText] = []
    for i in range(config.n_news):
        category = CATEGORIES[news.category[i]]
        _, sub = TAXONOMY[news.subcategory[i]]
        ent = ALL_ENTITIES[news.entity[i]] if news.entity[i] >= 0 else None
        place = ALL_ENTITIES[news.place[i]] if news.place[i] >= 0 else None
        title = writer.title(category, sub, ent, place, _keyword(news, i))
        abstract = writer.abstract(category, sub, ent, place)
        abstract_text, abstract_entities = abstract.text, entity_json(abstract, text_rng)
        if empty_abstract[i]:
            abstract_text, abstract_entities = "", "[]"
        elif evidence is not None and evidence.thin[i]:
            body = int(evidence.short_body[i])
            abstract_text, abstract_entities = (THIN_ABSTRACTS[body] if body >= 0 else ""), "[]"
        code = "".join(alphabet[(codes[i] // 36**k) % 36] for k in range(5))
        rows.append([f"N{i + 1}", category.name, sub, title.text, abstract_text, _url(code, category, evidence, i),
                     entity_json(title, text_rng), abstract_entities])
        titles.append(title)

    # Quality cues, with their own stream: markers on originals, then copies of (marked) originals, then spam.
    cues = HeadlineWriter(random.Random(int(cue_rng.integers(2**62))))
    rewritten: dict[int, RenderedText] = {}
    for i in np.flatnonzero(quality.marker & (quality.duplicate_of < 0)).tolist():
        ent = ALL_ENTITIES[news.entity[i]] if news.entity[i] >= 0 else None
        rewritten[i] = cues.clickbait(titles[i], CATEGORIES[news.category[i]], TAXONOMY[news.subcategory[i]][1], ent,
                                      _keyword(news, i))
    for i in np.flatnonzero(quality.duplicate_of >= 0).tolist():
        source = int(quality.duplicate_of[i])
        rewritten[i] = near_duplicate(rewritten.get(source, titles[source]), CATEGORIES[news.category[i]].adjectives,
                                      cues.rng)
    for i in np.flatnonzero(quality.spam).tolist():
        rewritten[i], abstract = _spam_text(cues, int(news.category[i]))
        if not empty_abstract[i]:
            rows[i][4], rows[i][7] = abstract.text, "[]"
    for i, title in sorted(rewritten.items()):
        rows[i][3], rows[i][6] = title.text, entity_json(title, cues.rng)
    return [tuple(r) for r in rows]


def _behavior_rows(config: DemoConfig, logged: Logged, hist_offsets: np.ndarray,
                   hist_flat: np.ndarray) -> list[tuple[str, ...]]:
    """behaviors.tsv rows; an impression with a session trigger lists it after the user's history."""
    news_ids = np.array([f"N{i + 1}" for i in range(config.n_news)], dtype=object)
    tokens = (news_ids[logged.news] + np.where(logged.label == 1, "-1", "-0")).tolist()
    history_text = [" ".join(news_ids[hist_flat[hist_offsets[u]:hist_offsets[u + 1]]]) for u in range(config.n_users)]
    start = config.start
    rows: list[tuple[str, ...]] = []
    for i in range(logged.user.size):
        u = int(logged.user[i])
        moment = start + timedelta(seconds=int(logged.time[i]))
        history = history_text[u]
        if logged.session[i]:
            history = f"{history} {news_ids[logged.trigger[i]]}" if history else news_ids[logged.trigger[i]]
        rows.append((str(i + 1), f"U{u + 1}", mind_time(moment), history,
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
    """news_quality.parquet; ``story`` only with stories on, ``source``/``authority``/``thin`` with visible quality."""
    ids = np.array([f"N{i + 1}" for i in range(quality.grade.size)], dtype=object)
    columns = {
        "news_id": pa.array(ids.tolist(), pa.string()),
        "quality": pa.array(quality.grade, pa.int8()),
        "clickbait": pa.array(news.clickbait, pa.float64()),
        "spam": pa.array(quality.spam, pa.bool_()),
        "duplicate_of": pa.array(np.where(quality.duplicate_of >= 0, ids[quality.duplicate_of], "").tolist(),
                                 pa.string()),
    }
    if news.story is not None:
        columns["story"] = pa.array(news.story, pa.int64())
    if quality.evidence is not None:
        columns["source"] = pa.array([OUTLETS[s].name for s in quality.evidence.source.tolist()], pa.string())
        columns["authority"] = pa.array(quality.evidence.authority, pa.float64())
        columns["thin"] = pa.array(quality.evidence.thin, pa.bool_())
    return pa.table(columns)


def _realism_arrays(news: News, quality: Quality, logged: Logged) -> RealismArrays:
    return RealismArrays(
        offsets=logged.offsets, labels=logged.label, candidate_news=logged.news, trigger=logged.trigger,
        session=logged.session, neighbourhood=logged.neighbourhood, news_story=news.story, news_entity=news.entity,
        news_publish_days=news.publish / DAY, news_grade=quality.grade, news_spam=quality.spam,
        news_latent=quality.latent, news_visible=quality.visible,
    )


def _signal_arrays(config: DemoConfig, news: News, logged: Logged, signals: Signals) -> SignalArrays:
    clicked = logged.label == 1
    impression, clicked_news = logged.impression_of_row[clicked], logged.news[clicked]
    click_time = logged.time[impression]
    return SignalArrays(
        user=signals.user, time=signals.time, day=signals.time // int(DAY), search=signals.search,
        category=signals.category, subcategory=signals.subcategory, off_interest=signals.off_interest,
        words=signals.words, click_user=logged.user[impression], click_time=click_time,
        click_day=click_time // int(DAY), click_category=news.category[clicked_news],
        click_subcategory=news.subcategory[clicked_news], n_users=config.n_users, n_days=config.n_days,
        n_categories=K, n_subcategories=len(TAXONOMY),
    )


@dataclass(frozen=True)
class DemoDraw:
    """Everything drawn for one config, before any file is written (``generate_demo`` writes it)."""

    news: News
    quality: Quality
    users: Users
    hist_offsets: np.ndarray  # (U + 1,) CSR offsets of the per-user histories (without session triggers)
    hist_flat: np.ndarray     # news indices, oldest first
    logged: Logged
    text_seed: int            # seed of the text's random.Random
    empty_abstract: np.ndarray
    cue_rng: np.random.Generator
    signals: Signals | None = None  # the user signals (None: user_signals off)


def draw_demo(config: DemoConfig) -> DemoDraw:
    """Draw the dataset of ``config`` (module docstring), deterministically by its seed."""
    rngs = _spawn(config.seed)
    text_seed, empty_abstract = _text_layout(config, rngs["text"])
    news, quality = make_quality(config, make_news(config, rngs["news"]), rngs["quality"], story_rng=rngs["stories"],
                                 source_rng=rngs["sources"], empty_abstract=empty_abstract)
    users = make_users(config, rngs["users"])
    hist_offsets, hist_flat = make_histories(config, news, users, rngs["history"])
    logged = make_impressions(config, news, users, rngs["impressions"], rngs["labels"], hist_offsets, hist_flat, rngs)
    signals = None
    if config.user_signals:

        signals = draw_signals(config, users, rngs["signals"])
    return DemoDraw(news, quality, users, hist_offsets, hist_flat, logged, text_seed, empty_abstract, rngs["cues"],
                    signals)


def generate_demo(out_dir: str | Path, config: DemoConfig | None = None) -> DemoReport:
    """Write the demo dataset into ``out_dir`` (created if needed) and return its report."""
    config = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    draw = draw_demo(config)
    news, quality, users, logged = draw.news, draw.quality, draw.users, draw.logged
    hist_offsets, hist_flat = draw.hist_offsets, draw.hist_flat

    write_tsv(out / NEWS_FILE, _news_rows(config, news, quality, draw.text_seed, draw.empty_abstract, draw.cue_rng),
              len(NEWS_TSV_COLUMNS))
    write_tsv(out / BEHAVIORS_FILE, _behavior_rows(config, logged, hist_offsets, hist_flat), len(BEHAVIORS_TSV_COLUMNS))
    if config.user_profiles:
        regions, devices = list(REGIONS), list(DEVICES)
        profiles = [(f"U{u + 1}", regions[users.region[u]], devices[users.device[u]]) for u in range(config.n_users)]
        write_tsv(out / USER_PROFILES_FILE, profiles, len(USER_PROFILE_TSV_COLUMNS))
    signal_model, signal_summary = None, None
    if draw.signals is not None:

        write_tsv(out / USER_SIGNALS_TSV, signal_rows(config, draw.signals), len(USER_SIGNAL_TSV_COLUMNS))
        signal_model, signal_summary = SIGNAL_MODEL, signal_stats(_signal_arrays(config, news, logged, draw.signals))
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
        history_lengths_per_impression=np.diff(hist_offsets)[logged.user] + logged.session,
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
        quality_model=VISIBLE_QUALITY_MODEL if config.visible_quality else QUALITY_MODEL,
        trigger_model=TRIGGER_MODEL if config.realism else None,
        realism=realism_stats(_realism_arrays(news, quality, logged)) if config.realism else None,
        signal_model=signal_model,
        signals=signal_summary,
    )
    (out / REPORT_FILE).write_text(report.to_json(), encoding="utf-8", newline="\n")
    return report
