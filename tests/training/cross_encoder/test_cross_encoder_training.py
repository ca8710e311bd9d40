"""Click teacher, quality teacher and distilled student on a toy where "same category" is the signal."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from training.cross_encoder import (
    CrossEncoderConfig, TrainConfig, build_cross_encoder, distill, load_cross_encoder, save_cross_encoder,
    score_pairs, train_click, train_quality,
)
from training.cross_encoder.losses import distillation_loss, quality_ce_loss, quality_sce_loss

N_TRAIN_NEWS = 60  # toy news T0..T59 train the models; T60..T89 are held out


def toy_triplets(news: pd.DataFrame, n: int, seed: int, ids: np.ndarray | None = None) -> pd.DataFrame:
    """(trigger, clicked, not clicked): the clicked news shares the trigger's category, the other does not."""
    rng = np.random.default_rng(seed)
    category = dict(zip(news["news_id"], news["category"]))
    by_category = {c: g["news_id"].to_numpy() for c, g in news.groupby("category")}
    ids = news["news_id"].to_numpy()[:N_TRAIN_NEWS] if ids is None else ids
    rows = []
    for trigger in rng.choice(ids, size=n):
        other = rng.choice([c for c in by_category if c != category[trigger]])
        rows.append((trigger, rng.choice(by_category[category[trigger]]), rng.choice(by_category[other])))
    return pd.DataFrame(rows, columns=["trigger_id", "pos_id", "neg_id"])


