"""User signals of the demo generator (``user_signals.tsv``): valid rows, drawn from the clicks' interests with
noise, and written from a stream of their own, so every other file keeps its bytes."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from training.data.demo import DemoConfig, generate_demo
from training.data.demo.config import REALISM_ON, SIGNAL_FIELDS
from training.data.demo.generator import (
    BEHAVIORS_FILE,
    CLICK_PROBABILITIES_FILE,
    NEWS_FILE,
    NEWS_QUALITY_FILE,
    REPORT_FILE,
    USER_PROFILES_FILE,
)
from training.data.demo.mind_files import mind_time
from training.data.demo.signals import FALLBACK_QUERY, MAX_QUERY_WORDS, MIN_QUERY_WORDS
from training.data.demo.taxonomy import CATEGORIES
from training.data.mind_reader import read_user_signals
from training.data.schema import MIND_TIME_FORMAT, USER_SIGNALS_TSV

OTHER_FILES = (NEWS_FILE, BEHAVIORS_FILE, USER_PROFILES_FILE, CLICK_PROBABILITIES_FILE, NEWS_QUALITY_FILE)
#: Large enough for the statistics (about 3,300 searches, 1,900 next-day clicks of searchers), a second to generate.
MEDIUM = {"n_users": 1000, "n_days": 4, "impressions_per_day": 800, "user_signals": True}
#: Every subcategory noun, longest first, and the categories that use it.
NOUN_CATEGORIES: dict[str, set[str]] = defaultdict(set)
for _category in CATEGORIES:
    for _nouns in _category.subcategories.values():
        for _noun in _nouns:
            NOUN_CATEGORIES[_noun.lower()].add(_category.name)
NOUN_PATTERN = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(NOUN_CATEGORIES, key=len, reverse=True)))
                          + r")(?!\w)", re.IGNORECASE)  # not \b: some nouns end in ")", e.g. "401(k)"


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoConfig, dict]:
    out = tmp_path_factory.mktemp("signals")
    config = DemoConfig.tiny(**MEDIUM)
    report = generate_demo(out, config)
    return out, config, report.stats["signals"]


@pytest.mark.parametrize("realism", [{}, REALISM_ON], ids=["plain", "realism"])
def test_signals_leave_every_other_file_byte_identical(tmp_path, realism):
    generate_demo(tmp_path / "off", DemoConfig.tiny(**realism))
    generate_demo(tmp_path / "on", DemoConfig.tiny(**realism, user_signals=True))
    for name in OTHER_FILES:
        assert (tmp_path / "on" / name).read_bytes() == (tmp_path / "off" / name).read_bytes(), name
    assert not (tmp_path / "off" / USER_SIGNALS_TSV).exists()
    assert (tmp_path / "on" / USER_SIGNALS_TSV).stat().st_size > 0
    off, on = (json.loads((tmp_path / d / REPORT_FILE).read_text()) for d in ("off", "on"))
    assert set(SIGNAL_FIELDS) <= set(on["config"]) and not set(SIGNAL_FIELDS) & set(off["config"])
    for name in SIGNAL_FIELDS:
        del on["config"][name]
    del on["stats"]["signals"], on["model"]["signal_model"]
    assert on == off  # the signals add to the report and change nothing in it


def test_rows_are_valid_and_sorted(medium):
    out, config, _ = medium
    frame, validation = read_user_signals(out / USER_SIGNALS_TSV)
    assert validation.n_bad == 0 and len(frame) == validation.n_rows > 0
    rows = _rows(out / USER_SIGNALS_TSV)
    subcategories = {s for c in CATEGORIES for s in c.subcategories}
    window = set(config.days)
    keys, follows = [], defaultdict(list)
    for user, time, kind, text in rows:
        assert re.fullmatch(r"U[1-9][0-9]*", user) and int(user[1:]) <= config.n_users
        moment = datetime.strptime(time, MIND_TIME_FORMAT)
        assert mind_time(moment) == time and moment.date().isoformat() in window
        keys.append((moment, int(user[1:])))
        if kind == "search":
            assert MIN_QUERY_WORDS <= len(text.split()) <= MAX_QUERY_WORDS, text
            assert NOUN_PATTERN.search(text), f"{text!r} names no subcategory noun"
        else:
            assert kind == "follow" and text in subcategories
            follows[user].append((moment, text))
    assert keys == sorted(keys)
    assert all(len({t for _, t in f}) == len(f) for f in follows.values())  # a topic is followed once
    start_follows = sum(m == config.start for f in follows.values() for m, _ in f)
    assert start_follows > 0.8 * sum(map(len, follows.values()))  # new follows during the window are rare
    assert {r[2] for r in rows} == {"search", "follow"}


def test_fallback_query_fits_the_word_bounds():
    longest = max(len(w.split()) for c in CATEGORIES for w in c.adjectives) + max(
        len(n.split()) for c in CATEGORIES for nouns in c.subcategories.values() for n in nouns)
    assert FALLBACK_QUERY.count("{") == 2 and MIN_QUERY_WORDS <= 2 and longest <= MAX_QUERY_WORDS


def _next_day_shares(out: Path, config: DemoConfig) -> tuple[float, float]:
    """From the files alone: the share of next-day clicks (of users who searched the day before) whose category
    is named by a noun of that day's queries, and the same with the queries of the next user who searched as many
    categories that day."""
    category = {r[0]: r[1] for r in _rows(out / NEWS_FILE)}
    searched: dict[tuple[int, int], set[str]] = defaultdict(set)  # (day, user) -> categories of the queries
    for user, time, kind, text in _rows(out / USER_SIGNALS_TSV):
        if kind == "search":
            day = (datetime.strptime(time, MIND_TIME_FORMAT) - config.start).days
            for noun in NOUN_PATTERN.findall(text):
                searched[day, int(user[1:])] |= NOUN_CATEGORIES[noun.lower()]
    partner = {}
    for day in range(config.n_days):
        for size in {len(c) for c in searched.values()}:
            users = sorted(u for d, u in searched if d == day and len(searched[d, u]) == size)
            partner.update({(day, u): (day, v) for u, v in zip(users, users[1:] + users[:1])})
    hits, chance, total = 0, 0, 0
    for _, user, time, _, impressions in _rows(out / BEHAVIORS_FILE):
        key = ((datetime.strptime(time, MIND_TIME_FORMAT) - config.start).days - 1, int(user[1:]))
        if key not in searched:
            continue
        for token in impressions.split(" "):
            news, label = token.rsplit("-", 1)
            if label == "1":
                total += 1
                hits += category[news] in searched[key]
                chance += category[news] in searched[partner[key]]
    return 100 * hits / total, 100 * chance / total


def test_searches_predict_next_day_clicks_far_above_chance(medium):
    out, config, stats = medium
    share, chance = _next_day_shares(out, config)
    assert share > 1.3 * chance and share - chance > 8  # about 10 standard errors at this size
    # the report's figure uses the true categories; a noun shared by two categories only adds a little here
    assert abs(share - stats["pct_next_day_clicks_in_search_categories"]) < 5
    assert abs(chance - stats["pct_next_day_clicks_in_search_categories_shuffled_users"]) < 5
    assert 30 <= stats["pct_next_day_clicks_in_search_categories"] <= 60  # informative, not a giveaway
    assert stats["pct_clicks_in_followed_topics"] > 1.5 * stats["pct_clicks_in_followed_topics_shuffled_users"]


def test_documented_rates_hold(medium):
    _, config, stats = medium
    assert abs(stats["pct_searches_off_interest"] - 100 * config.signal_noise) < 3
    expected = config.search_rate * np.exp(0.5)  # E[activity] of LogNormal(0, 1)
    assert abs(stats["mean_searches_per_user_day"] / expected - 1) < 0.15
    assert abs(stats["mean_follows_per_user"] - config.follows_per_user - 0.02 * config.n_days) < 0.25


def test_pure_noise_signals_say_nothing_about_clicks(tmp_path):
    report = generate_demo(tmp_path, DemoConfig.tiny(**MEDIUM, signal_noise=1.0))
    stats = report.stats["signals"]
    assert stats["pct_searches_off_interest"] == 100.0
    assert abs(stats["pct_next_day_clicks_in_search_categories"]
               - stats["pct_next_day_clicks_in_search_categories_shuffled_users"]) < 5


@pytest.mark.parametrize("field, value, message", [
    ("user_signals", 1, "user_signals must be True or False"),
    ("search_rate", -0.1, r"search_rate must be a number in \[0, 20\]"),
    ("follows_per_user", 21, r"follows_per_user must be a number in \[0, 20\]"),
    ("signal_noise", 1.5, r"signal_noise \(share of off-interest searches\) must be in \[0, 1\]"),
])
def test_bad_signal_settings_are_named(field, value, message):
    with pytest.raises(ValueError, match=rf"DemoConfig\.{message}"):
        DemoConfig.tiny(**{field: value})


def test_signal_fields_are_in_the_config_dict_only_when_on():
    assert not set(SIGNAL_FIELDS) & set(DemoConfig.tiny().to_dict())
    on = DemoConfig.tiny(user_signals=True, search_rate=0.7)
    assert DemoConfig.from_dict(on.to_dict()) == on
