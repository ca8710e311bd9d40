"""User signals of the demo dataset (``user_signals.tsv``): search queries typed and topics followed.

They are drawn from the users' latent interests, the clicks' own, with noise, from the random stream
``signals`` alone (the generator's module docstring states the model; the file's format is in docs/data.md).
A query names a subcategory noun (the subject noun of that subcategory's headlines), so it can retrieve
matching news by text; a followed topic is a subcategory name, as news.tsv writes it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import numpy as np

from training.data.demo.clock import DAY, HOUR, HOUR_WEIGHTS
from training.data.demo.config import DemoConfig
from training.data.demo.draws import categorical_rows
from training.data.demo.mind_files import mind_time
from training.data.demo.taxonomy import CATEGORIES, COMMON
from training.data.demo.taxonomy_index import (
    ALL_ENTITIES,
    CATEGORY_ENTITY_COUNT,
    CATEGORY_ENTITY_START,
    SUB_CATEGORY,
    SUB_NOUNS,
    TAXONOMY,
    K,
)
from training.data.schema import SIGNAL_KINDS

SEARCH, FOLLOW = SIGNAL_KINDS
#: A search names an entity with this probability (a favourite of its category when on-interest and the user has one).
SEARCH_ENTITY_RATE = 0.3
#: Bounds on a query's words; a template that renders outside them is redrawn.
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 2, 8
QUERY_TRIES = 20
#: New follows during the window: per user-day with this probability, one topic not yet followed.
NEW_FOLLOW_RATE = 0.02
#: Query templates: subcategory noun ``noun``, a second noun of the subcategory or category ``noun2``, the
#: category's ``adj`` and ``verb``, a headline ``tail``; with an entity ``ent`` (its surface form, as titles write it).
QUERY_TEMPLATES = ("{noun} {noun2}", "{adj} {noun}", "latest {noun} news", "{noun} {verb} {noun2}",
                   "what happened to the {noun}", "{noun} {tail}", "{adj} {noun} {noun2}")
ENTITY_QUERY_TEMPLATES = ("{ent} {noun}", "{ent} {verb} {noun}", "{noun} {ent}", "latest {ent} {noun} news")
#: The fallback query: 2 to 6 words with the taxonomy's words (adjectives have at most 2, nouns at most 4; tested).
FALLBACK_QUERY = "{adj} {noun}"
SIGNAL_MODEL = (
    "searches per user-day ~ Poisson(search_rate * activity); each off-interest with probability signal_noise "
    "(category uniform, subcategory uniform in it), else category ~ that day's interests, subcategory ~ sub_pref; "
    f"the query names a noun of the subcategory and, with probability {SEARCH_ENTITY_RATE:g}, an entity (a favourite "
    "of the user in that category when on-interest, else a uniform one of the category); hour ~ the diurnal curve. "
    "Follows: Poisson(follows_per_user) distinct subcategories per user at the window's start with weights "
    "(1 - signal_noise) * theta_0[c] * phi[s] + signal_noise / S, then per user-day with probability "
    f"{NEW_FOLLOW_RATE:g} one more with that day's interests"
)
#: Category of every entity of ALL_ENTITIES (-1 for places).
ENTITY_CATEGORY = np.concatenate([np.full(len(COMMON.places), -1),
                                  np.repeat(np.arange(K), CATEGORY_ENTITY_COUNT)]).astype(np.int64)



class UserInterests(Protocol):
    """What the signals read of the generator's ``Users``: the latent interests the clicks are drawn from."""

    @property
    def interest(self) -> np.ndarray: ...      # (U, n_days + 1, K)
    @property
    def sub_pref(self) -> np.ndarray: ...      # (U, S)
    @property
    def favourites(self) -> np.ndarray: ...    # (U, slots) entity index or -1
    @property
    def activity(self) -> np.ndarray: ...      # (U,)


