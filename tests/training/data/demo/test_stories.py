"""Realism features of the demo generator: stories, session triggers, the same-story click bonus, story
candidates and visible quality; with all of them off the output keeps its bytes (golden md5s)."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from training.data.demo import DemoConfig, DemoReport, generate_demo
from training.data.demo.config import REALISM_FIELDS, REALISM_ON
from training.data.demo.generator import (
    ALL_ENTITIES,
    BEHAVIORS_FILE,
    CLICK_PROBABILITIES_FILE,
    DAY,
    NEWS_FILE,
    NEWS_QUALITY_FILE,
    REPORT_FILE,
    USER_PROFILES_FILE,
    DemoDraw,
    draw_demo,
)
from training.data.demo.headlines import THIN_ABSTRACTS
from training.data.demo.taxonomy import OUTLETS
from training.data.schema import MIND_TIME_FORMAT

#: md5 of every file of ``DemoConfig.tiny()`` as generated before the realism features existed (numpy 2.4,
#: pyarrow's parquet writer of this environment). A change here changes every demo data version.
TINY_GOLDEN_MD5 = {
    BEHAVIORS_FILE: "921206bc36da0baac94fc97f7f0806ec",
    CLICK_PROBABILITIES_FILE: "b0194c0473eebea5a94f0458cce6f9e7",
    REPORT_FILE: "19b729e160f9c3f8769bc8784cfcd808",
    NEWS_FILE: "2646f236fd14e9c2bcddc23c8b03d141",
    NEWS_QUALITY_FILE: "4ddbc4a34ce3cedd1b705522baa86e88",
    USER_PROFILES_FILE: "db2641912fed475709c918b82b4f40d6",
}


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def _seconds(config: DemoConfig, mind_time: str) -> float:
    return (datetime.strptime(mind_time, MIND_TIME_FORMAT) - config.start).total_seconds()


@pytest.fixture(scope="module")
def realistic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoConfig, DemoDraw]:
    """A tiny dataset with every feature on at its intended value."""
    out = tmp_path_factory.mktemp("realistic")
    config = DemoConfig.tiny(**REALISM_ON)
    generate_demo(out, config)
    return out, config, draw_demo(config)


def test_default_off_output_is_byte_identical_to_the_golden_files(tmp_path):
    generate_demo(tmp_path, DemoConfig.tiny())
    got = {name: hashlib.md5((tmp_path / name).read_bytes()).hexdigest() for name in TINY_GOLDEN_MD5}
    assert got == TINY_GOLDEN_MD5


def test_realism_fields_appear_in_the_report_only_when_on(realistic):
    out, config, _ = realistic
    assert not set(REALISM_FIELDS) & set(DemoConfig.tiny().to_dict())
    report = json.loads((out / REPORT_FILE).read_text())
    assert set(REALISM_FIELDS) <= set(report["config"]) and "realism" in report["stats"]
    assert DemoConfig.from_dict(report["config"]) == config


def test_follow_ups_name_the_lead_entity_and_keyword_and_come_after_the_lead(realistic):
    out, config, draw = realistic
    news, quality = draw.news, draw.quality
    rows = _rows(out / NEWS_FILE)
    story = pq.read_table(out / NEWS_QUALITY_FILE).column("story").to_numpy()
    np.testing.assert_array_equal(story, news.story)
    assert 0.35 <= float((story >= 0).mean()) - len(news.story_keyword) / config.n_news <= 0.45  # follow-ups
    assert not (story[quality.spam] >= 0).any() and not (story[quality.duplicate_of >= 0] >= 0).any()
    for s, keyword in enumerate(news.story_keyword):
        members = np.flatnonzero(story == s)
        lead = members[np.argmin(news.publish[members])]
        assert members.size >= 2
        assert (news.publish[members[members != lead]] > news.publish[lead]).all()
        entity = ALL_ENTITIES[news.entity[lead]]
        assert {(rows[i][1], rows[i][2]) for i in members} == {(rows[lead][1], rows[lead][2])}
        for i in members:
            title = rows[i][3]
            assert keyword.lower() in title.lower(), (keyword, title)
            assert entity.text in title, (entity.text, title)
            assert entity.wikidata_id in {e["WikidataId"] for e in json.loads(rows[i][6])}
    leads = [np.flatnonzero(story == s)[np.argmin(news.publish[story == s])] for s in range(len(news.story_keyword))]
    assert np.all(np.diff(news.publish[leads]) >= 0)  # story ids follow the leads' publish times


def test_session_trigger_is_the_last_history_item_and_was_live(realistic):
    out, config, draw = realistic
    logged, news = draw.logged, draw.news
    rows = _rows(out / BEHAVIORS_FILE)
    assert 0.7 <= logged.session.mean() <= 0.9
    for i, (_, user_id, time, history, impressions) in enumerate(rows):
        u = int(user_id[1:]) - 1
        base = [f"N{n + 1}" for n in draw.hist_flat[draw.hist_offsets[u]:draw.hist_offsets[u + 1]]]
        items = history.split(" ") if history else []
        if not logged.session[i]:
            assert items == base
            continue
        trigger = int(logged.trigger[i])
        assert items == base + [f"N{trigger + 1}"]
        age = _seconds(config, time) - news.publish[trigger]
        assert 0 < age <= config.max_news_age_days * DAY
        assert f"N{trigger + 1}" not in {token.rsplit("-", 1)[0] for token in impressions.split(" ")}


def test_clicks_on_the_trigger_story_are_much_more_likely(tmp_path):
    def story_clicks(bonus: float) -> tuple[int, int, int, int]:
        draw = draw_demo(DemoConfig.tiny(**{**REALISM_ON, "story_click_bonus": bonus}))
        logged, story = draw.logged, draw.news.story
        imp = logged.impression_of_row
        rows = logged.session[imp]
        trigger = logged.trigger[imp][rows]
        same = (story[logged.news[rows]] == story[trigger]) & (story[trigger] >= 0)
        label = logged.label[rows]
        return int(label[same].sum()), int(same.sum()), int(label[~same].sum()), int((~same).sum())

    clicks, shown, other_clicks, other_shown = story_clicks(REALISM_ON["story_click_bonus"])
    ctr_story, ctr_other = clicks / shown, other_clicks / other_shown
    z = (clicks - shown * ctr_other) / np.sqrt(shown * ctr_other * (1 - ctr_other))
    assert z > 8 and ctr_story > 4 * ctr_other
    assert clicks / (clicks + other_clicks) >= 0.2
    off_clicks, off_shown, off_other_clicks, off_other_shown = story_clicks(0.0)
    assert ctr_story / ctr_other > 2 * (off_clicks / off_shown) / (off_other_clicks / off_other_shown)


def test_story_candidate_share_is_close_to_the_config(tmp_path):
    config = DemoConfig.tiny(n_news=1000, **REALISM_ON)
    report = generate_demo(tmp_path, config)
    assert DemoReport.from_json((tmp_path / REPORT_FILE).read_text()) == report
    share = report.stats["realism"]["triggers"]["all"]["pct_candidates_from_neighbourhood"] / 100
    # a little below the config: a trigger's neighbourhood may have fewer live news than slots
    assert config.story_candidate_share - 0.03 <= share <= config.story_candidate_share + 0.01

    draw = draw_demo(config)  # neighbourhood candidates share the trigger's category (story, entity or subcategory)
    logged, news = draw.logged, draw.news
    trigger = logged.trigger[logged.impression_of_row][logged.neighbourhood]
    assert (news.category[logged.news[logged.neighbourhood]] == news.category[trigger]).all()
    assert (logged.news[logged.neighbourhood] != trigger).all()


@pytest.mark.parametrize("hidden", [0.1, 0.25])
def test_hidden_variance_share_is_at_most_the_config(tmp_path, hidden):
    report = generate_demo(tmp_path, DemoConfig.tiny(visible_quality=True, hidden_quality_share=hidden))
    evidence = report.stats["realism"]["quality_evidence"]
    assert evidence["hidden_variance_share"] <= hidden + 1e-6
    assert [round(v) for v in report.stats["quality"]["pct_news_per_grade"].values()] == [10, 20, 30, 25, 15]


def test_perfect_text_ceiling_is_higher_with_visible_quality(tmp_path):
    def evidence(visible: bool) -> dict[str, float]:
        report = generate_demo(tmp_path / str(visible), DemoConfig.tiny(story_rate=0.4, visible_quality=visible))
        return report.stats["realism"]["quality_evidence"]

    on, off = evidence(True), evidence(False)
    assert off["hidden_variance_share"] > 0.7 and on["hidden_variance_share"] <= 0.25 + 1e-6
    assert on["perfect_text_judge_pairwise_accuracy"] > off["perfect_text_judge_pairwise_accuracy"] + 0.1


def test_visible_quality_shows_source_and_thin_bodies(realistic):
    out, _, draw = realistic
    rows = _rows(out / NEWS_FILE)
    truth = pq.read_table(out / NEWS_QUALITY_FILE).to_pydict()
    domains = {o.name: o.domain for o in OUTLETS}
    for row, source, thin, spam in zip(rows, truth["source"], truth["thin"], truth["spam"]):
        assert row[5].startswith(f"https://www.{domains[source]}.example/{row[1]}/") and row[5].endswith(".html")
        if thin:
            assert row[4] in ("", *THIN_ABSTRACTS) and row[7] == "[]"
        elif not spam:
            assert row[4] and row[4] not in THIN_ABSTRACTS
    authority = np.array(truth["authority"])
    thin = np.array(truth["thin"])
    assert thin[authority < 0.4].mean() > thin[authority > 0.7].mean()
    assert (authority[np.array(truth["spam"])] < 0.25).all()
    grade = np.array(truth["quality"])
    assert grade[authority > 0.7].mean() > grade[(authority < 0.4) & ~np.array(truth["spam"])].mean() + 0.5


def test_features_off_leave_the_quality_columns_alone(tmp_path):
    generate_demo(tmp_path, DemoConfig.tiny(session_rate=0.5))
    assert pq.read_table(tmp_path / NEWS_QUALITY_FILE).column_names == [
        "news_id", "quality", "clickbait", "spam", "duplicate_of"]
    assert all(r[5].startswith("https://assets.newsforge.example/") for r in _rows(tmp_path / NEWS_FILE))
