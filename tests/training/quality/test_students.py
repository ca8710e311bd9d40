"""The student recipes: the click-only start, the distilled student and the direct baseline (both heads)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from builders.prec import synthetic_news

from training.cross_encoder import CrossEncoderConfig, TrainConfig, score_pairs
from training.quality.evaluation import quality_ranking_metrics
from training.quality.students import (
    TeacherTargets,
    click_only_student,
    direct_student,
    judged_with_clicks,
    multitask_student,
    served_metrics,
)

ARCH = CrossEncoderConfig(backbone="scratch", hidden_size=32, num_heads=2, intermediate_size=64, max_len=24,
                          views=("title",))
TRAIN = TrainConfig(batch_size=16, lr=3e-3, epochs=2, progress_bar=False, torch_threads=1, seed=3)


@pytest.fixture(scope="module")
def news() -> pd.DataFrame:
    return synthetic_news(60, n_categories=3, seed=2)


@pytest.fixture(scope="module")
def prec_dir(tmp_path_factory, news):
    from training.prec.config import NewsPretrainConfig
    from training.prec.news_pretrainer import train_news_encoder

    config = NewsPretrainConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_len=32,
                                vocab_size=300, min_frequency=1, batch_size=16, max_epochs=1, progress_bar=False,
                                torch_threads=1)
    return train_news_encoder(news, config, tmp_path_factory.mktemp("prec")).encoder_dir


@pytest.fixture(scope="module")
def targets(news) -> TeacherTargets:
    rng = np.random.default_rng(0)
    ids = news["news_id"].to_numpy()
    pairs = pd.DataFrame({"trigger_id": rng.choice(ids, 160), "candidate_id": rng.choice(ids, 160)})
    same = (news.set_index("news_id").loc[pairs["trigger_id"], "category"].to_numpy()
            == news.set_index("news_id").loc[pairs["candidate_id"], "category"].to_numpy())
    click = np.where(same, 2.0, -1.0).astype(np.float32)
    quality = np.stack([np.where(same, k, 4 - k) for k in range(5)], axis=1).astype(np.float32) + 7.0
    return TeacherTargets(pairs, click, quality)


@pytest.fixture(scope="module")
def start(prec_dir, news, targets):
    return click_only_student(ARCH, prec_dir, news, targets, TRAIN)


def test_click_only_student_learns_the_click_term_alone(start):
    fit = start.fit
    assert set(fit.part_weights) == {"click"} and fit.epoch_parts["click"][-1] < fit.epoch_parts["click"][0]


def test_judged_pairs_get_their_logged_click_rate():
    labels = pd.DataFrame({"trigger_id": ["A", "A", "B"], "candidate_id": ["X", "Y", "Z"], "score": [3.0, 1.0, 2.0]})
    logged = pd.DataFrame({"trigger_id": ["A", "A", "A", "C"], "candidate_id": ["X", "X", "Y", "Z"],
                           "clicked": [1, 0, 0, 1], "day": ["d1", "d2", "d1", "d1"]})
    out = judged_with_clicks(labels, logged)
    assert out["clicked"].tolist()[:2] == [0.5, 0.0] and np.isnan(out["clicked"].iloc[2])   # B-Z never logged
    assert out[["trigger_id", "candidate_id", "score"]].equals(labels)
    with pytest.raises(ValueError, match=r"pairs lacks column\(s\) \['clicked'\]"):
        judged_with_clicks(labels, logged.drop(columns=["clicked"]))


def test_direct_baseline_fine_tunes_both_heads_from_the_same_start(start, news, targets):
    judged = targets.pairs.iloc[:64].assign(score=np.clip(targets.quality[:64, 4] - 7.0, 0, 4),
                                            clicked=(targets.click[:64] > 0).astype(float))
    before = {k: v.clone() for k, v in start.model.state_dict().items()}
    direct = direct_student(start.model, news, judged, TRAIN)
    distilled = multitask_student(start.model, news, targets, TRAIN)
    for name, tensor in start.model.state_dict().items():   # both arms train copies of one start
        assert torch.equal(tensor, before[name]), name
    for arm in (direct, distilled):
        assert set(arm.fit.part_weights) == set(arm.fit.epoch_parts) == {"click", "quality"}
        assert arm.fit.part_weights["click"] * arm.fit.initial_parts["click"] == pytest.approx(1.0)
        assert arm.fit.part_weights["quality"] * arm.fit.initial_parts["quality"] == pytest.approx(1.0)
    # the direct arm's click term is a cross-entropy on logged clicks, not a teacher match: its initial value is
    # the click-only student's BCE on the labels
    scores = score_pairs(start.model, news, judged["trigger_id"], judged["candidate_id"])
    clicked = torch.tensor(judged["clicked"].to_numpy(), dtype=torch.float32)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(scores.click), clicked)
    assert direct.fit.initial_parts["click"] == pytest.approx(bce.item(), rel=1e-4)   # 4 batches of 16 = all 64
    assert direct.fit.steps == 2 * 4 and distilled.fit.steps == 2 * 10   # same epochs, each on its own pairs
    with pytest.raises(ValueError, match="clicked"):
        direct_student(start.model, news, judged.drop(columns=["clicked"]), TRAIN)


class Served:
    """A stand-in for a loaded ``ranking_student`` pyfunc: fixed scores, and the frame it was asked about."""

    def __init__(self, scores: list[float]):
        self.scores, self.asked = scores, None

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.asked = frame
        return pd.DataFrame({"score": self.scores})


def test_served_metrics_score_the_pairs_and_name_a_version_with_non_finite_scores():
    pairs = pd.DataFrame({"impression_id": [1, 1, 1, 2, 2], "trigger_id": ["T", "T", "T", "U", "U"],
                          "candidate_id": ["A", "B", "C", "A", "D"], "clicked": [0, 1, 0, 1, 0],
                          "quality": [1.0, 4.0, 2.0, 3.0, 0.0]})
    model = Served([0.1, 0.9, 0.5, 0.8, 0.2])   # the clicked, best pair first in both impressions
    metrics = served_metrics(model, pairs, "7")
    assert list(model.asked.columns) == ["trigger_id", "candidate_id"]
    assert metrics == quality_ranking_metrics(pairs, np.array(model.scores))
    assert metrics["click_ndcg5"] == pytest.approx(1.0)
    assert served_metrics(Served([0.9, 0.1, 0.5, 0.2, 0.8]), pairs, "7")["click_ndcg5"] < 1.0
    with pytest.raises(ValueError, match="ranking_student version 7 returned 1 non-finite scores"):
        served_metrics(Served([0.1, np.nan, 0.5, 0.8, 0.2]), pairs, "7")