@dataclass(frozen=True)
class Signals:
    """User signals, one row each, sorted by (time, user, draw order)."""

    user: np.ndarray          # (R,) user index
    time: np.ndarray          # (R,) integer seconds from start
    search: np.ndarray        # (R,) bool: a search (else a follow)
    subcategory: np.ndarray   # (R,) index into TAXONOMY: the search's topic or the followed topic
    off_interest: np.ndarray  # (R,) bool: a search drawn off-interest (noise); always False for a follow
    text: tuple[str, ...]     # the query, or the followed subcategory's name

    @property
    def category(self) -> np.ndarray:
        return SUB_CATEGORY[self.subcategory]

    @property
    def words(self) -> np.ndarray:
        return np.array([len(t.split()) for t in self.text], dtype=np.int64)


def _times(days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second of each day in ``days``: the hour by the diurnal curve, then uniform within it."""
    hour = rng.choice(24, size=days.size, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return (days * DAY + hour * HOUR + rng.integers(0, int(HOUR), days.size)).astype(np.int64)


def _subcategories(users: UserInterests, user: np.ndarray, category: np.ndarray, off: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Per row a subcategory of ``category``: by the user's ``sub_pref``, uniform for off-interest rows."""
    sub = np.empty(user.size, dtype=np.int64)
    uniform = rng.random(user.size)
    for k in range(K):
        rows = np.flatnonzero(category == k)
        options = np.flatnonzero(SUB_CATEGORY == k)
        picked = options[categorical_rows(users.sub_pref[np.ix_(user[rows], options)], rng)]
        sub[rows] = np.where(off[rows], options[(uniform[rows] * options.size).astype(np.int64)], picked)
    return sub


def _search_entities(users: UserInterests, user: np.ndarray, category: np.ndarray, off: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Per search an entity index or -1: with SEARCH_ENTITY_RATE one, a favourite of the user in the search's
    category when on-interest and there is one, else a uniform entity of that category."""
    named = rng.random(user.size) < SEARCH_ENTITY_RATE
    slots = users.favourites[user]
    slot_category = np.where(slots >= 0, ENTITY_CATEGORY[np.maximum(slots, 0)], -1)
    eligible = (slot_category == category[:, None]) & ~off[:, None]
    keys = np.where(eligible, rng.random(slots.shape), -1.0)
    favourite = slots[np.arange(user.size), keys.argmax(axis=1)]
    within = (rng.random(user.size) * CATEGORY_ENTITY_COUNT[category]).astype(np.int64)
    uniform = CATEGORY_ENTITY_START[category] + within
    return np.where(named, np.where(eligible.any(axis=1), favourite, uniform), -1)


def query_text(subcategory: int, entity: int, rng: random.Random) -> str:
    """A query of MIN_QUERY_WORDS..MAX_QUERY_WORDS words on ``subcategory`` naming ``entity`` (-1: none)."""
    category = CATEGORIES[int(SUB_CATEGORY[subcategory])]
    nouns = SUB_NOUNS[subcategory]
    templates = ENTITY_QUERY_TEMPLATES if entity >= 0 else QUERY_TEMPLATES
    for attempt in range(QUERY_TRIES + 1):
        template = rng.choice(templates) if attempt < QUERY_TRIES else FALLBACK_QUERY
        noun = rng.choice(nouns)
        words = {"noun": noun, "noun2": rng.choice([w for w in nouns + category.nouns if w != noun]),
                 "adj": rng.choice(category.adjectives), "verb": rng.choice(category.verbs),
                 "tail": rng.choice(COMMON.tails), "ent": ALL_ENTITIES[entity].text if entity >= 0 else ""}
        text = template.format(**words)
        if MIN_QUERY_WORDS <= len(text.split()) <= MAX_QUERY_WORDS:
            return text
    raise RuntimeError(f"no query of {MIN_QUERY_WORDS}-{MAX_QUERY_WORDS} words for subcategory {TAXONOMY[subcategory]}")


def _topic_weights(users: UserInterests, user: np.ndarray, step: int, noise: float) -> np.ndarray:
    """(rows, S) follow weights: ``(1 - noise) * theta[c(s)] * phi[s] + noise / S`` at interest step ``step``."""
    interest = users.interest[user, step][:, SUB_CATEGORY] * users.sub_pref[user]
    return (1 - noise) * interest + noise / SUB_CATEGORY.size


def _follows(config: DemoConfig, users: UserInterests,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, time, subcategory) of the follows: Poisson(follows_per_user) distinct topics per user at the window
    start (pre-window interests), then per user-day with NEW_FOLLOW_RATE one more (that day's interests)."""
    n, n_topics = config.n_users, SUB_CATEGORY.size
    counts = np.minimum(rng.poisson(config.follows_per_user, n), n_topics)
    keys = np.log(_topic_weights(users, np.arange(n), 0, config.signal_noise)) + rng.gumbel(size=(n, n_topics))
    order = np.argsort(-keys, axis=1, kind="stable")
    taken = np.arange(n_topics)[None, :] < counts[:, None]
    user, sub = np.nonzero(taken)
    sub = order[user, sub]
    followed = np.zeros((n, n_topics), dtype=bool)
    followed[user, sub] = True
    parts = [(user, np.zeros(user.size, dtype=np.int64), sub)]
    for d in range(config.n_days):
        new = np.flatnonzero(rng.random(n) < NEW_FOLLOW_RATE)
        keys = np.log(_topic_weights(users, new, d + 1, config.signal_noise)) + rng.gumbel(size=(new.size, n_topics))
        keys[followed[new]] = -np.inf
        ok = np.isfinite(keys).any(axis=1)
        new, pick = new[ok], keys[ok].argmax(axis=1)
        followed[new, pick] = True
        parts.append((new, _times(np.full(new.size, d), rng), pick))
    f_user, f_time, f_sub = zip(*parts)
    return np.concatenate(f_user), np.concatenate(f_time), np.concatenate(f_sub)


def draw_signals(config: DemoConfig, users: UserInterests, rng: np.random.Generator) -> Signals:
    """The user signals of ``config`` (the generator's module docstring), all drawn from ``rng``."""
    text_rng = random.Random(int(rng.integers(2**62)))
    n, days = config.n_users, config.n_days
    counts = rng.poisson(config.search_rate * np.repeat(users.activity, days))  # user-major (user, day) cells
    cell = np.repeat(np.arange(n * days), counts)
    user, day = cell // days, cell % days
    off = rng.random(cell.size) < config.signal_noise
    category = np.where(off, rng.integers(0, K, cell.size), categorical_rows(users.interest[user, day + 1], rng))
    sub = _subcategories(users, user, category, off, rng)
    entity = _search_entities(users, user, category, off, rng)
    time = _times(day, rng)
    f_user, f_time, f_sub = _follows(config, users, rng)

    queries = [query_text(s, e, text_rng) for s, e in zip(sub.tolist(), entity.tolist())]
    topics = [TAXONOMY[s][1] for s in f_sub.tolist()]
    all_user = np.concatenate([user, f_user])
    all_time = np.concatenate([time, f_time])
    order = np.lexsort((np.arange(all_user.size), all_user, all_time))
    text = queries + topics
    return Signals(
        user=all_user[order], time=all_time[order],
        search=np.concatenate([np.ones(user.size, bool), np.zeros(f_user.size, bool)])[order],
        subcategory=np.concatenate([sub, f_sub])[order],
        off_interest=np.concatenate([off, np.zeros(f_user.size, bool)])[order],
        text=tuple(text[i] for i in order.tolist()),
    )


def signal_rows(config: DemoConfig, signals: Signals) -> list[tuple[str, ...]]:
    """user_signals.tsv rows: user_id, time (MIND's format), kind, text."""
    start = config.start
    return [(f"U{u + 1}", mind_time(start + timedelta(seconds=t)), SEARCH if s else FOLLOW, text)
            for u, t, s, text in zip(signals.user.tolist(), signals.time.tolist(), signals.search.tolist(),
                                     signals.text)]
