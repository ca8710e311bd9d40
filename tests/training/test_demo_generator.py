"""The demo generator writes exact MIND files from a known click model, deterministically."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from training.data.demo import DemoConfig, DemoReport, generate_demo
from training.data.demo.generator import (
    BEHAVIORS_FILE,
    CLICK_PROBABILITIES_FILE,
    NEWS_FILE,
    NEWS_QUALITY_FILE,
    REPORT_FILE,
    USER_PROFILES_FILE,
    sample_labels_with_click,
)
from training.data.demo.mind_files import mind_time
from training.data.demo.taxonomy import CATEGORIES
from training.data.schema import MIND_TIME_FORMAT

FILES = (NEWS_FILE, BEHAVIORS_FILE, USER_PROFILES_FILE, CLICK_PROBABILITIES_FILE, NEWS_QUALITY_FILE, REPORT_FILE)


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoReport]:
    out = tmp_path_factory.mktemp("tiny")
    return out, generate_demo(out, DemoConfig.tiny())


def test_same_seed_is_byte_identical_and_other_seed_differs(tiny, tmp_path):
    out, _ = tiny
    generate_demo(tmp_path / "again", DemoConfig.tiny())
    generate_demo(tmp_path / "other", DemoConfig.tiny(seed=7))
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    for name in (NEWS_FILE, BEHAVIORS_FILE, CLICK_PROBABILITIES_FILE, NEWS_QUALITY_FILE):
        assert (out / name).read_bytes() != (tmp_path / "other" / name).read_bytes(), name


def _check_entities(text: str, column: str) -> None:
    entities = json.loads(column)
    assert isinstance(entities, list)
    for e in entities:
        assert set(e) == {"Label", "Type", "WikidataId", "Confidence", "OccurrenceOffsets", "SurfaceForms"}
        assert e["WikidataId"].startswith("Q") and e["WikidataId"][1:].isdigit()
        assert 0 < e["Confidence"] <= 1
        for offset in e["OccurrenceOffsets"]:
            assert any(text[offset:offset + len(s)] == s for s in e["SurfaceForms"]), (text, e)


def test_news_tsv_is_mind_format(tiny):
    out, _ = tiny
    rows = _rows(out / NEWS_FILE)
    assert len(rows) == 300
    subcats = {c.name: set(c.subcategories) for c in CATEGORIES}
    n_entities = 0
    for i, row in enumerate(rows):
        assert len(row) == 8
        news_id, category, subcategory, title, abstract, url, title_entities, abstract_entities = row
        assert news_id == f"N{i + 1}"
        assert subcategory in subcats[category]
        assert title and title[0].isupper()
        assert url.startswith("https://") and url.endswith(".html")
        _check_entities(title, title_entities)
        _check_entities(abstract, abstract_entities)
        if not abstract:
            assert abstract_entities == "[]"
        n_entities += len(json.loads(title_entities))
    assert n_entities > 0.3 * len(rows)
    assert 0 < sum(not r[4] for r in rows) < 0.15 * len(rows)
    assert len({r[5] for r in rows}) == len(rows)


def test_behaviors_tsv_is_mind_format(tiny):
    out, report = tiny
    config = DemoConfig.tiny()
    news_ids = {r[0] for r in _rows(out / NEWS_FILE)}
    rows = _rows(out / BEHAVIORS_FILE)
    assert len(rows) == config.n_days * config.impressions_per_day == report.counts["impressions"]
    histories: dict[str, set[str]] = defaultdict(set)
    window = {datetime.fromisoformat(d).date() for d in config.days}
    times = []
    for i, row in enumerate(rows):
        assert len(row) == 5
        impression_id, user_id, time, history, impressions = row
        assert impression_id == str(i + 1)
        assert user_id.startswith("U") and 1 <= int(user_id[1:]) <= config.n_users
        moment = datetime.strptime(time, MIND_TIME_FORMAT)
        assert moment.date() in window
        assert mind_time(moment) == time  # no zero padding, 12-hour clock
        times.append(moment)
        hist = history.split(" ") if history else []
        assert set(hist) <= news_ids
        histories[user_id].add(history)
        pairs = [token.rsplit("-", 1) for token in impressions.split(" ")]
        assert config.min_candidates <= len(pairs) <= config.max_candidates
        assert {label for _, label in pairs} <= {"0", "1"}
        assert any(label == "1" for _, label in pairs)
        assert {n for n, _ in pairs} <= news_ids and len({n for n, _ in pairs}) == len(pairs)
    assert times == sorted(times)
    assert all(len(h) == 1 for h in histories.values())  # a user's history is fixed within the split


def test_profiles_probabilities_and_report(tiny):
    out, report = tiny
    profiles = _rows(out / USER_PROFILES_FILE)
    assert [p[0] for p in profiles] == [f"U{u + 1}" for u in range(200)]
    assert all(len(p) == 3 for p in profiles)

    table = pq.read_table(out / CLICK_PROBABILITIES_FILE).to_pydict()
    expected = [
        (int(row[0]), pos, *token.rsplit("-", 1))
        for row in _rows(out / BEHAVIORS_FILE) for pos, token in enumerate(row[4].split(" "))
    ]
    got = list(zip(table["impression_id"], table["position"], table["news_id"], [str(v) for v in table["label"]]))
    assert got == expected
    p, cond = np.array(table["probability"]), np.array(table["conditional_probability"])
    assert ((p > 0) & (p < 1)).all() and (cond >= p - 1e-12).all()
    assert ((np.array(table["popularity_probability"]) > 0) & (np.array(table["popularity_probability"]) < 1)).all()

    saved = DemoReport.from_json((out / REPORT_FILE).read_text())
    assert saved == report
    assert DemoConfig.from_dict(saved.config) == DemoConfig.tiny()
    assert [d["day"] for d in report.days] == ["2019-11-09", "2019-11-10", "2019-11-11"]
    for d in report.days:
        assert {"auc", "mrr", "ndcg5", "ndcg10", "n_impressions"} <= set(d["ceiling"])
        assert d["ceiling"]["n_impressions"] == d["n_impressions"] == 100
    assert report.counts["clicks"] == int(np.sum(table["label"]))


def test_user_profiles_optional(tmp_path):
    generate_demo(tmp_path, DemoConfig.tiny(user_profiles=False, n_days=1))
    assert not (tmp_path / USER_PROFILES_FILE).exists()
    assert (tmp_path / BEHAVIORS_FILE).exists()


def test_mind_time_edges():
    assert mind_time(datetime(2019, 11, 9, 0, 5, 9)) == "11/9/2019 12:05:09 AM"
    assert mind_time(datetime(2019, 11, 15, 12, 0, 0)) == "11/15/2019 12:00:00 PM"
    assert mind_time(datetime(2019, 11, 15, 20, 55, 22)) == "11/15/2019 8:55:22 PM"


def test_labels_follow_bernoulli_conditioned_on_a_click():
    rng = np.random.default_rng(0)
    p_one = np.array([0.1, 0.3, 0.05, 0.2])
    n = 100_000
    p = np.tile(p_one, n)
    offsets = np.arange(n + 1) * p_one.size
    labels, p_any = sample_labels_with_click(p, offsets, rng)
    y = labels.reshape(n, p_one.size)
    assert (y.sum(axis=1) >= 1).all()
    expected_any = 1 - np.prod(1 - p_one)
    np.testing.assert_allclose(p_any, expected_any)
    np.testing.assert_allclose(y.mean(axis=0), p_one / expected_any, atol=0.01)
    # pairwise independence is preserved conditionally: P(y0 = y1 = 1 | any) = p0 p1 / P(any)
    assert abs((y[:, 0] & y[:, 1]).mean() - p_one[0] * p_one[1] / expected_any) < 0.01


@pytest.mark.parametrize("bad, message", [
    (dict(n_news=0), "n_news"),
    (dict(start_day="2019-13-01"), "start_day"),
    (dict(min_candidates=20, max_candidates=10), "max_candidates"),
    (dict(median_candidates=500.0), "median_candidates"),
    (dict(target_ctr=0.0), "target_ctr"),
    (dict(history_median=40.0), "history_median"),
    (dict(empty_history_rate=1.5), "empty_history_rate"),
    (dict(clickbait_weight=-0.5), "clickbait_weight"),
    (dict(spam_rate=1.0), "spam_rate"),
    (dict(spam_rate=0.6, duplicate_rate=0.6), "duplicate_rate"),
    (dict(story_rate=0.7), "story_rate"),
    (dict(session_rate=-0.1), "session_rate"),
    (dict(story_click_bonus=11.0), "story_click_bonus"),
    (dict(story_candidate_share=1.5), "story_candidate_share"),
    (dict(visible_quality=1), "visible_quality"),
    (dict(hidden_quality_share=1.0), "hidden_quality_share"),
])
def test_config_validation(bad, message):
    with pytest.raises(ValueError, match=message):
        DemoConfig(**bad)


def test_too_few_live_news_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="live"):
        generate_demo(tmp_path, DemoConfig.tiny(n_news=60, min_candidates=40, median_candidates=45.0))


def test_content_and_interests_matter_beyond_popularity(tmp_path):
    config = DemoConfig(n_news=1200, n_users=1500, n_days=3, impressions_per_day=500, history_days=7)
    report = generate_demo(tmp_path, config)
    for day in report.days:
        assert day["ceiling"]["auc"] > day["popularity_oracle"]["auc"] + 0.12
        assert day["popularity_oracle"]["auc"] > 0.52  # popularity and position still carry signal
        assert day["ceiling"]["mrr"] > day["popularity_oracle"]["mrr"]


def test_default_config_is_realistic(tmp_path):
    """Default size (~7 s on 2 cores): MIND-like marginals and a clear ceiling gap."""
    report = generate_demo(tmp_path, DemoConfig())
    s = report.stats
    assert report.counts["impressions"] == 7 * 2500 and report.counts["news"] == 4000
    assert 28 <= s["history"]["mean"] <= 38 and 15 <= s["history"]["median"] <= 23
    assert 65 <= s["history"]["p90"] <= 90 and 1.0 <= s["history"]["pct_empty"] <= 3.0
    c = s["candidates_per_impression"]
    assert 33 <= c["mean"] <= 43 and c["min"] >= 10 and c["max"] <= 100
    assert 0.035 <= s["ctr"] <= 0.045 and 1.3 <= s["clicks_per_impression"]["mean"] <= 1.8
    assert s["clicks_per_impression"]["min"] >= 1
    assert len(report.days) == 7 and report.days[-1]["day"] == "2019-11-15"
    for day in report.days:
        assert 0.75 <= day["ceiling"]["auc"] <= 0.88
        assert 0.54 <= day["popularity_oracle"]["auc"] <= 0.66
    q = s["quality"]  # clicks and quality disagree: a weak correlation, clickbait clicked more but graded lower
    assert [round(v) for v in q["pct_news_per_grade"].values()] == [10, 20, 30, 25, 15]
    assert abs(q["spearman_propensity_grade"]) < 0.3 and 15 <= q["pct_clicks_grade_le1"] <= 35
    bait = q["clickbait"]
    assert bait["mean_probability"] > 1.5 * bait["mean_probability_other"]
    assert bait["mean_grade"] < bait["mean_grade_other"] - 1
    assert 3 <= q["pct_news_spam"] <= 5 and 3 <= q["pct_news_near_duplicate"] <= 6
