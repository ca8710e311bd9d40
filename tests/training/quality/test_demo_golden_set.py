"""The demo's golden set: distinct logged pairs graded by the generator's truth, with the perfect-text ceiling
where the generator's report is at hand (training.quality.golden_set.demo_golden_set)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data.demo import DemoConfig, generate_demo
from training.data.demo.generator import NEWS_FILE, NEWS_QUALITY_FILE
from training.data.mind_reader import read_news
from training.data.prepared import BehaviorLog
from training.data.quality_truth import load_quality_truth, pair_quality, perfect_text_scores, visible_quality
from training.quality.golden_set import GOLDEN_COLUMNS, demo_golden_set


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("golden")
    generate_demo(out, DemoConfig.tiny())
    news, _ = read_news(out / NEWS_FILE)
    truth = load_quality_truth(out)
    assert truth is not None
    return out, news, truth


def two_impressions(news: pd.DataFrame) -> BehaviorLog:
    """Impressions 1 and 2, both read N1 (the newest catalogue item of their histories) and show the same 60
    candidates; X1 is outside the catalogue."""
    candidates = news["news_id"].iloc[1:61].tolist() + ["X1"]
    impressions = pd.DataFrame({"impression_id": np.repeat([1, 2], len(candidates)), "news_id": candidates * 2,
                                "label": 0, "day": "2019-11-10", "position": list(range(len(candidates))) * 2})
    histories = pd.DataFrame({"impression_id": [1, 2], "day": "2019-11-10", "history": [["N1"], ["N5", "N1", "X2"]]})
    return BehaviorLog(impressions, histories)


def test_golden_pairs_are_distinct_logged_pairs_labelled_by_their_true_grade(demo):
    raw, news, truth = demo
    golden = demo_golden_set(two_impressions(news), news, raw, truth, size=20, seed=1)
    assert list(golden.columns) == list(GOLDEN_COLUMNS) and len(golden) == 20
    assert (golden["trigger_id"] == "N1").all() and golden["candidate_id"].is_unique
    assert golden["candidate_id"].isin(news["news_id"].iloc[1:61]).all()
    grades = pair_quality(truth, news, golden["trigger_id"], golden["candidate_id"])
    assert golden["grade"].tolist() == grades.tolist()
    assert ((golden["label"] == 1) == (golden["grade"] >= 3)).all() and ((golden["label"] == 0) == (grades <= 1)).all()
    assert (golden["label"] == 1).sum() == 10


def test_the_ceiling_scores_are_the_perfect_text_judges_and_need_the_report(demo, tmp_path):
    raw, news, truth = demo
    golden = demo_golden_set(two_impressions(news), news, raw, truth, size=20, seed=1)
    expected = perfect_text_scores(visible_quality(raw, truth), truth, news, golden["trigger_id"],
                                   golden["candidate_id"])
    np.testing.assert_allclose(golden["perfect_text_score"].to_numpy(), expected)
    shutil.copy(raw / NEWS_QUALITY_FILE, tmp_path / NEWS_QUALITY_FILE)   # the truth without demo_report.json
    without = demo_golden_set(two_impressions(news), news, tmp_path, truth, size=20, seed=1)
    assert without["perfect_text_score"].isna().all()
    pd.testing.assert_frame_equal(without.drop(columns="perfect_text_score"),
                                  golden.drop(columns="perfect_text_score"))
