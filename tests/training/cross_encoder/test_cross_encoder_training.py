"""Click teacher, quality teacher and distilled student on a toy where "same category" is the signal."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from training.cross_encoder import (
    CrossEncoderConfig,
    TrainConfig,
    build_cross_encoder,
    distill,
    load_cross_encoder,
    save_cross_encoder,
    score_pairs,
    train_click,
    train_judged,
    train_quality,
)
from training.cross_encoder.losses import distillation_loss, pairwise_softmax_loss, quality_ce_loss, quality_sce_loss
from training.cross_encoder.train import fit

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
    # the reported loss is w_click * click MSE + w_quality * quality MSE, the weights balanced before training
    w = result.part_weights
    assert result.epoch_losses[0] == pytest.approx(w["click"] * result.epoch_parts["click"][0]
                                                   + w["quality"] * result.epoch_parts["quality"][0], rel=1e-5)


@pytest.mark.parametrize("click_weight", [1.0, 2.0])
def test_both_terms_stand_in_the_configured_ratio_at_step_0(prec_dir, toy_news, distill_set, click_weight):
    """Four batches of 80 cover all 300 pairs, so the terms measured before training are the full-set losses of
    the fresh student, computed here independently."""
    pairs, click, quality = distill_set
    student = tiny_student(prec_dir)
    scores = score_pairs(student, toy_news, pairs["trigger_id"], pairs["candidate_id"])
    expected = distillation_loss(torch.from_numpy(scores.click), torch.from_numpy(scores.quality_logits),
                                 torch.from_numpy(click), torch.from_numpy(quality))
    result = distill(student, toy_news, pairs, click, quality,
                     TrainConfig(batch_size=80, max_steps=1, progress_bar=False, torch_threads=1),
                     click_weight=click_weight)
    assert result.initial_parts["click"] == pytest.approx(expected.click.item(), rel=1e-4)
    assert result.initial_parts["quality"] == pytest.approx(expected.quality.item(), rel=1e-4)
    weighted = {k: result.part_weights[k] * result.initial_parts[k] for k in ("click", "quality")}
    assert weighted["click"] == pytest.approx(click_weight) and weighted["quality"] == pytest.approx(1.0)
    # unbalanced, the raw terms differ by far more than the ratio: the balancing is doing the work
    assert not 0.5 < expected.click.item() / expected.quality.item() < 2


def test_click_only_distillation_has_no_quality_weight(prec_dir, toy_news, distill_set):
    pairs, click, quality = distill_set
    result = distill(tiny_student(prec_dir), toy_news, pairs, click, quality,
                     TrainConfig(batch_size=32, max_steps=2, progress_bar=False, torch_threads=1), quality_weight=0.0)
    assert set(result.part_weights) == {"click"} and result.part_weights["click"] * result.initial_parts["click"] == \
        pytest.approx(1.0)


def _held_out_loss(model, news, triplets) -> float:
    pos = score_pairs(model, news, triplets["trigger_id"], triplets["pos_id"]).click
    neg = score_pairs(model, news, triplets["trigger_id"], triplets["neg_id"]).click
    return pairwise_softmax_loss(torch.from_numpy(pos), torch.from_numpy(neg)).item()


@pytest.mark.parametrize("patience, stopped_after", [(1, 3), (2, 4)])
def test_fit_stops_after_patience_epochs_and_restores_the_best_epoch(prec_dir, patience, stopped_after):
    """A scripted held-out loss (0.9, 0.5, 0.6, 0.7, 0.4, ...): lowest at epoch 2 until patience runs out."""
    model = tiny_student(prec_dir)
    param = next(p for p in model.parameters() if p.ndim == 2)
    scripted, snapshots = iter([0.9, 0.5, 0.6, 0.7, 0.4, 0.3]), []

    def validate() -> dict[str, float]:
        snapshots.append(param.detach().clone())
        return {"loss": next(scripted)}

    def step(rows):
        return (param ** 2).mean() * len(rows) ** 0, {}

    result = fit(model, np.full(20, 8), step, TrainConfig(batch_size=10, lr=1e-2, epochs=6, patience=patience,
                                                          progress_bar=False), "scripted", validate=validate)
    assert len(result.epoch_losses) == stopped_after and result.held_out["loss"] == (0.9, 0.5, 0.6, 0.7)[:stopped_after]
    assert result.best_epoch == 2 and result.steps == 2 * stopped_after
    assert torch.equal(param, snapshots[1]) and not torch.equal(param, snapshots[-1])


def test_click_teacher_stops_early_on_a_day_that_rewards_the_opposite(click_teacher_dir, toy_news):
    """Warm from the trained click teacher, the held-out triplets reward the other category, so training makes
    their loss worse before long: it stops one epoch (patience 1) after its best epoch, whose weights it keeps."""
    model = load_cross_encoder(click_teacher_dir)
    reversed_ = toy_triplets(toy_news, 60, seed=9).rename(columns={"pos_id": "neg_id", "neg_id": "pos_id"})
    result = train_click(model, toy_news, toy_triplets(toy_news, 160, seed=3),
                         TrainConfig(batch_size=16, lr=1e-2, epochs=8, progress_bar=False, torch_threads=1),
                         early_stopping=reversed_)
    losses = result.held_out["loss"]
    assert len(result.epoch_losses) == len(losses) < 8, losses
    assert result.best_epoch == int(np.argmin(losses)) + 1 == len(losses) - 1 and losses[-1] > losses[-2]
    assert max(result.held_out["accuracy"]) < 0.3
    assert _held_out_loss(model, toy_news, reversed_) == pytest.approx(losses[result.best_epoch - 1], rel=1e-4)


def test_fit_keeps_the_last_epoch_while_the_held_out_loss_falls(prec_dir, toy_news):
    model = tiny_student(prec_dir)
    param = next(p for p in model.parameters() if p.ndim == 2)
    scripted = iter([0.9, 0.8, 0.7])
    result = fit(model, np.full(20, 8), lambda rows: ((param ** 2).mean(), {}),
                 TrainConfig(batch_size=10, lr=1e-2, epochs=3, progress_bar=False), "scripted",
                 validate=lambda: {"loss": next(scripted)})
    assert result.best_epoch == 3 and len(result.epoch_losses) == 3 and result.held_out["loss"] == (0.9, 0.8, 0.7)
    assert fit(model, np.full(20, 8), lambda rows: ((param ** 2).mean(), {}),
               TrainConfig(batch_size=10, epochs=1, progress_bar=False), "no early stopping").best_epoch is None
    with pytest.raises(ValueError, match="early_stopping lacks"):
        train_click(model, toy_news, toy_triplets(toy_news, 8, seed=1), TrainConfig(max_steps=1, progress_bar=False),
                    early_stopping=toy_triplets(toy_news, 8, seed=1).drop(columns=["neg_id"]))


def test_judged_training_uses_the_click_and_the_quality_loss(prec_dir, toy_news):
    pairs = toy_judged_pairs(toy_news, 240, seed=4)
    category = dict(zip(toy_news["news_id"], toy_news["category"]))
    same = np.array([category[t] == category[c] for t, c in zip(pairs["trigger_id"], pairs["candidate_id"])])
    pairs["clicked"] = same.astype(float) * 0.5
    pairs.loc[:9, "clicked"] = np.nan   # never logged: left out of the click term only
    model = tiny_student(prec_dir)
    result = train_judged(model, toy_news, pairs,
                          TrainConfig(batch_size=32, lr=3e-3, epochs=6, progress_bar=False, torch_threads=1))
    assert set(result.part_weights) == set(result.epoch_parts) == {"click", "quality"}
    for term in ("click", "quality"):   # both terms are weighted in and both fall
        assert result.part_weights[term] * result.initial_parts[term] == pytest.approx(1.0)
        assert result.epoch_parts[term][-1] < 0.95 * result.epoch_parts[term][0], (term, result.epoch_parts[term])
    only_quality = train_judged(tiny_student(prec_dir), toy_news, pairs, TrainConfig(max_steps=1, progress_bar=False),
                                click_weight=0.0)
    assert set(only_quality.part_weights) == {"quality"}
    with pytest.raises(ValueError, match="clicked"):
        train_judged(model, toy_news, pairs.drop(columns=["clicked"]), TrainConfig(max_steps=1, progress_bar=False))
    with pytest.raises(ValueError, match=r"clicked must lie in \[0, 1\]"):
        train_judged(model, toy_news, pairs.assign(clicked=2.0), TrainConfig(max_steps=1, progress_bar=False))
    with pytest.raises(ValueError, match="no judged pair has a logged click"):
        train_judged(model, toy_news, pairs.assign(clicked=np.nan), TrainConfig(max_steps=1, progress_bar=False))


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
    # ... and a second (continual) round trains on from there instead of starting over (the unweighted terms: each
    # round balances its own weights)
    second = distill(warm, toy_news, pairs, click, quality,
                     TrainConfig(batch_size=16, lr=1e-3, epochs=2, seed=7, progress_bar=False, torch_threads=1),
                     click_weight=2.0)
    assert second.steps == 2 * 19
    for term in ("click", "quality"):
        assert second.epoch_parts[term][0] < 0.5 * first.epoch_parts[term][0], term
        assert second.initial_parts[term] < 0.5 * first.initial_parts[term], term
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
