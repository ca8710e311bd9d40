"""The demo's news quality truth: clickbait, spam and near-duplicates, and the true grade of article pairs."""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.data.demo import DemoConfig, generate_demo
from training.data.demo.generator import CLICK_PROBABILITIES_FILE, NEWS_FILE, NEWS_QUALITY_FILE
from training.data.demo.headlines import CLICKBAIT_PREFIXES, CLICKBAIT_SUFFIXES, SPAM_TITLES
from training.data.demo.taxonomy import CATEGORIES
from training.data.mind_reader import read_news
from training.data.quality_truth import load_quality_truth, pair_quality

_TEMPLATE_MARKERS = re.compile(r"^(Top \d+ reasons|These \d+ things|Here are \d+ photos|The \d+ secrets|This one trick|"
                               r"You won't believe what)|tried this one trick")


def _topic(category: str) -> re.Pattern[str]:
    c = next(c for c in CATEGORIES if c.name == category)
    nouns = set(c.nouns).union(*c.subcategories.values())
    alternatives = "|".join(map(re.escape, sorted(nouns, key=len, reverse=True)))  # longest phrase first
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


def _has_marker(title: str) -> bool:
    return (title.startswith(CLICKBAIT_PREFIXES) or title.endswith(CLICKBAIT_SUFFIXES)
            or _TEMPLATE_MARKERS.search(title) is not None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("quality")
    generate_demo(out, DemoConfig.tiny())
    news, _ = read_news(out / NEWS_FILE)
    truth = load_quality_truth(out)
    assert truth is not None
    return out, news, truth.merge(news, on="news_id", validate="1:1")


def test_truth_file_schema_and_coverage(demo):
    out, news, _ = demo
    table = pq.read_table(out / NEWS_QUALITY_FILE)
    assert table.schema.names == ["news_id", "quality", "clickbait", "spam", "duplicate_of"]
    assert [f.type for f in table.schema] == [pa.string(), pa.int8(), pa.float64(), pa.bool_(), pa.string()]
    truth = table.to_pandas()
    assert truth["news_id"].tolist() == news["news_id"].tolist()  # every news, in order
    assert set(truth["quality"]) == {0, 1, 2, 3, 4}
    shares = truth["quality"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(shares, [0.10, 0.20, 0.30, 0.25, 0.15], atol=0.01)
    assert truth["clickbait"].between(0, 1).all()


def test_clickbait_is_clicked_more_and_graded_lower(demo):
    out, _, m = demo
    probs = pd.read_parquet(out / CLICK_PROBABILITIES_FILE).merge(m[["news_id", "clickbait"]], on="news_id")
    bait = probs["clickbait"] >= 0.5
    assert probs.loc[bait, "probability"].mean() > 1.3 * probs.loc[~bait, "probability"].mean()
    bait_news = m["clickbait"] >= 0.5
    assert m.loc[bait_news, "quality"].mean() < m.loc[~bait_news, "quality"].mean() - 0.8


def test_titles_carry_noisy_clickbait_markers(demo):
    _, _, m = demo
    m = m[~m["spam"]]
    marked = m["title"].map(_has_marker)
    high, low = m["clickbait"] >= 0.5, m["clickbait"] < 0.2
    assert marked[high].mean() > marked[low].mean() + 0.3
    assert marked[low].any() and not marked[high].all()  # noisy both ways


def test_spam_is_grade_zero_and_off_topic(demo):
    _, _, m = demo
    spam = m[m["spam"]]
    assert 3 <= len(spam) <= 25 and (spam["quality"] == 0).all() and (spam["duplicate_of"] == "").all()
    for row in spam.itertuples():
        assert not _topic(row.category).search(f"{row.title} {row.abstract}"), row
        others = (c.name for c in CATEGORIES if c.name != row.category)
        assert row.title in SPAM_TITLES or any(_topic(o).search(row.title) for o in others), row
        assert row.title_entities == "[]"
    normal = m[~m["spam"]]
    on_topic = [bool(_topic(r.category).search(f"{r.title} {r.abstract}")) for r in normal.itertuples()]
    assert np.mean(on_topic) > 0.95


def test_near_duplicates_copy_an_existing_title(demo):
    _, _, m = demo
    by_id = m.set_index("news_id")
    dups = m[m["duplicate_of"] != ""]
    assert len(dups) >= 5
    for row in dups.itertuples():
        source = by_id.loc[row.duplicate_of]
        assert not source["spam"] and source["duplicate_of"] == ""
        assert source["category"] == row.category and source["subcategory"] == row.subcategory
        assert row.title != source["title"]
        assert difflib.SequenceMatcher(None, row.title.split(), source["title"].split()).ratio() >= 0.7, row.title
    originals = m[(m["duplicate_of"] == "") & ~m["spam"]]
    assert dups["quality"].mean() < originals["quality"].mean()


def test_load_quality_truth_is_none_without_the_file(tmp_path):
    assert load_quality_truth(tmp_path) is None


def test_pair_quality_by_hand():
    news = pd.DataFrame({"news_id": ["N1", "N2", "N3"], "category": ["sports", "sports", "finance"],
                         "title": ["a", "b", "c"]})
    truth = pd.DataFrame({"news_id": ["N3", "N1", "N2"], "quality": np.array([4, 3, 0], dtype=np.int8),
                          "clickbait": [0.1, 0.2, 0.9], "spam": [False, False, True], "duplicate_of": ["", "", ""]})
    got = pair_quality(truth, news, ["N1", "N1", "N3", "N2", "N3", "N2"], ["N2", "N3", "N1", "N1", "N2", "N2"])
    # same category: the candidate's grade; other category: one less, clipped at 0
    np.testing.assert_array_equal(got, [0, 3, 2, 3, 0, 0])
    assert got.dtype == np.int8
    with pytest.raises(ValueError, match="N9"):
        pair_quality(truth, news, ["N1", "N9"], ["N2", "N3"])
    with pytest.raises(ValueError, match="N7"):
        pair_quality(truth, news, ["N1"], ["N7"])
    with pytest.raises(ValueError, match="length"):
        pair_quality(truth, news, ["N1", "N2"], ["N3"])


def test_pair_quality_on_the_demo(demo):
    _, news, m = demo
    truth = m[["news_id", "quality", "clickbait", "spam", "duplicate_of"]]
    rng = np.random.default_rng(0)
    trig, cand = rng.choice(m["news_id"], 500), rng.choice(m["news_id"], 500)
    got = pair_quality(truth, news, trig, cand)
    by_id = m.set_index("news_id")
    same = by_id.loc[trig, "category"].to_numpy() == by_id.loc[cand, "category"].to_numpy()
    grade = by_id.loc[cand, "quality"].to_numpy()
    np.testing.assert_array_equal(got, np.where(same, grade, np.maximum(grade - 1, 0)))


# ----------------------------------------------------------------------------- visible part, perfect-text ceiling
def test_visible_quality_is_the_generators_visible_part(tmp_path):
    import json
    import shutil

    from training.data.demo.config import REALISM_ON
    from training.data.demo.generator import REPORT_FILE, draw_demo
    from training.data.quality_truth import visible_quality

    config = DemoConfig.tiny(seed=3, **REALISM_ON)
    generate_demo(tmp_path / "on", config)
    truth = load_quality_truth(tmp_path / "on")
    visible = visible_quality(tmp_path / "on", truth)
    np.testing.assert_array_equal(visible.to_numpy(), draw_demo(config).quality.visible)
    assert visible.index.tolist() == truth["news_id"].tolist()
    # a report of another dataset is an error; no report, no visible part
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "on", other)
    report = json.loads((other / REPORT_FILE).read_text())
    report["config"]["seed"] = 4
    (other / REPORT_FILE).write_text(json.dumps(report))
    with pytest.raises(ValueError, match="redraws grades that differ"):
        visible_quality(other, truth)
    (other / REPORT_FILE).unlink()
    assert visible_quality(other, truth) is None


def test_perfect_text_scores_bin_the_visible_part_and_take_off_the_off_topic_grade():
    from training.data.quality_truth import perfect_text_scores

    # 10 graded news + 1 spam: rank bins 10/20/30/25/15 % of 11, spam filling grade 0 -> 1,1,2,2,2,2,3,3,4,4.
    ids = [f"N{i}" for i in range(1, 12)]
    truth = pd.DataFrame({"news_id": ids, "quality": 0, "clickbait": 0.0, "spam": [False] * 10 + [True],
                          "duplicate_of": ""})
    visible = pd.Series(np.r_[np.arange(10.0), 100.0], index=ids)   # spam's visible value is ignored
    news = pd.DataFrame({"news_id": ids + ["T"], "category": ["a"] * 5 + ["b"] * 6 + ["a"]})
    scores = perfect_text_scores(visible, truth, news, ["T"] * 11, ids)
    grade = np.array([1, 1, 2, 2, 2, 2, 3, 3, 4, 4]) - np.r_[np.zeros(5), np.ones(5)]   # N6..N10 off-topic
    np.testing.assert_array_equal(np.floor(scores[:10]), np.clip(grade, 0, 4))
    assert scores[10] == -1.0 and (scores[:10] >= 0).all()
    assert scores[1] > scores[0] and scores[4] > scores[3]    # ties broken by the visible part
    with pytest.raises(ValueError, match="unknown candidate"):
        perfect_text_scores(visible, truth, news, ["T"], ["N99"])