def toy_judged_pairs(news: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Judge scores in [0, 4]: 2.5-4 for same-category pairs, 0-1.5 otherwise."""
    rng = np.random.default_rng(seed)
    ids = news["news_id"].to_numpy()[:N_TRAIN_NEWS]
    trig, cand = rng.choice(ids, size=n), rng.choice(ids, size=n)
    category = dict(zip(news["news_id"], news["category"]))
    same = np.array([category[t] == category[c] for t, c in zip(trig, cand)])
    score = np.where(same, rng.uniform(2.5, 4.0, n), rng.uniform(0.0, 1.5, n)).round(1)
    return pd.DataFrame({"trigger_id": trig, "candidate_id": cand, "score": score})


def tiny_student(prec_dir):
    return build_cross_encoder(CrossEncoderConfig(backbone="scratch", hidden_size=32, num_heads=2,
                                                  intermediate_size=64, max_len=24, views=("title",)), prec_dir)


@pytest.fixture(scope="module")
def click_teacher(prec_dir, toy_news):
    model = build_cross_encoder(CrossEncoderConfig(backbone="prec", max_len=32), prec_dir)
    triplets = toy_triplets(toy_news, 400, seed=0).assign(weight=1.0)
    result = train_click(model, toy_news, triplets,
                         TrainConfig(batch_size=16, lr=1e-2, epochs=5, progress_bar=False, torch_threads=1))
    return model, result


@pytest.fixture(scope="module")
def distill_set(click_teacher, toy_news):
    """Unlabelled pairs with the click teacher's logit and synthetic quality logits as targets."""
    teacher, _ = click_teacher
    rng = np.random.default_rng(5)
    ids = toy_news["news_id"].to_numpy()
    pairs = pd.DataFrame({"trigger_id": rng.choice(ids, 300), "candidate_id": rng.choice(ids, 300)})
    click = score_pairs(teacher, toy_news, pairs["trigger_id"], pairs["candidate_id"]).click
    quality = np.stack([click * k / 4 for k in range(5)], axis=1).astype(np.float32)
    return pairs, click, quality


def test_click_teacher_learns_the_toy(click_teacher):
    model, result = click_teacher
    assert not model.training  # eval after training
    assert result.steps == 5 * 25 and result.n_examples == 400 and len(result.epoch_losses) == 5
    assert result.train_loss == result.epoch_losses[-1] < 0.5 * result.epoch_losses[0]
    assert result.seconds > 0 and result.pairs_per_second > 0


def test_click_teacher_ranks_same_category_candidates_first(click_teacher, toy_news):
    model, _ = click_teacher
    held_out = toy_news.iloc[N_TRAIN_NEWS:]
    trig = np.repeat(held_out["news_id"].to_numpy()[:15], len(toy_news))
    cand = np.tile(toy_news["news_id"].to_numpy(), 15)
    click = score_pairs(model, toy_news, trig, cand).click.reshape(15, -1)
    category = dict(zip(toy_news["news_id"], toy_news["category"]))
    same = np.array([category[t] == category[c] for t, c in zip(trig, cand)]).reshape(15, -1)
    # per trigger: the share of (same-category, other) candidate pairs ranked the right way round (AUC)
    auc = [(row[hit][:, None] > row[~hit][None, :]).mean() for row, hit in zip(click, same)]
    assert np.mean(auc) > 0.95 and min(auc) > 0.8, auc


def test_click_weights_and_triplet_errors(prec_dir, toy_news):
    model = tiny_student(prec_dir)
    triplets = toy_triplets(toy_news, 8, seed=1)
    config = TrainConfig(batch_size=4, max_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['neg_id'\]"):
        train_click(model, toy_news, triplets.drop(columns=["neg_id"]), config)
    bad = triplets.copy()
    bad.loc[2, "pos_id"] = "GHOST1"
    with pytest.raises(ValueError, match=r"pos_id: 1 id\(s\) not in the news table, e.g. \['GHOST1'\]"):
        train_click(model, toy_news, bad, config)
    with pytest.raises(ValueError, match="weight must be > 0"):
        train_click(model, toy_news, triplets.assign(weight=0.0), config)
    with pytest.raises(ValueError, match="empty"):
        train_click(model, toy_news, triplets.iloc[:0], config)
    result = train_click(model, toy_news, triplets, config)  # no weight column: every triplet weighs 1
    assert result.steps == 1 and result.pairs_per_second > 0


@pytest.fixture(scope="module")
def click_teacher_dir(click_teacher, tmp_path_factory):
    directory = tmp_path_factory.mktemp("click_teacher")
    save_cross_encoder(click_teacher[0], directory)
    return directory


@pytest.mark.parametrize("loss", ["ce", "sce"])
def test_quality_teacher_lowers_its_loss(click_teacher_dir, toy_news, loss):
    # fine-tuned from the click teacher's weights (which already tell same-category pairs apart)
    model = load_cross_encoder(click_teacher_dir)
    pairs = toy_judged_pairs(toy_news, 320, seed=2)
    loss_fn = {"ce": quality_ce_loss, "sce": quality_sce_loss}[loss]

    def evaluated() -> float:
        logits = score_pairs(model, toy_news, pairs["trigger_id"], pairs["candidate_id"]).quality_logits
        return loss_fn(torch.from_numpy(logits), torch.tensor(pairs["score"].to_numpy())).item()

    before = evaluated()
    result = train_quality(model, toy_news, pairs, loss,
                           TrainConfig(batch_size=32, lr=3e-3, epochs=3, progress_bar=False, torch_threads=1))
    after = evaluated()
    assert result.steps == 30 and result.epoch_losses[-1] < result.epoch_losses[0]
    assert after < 0.7 * before, (before, after)


def test_quality_errors(prec_dir, toy_news):
    model = tiny_student(prec_dir)
    pairs = toy_judged_pairs(toy_news, 10, seed=3)
    config = TrainConfig(max_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match="loss="):
        train_quality(model, toy_news, pairs, "mse", config)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        train_quality(model, toy_news, pairs.assign(score=5.0), "sce", config)
    with pytest.raises(ValueError, match="score"):
        train_quality(model, toy_news, pairs.drop(columns=["score"]), "ce", config)


def distill_loss_of(model, news, pairs, click, quality) -> float:
    """Eval-mode distillation loss (click MSE + quality MSE) over all pairs."""
    scores = score_pairs(model, news, pairs["trigger_id"], pairs["candidate_id"])
    return distillation_loss(torch.from_numpy(scores.click), torch.from_numpy(scores.quality_logits),
                             torch.from_numpy(click), torch.from_numpy(quality)).total.item()


@pytest.fixture(scope="module")
def distilled(prec_dir, toy_news, distill_set):
    """A tiny student distilled from the click teacher (+ synthetic quality logits); its loss before and after."""
    pairs, click, quality = distill_set
    student = tiny_student(prec_dir)
    before = distill_loss_of(student, toy_news, pairs, click, quality)
    result = distill(student, toy_news, pairs, click, quality,
                     TrainConfig(batch_size=16, lr=3e-3, epochs=16, progress_bar=False, torch_threads=1),
                     click_weight=2.0)
    return student, result, before, distill_loss_of(student, toy_news, pairs, click, quality)


def test_distilled_student_lowers_both_mse_parts(distilled):
    _, result, before, after = distilled
    assert after < 0.5 * before, (before, after)
    assert result.steps == 16 * 19 and result.epoch_losses[-1] < result.epoch_losses[0]
    for part in ("click", "quality"):
        assert result.epoch_parts[part][-1] < result.epoch_parts[part][0]
    # the reported loss is 2 * click MSE + 1 * quality MSE
    assert result.epoch_losses[0] == pytest.approx(2 * result.epoch_parts["click"][0] + result.epoch_parts["quality"][0],
                                                   rel=1e-5)


def test_distill_errors(prec_dir, toy_news, distill_set):
    pairs, click, quality = distill_set
    student = tiny_student(prec_dir)
    config = TrainConfig(max_steps=1, progress_bar=False)
    with pytest.raises(ValueError, match="teacher_click has shape"):
        distill(student, toy_news, pairs, click[:-1], quality, config)
    with pytest.raises(ValueError, match="teacher_quality has shape"):
        distill(student, toy_news, pairs, click, quality[:, :3], config)
    with pytest.raises(ValueError, match="candidate_id"):
        distill(student, toy_news, pairs.rename(columns={"candidate_id": "cand"}), click, quality, config)


def test_warm_start_continues_from_the_saved_student(toy_news, distill_set, distilled, tmp_path):
    pairs, click, quality = distill_set
    student, first, fresh_loss, trained_loss = distilled
    save_cross_encoder(student, tmp_path / "student_v1", extra={"round": 1})
    warm = load_cross_encoder(tmp_path / "student_v1")
    for (name, saved), loaded in zip(student.state_dict().items(), warm.state_dict().values()):
        assert torch.equal(saved, loaded), name
    # the reloaded student starts exactly where the first round ended ...
    assert distill_loss_of(warm, toy_news, pairs, click, quality) == pytest.approx(trained_loss, rel=1e-6)
    # ... and a second (continual) round trains on from there instead of starting over
    second = distill(warm, toy_news, pairs, click, quality,
                     TrainConfig(batch_size=16, lr=1e-3, epochs=2, seed=7, progress_bar=False, torch_threads=1),
                     click_weight=2.0)
    assert second.steps == 2 * 19
    assert second.epoch_losses[0] < 0.5 * first.epoch_losses[0]
    assert distill_loss_of(warm, toy_news, pairs, click, quality) < 0.5 * fresh_loss


def test_training_is_deterministic_and_restores_threads(prec_dir, toy_news, distill_set):
    pairs, click, quality = distill_set
    config = TrainConfig(batch_size=8, lr=1e-3, max_steps=3, epochs=2, progress_bar=False, torch_threads=2, seed=3)
    threads = torch.get_num_threads()
    runs = []
    for _ in range(2):
        model = tiny_student(prec_dir)
        model.dropout.p = 0.5  # dropout on: its randomness is seeded too
        result = distill(model, toy_news, pairs, click, quality, config)
        assert torch.get_num_threads() == threads and result.steps == 3
        runs.append((model.state_dict(), result.epoch_losses))
    assert runs[0][1] == runs[1][1]
    for name, tensor in runs[0][0].items():
        assert torch.equal(tensor, runs[1][0][name]), name
