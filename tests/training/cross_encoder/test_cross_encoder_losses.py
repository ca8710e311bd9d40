"""Loss functions against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from training.cross_encoder.losses import (
    centred,
    click_label_loss,
    distillation_loss,
    head_weights,
    pairwise_softmax_loss,
    quality_ce_loss,
    quality_sce_loss,
    rounded_grades,
    soft_quality_targets,
)


def test_pairwise_softmax_loss_by_hand():
    # pos=2, neg=0: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2) = 0.126928
    assert pairwise_softmax_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(0.126928, abs=1e-6)
    # pos = neg: log 2 = 0.693147
    assert pairwise_softmax_loss(torch.tensor([1.5]), torch.tensor([1.5])).item() == pytest.approx(0.693147, abs=1e-6)
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    # unweighted: (0.126928 + log(1 + e^1) = 1.313262) / 2 = 0.720095
    assert pairwise_softmax_loss(pos, neg).item() == pytest.approx((0.126928 + 1.313262) / 2, abs=1e-6)
    # weights 1 and 1 + ln 3 = 2.098612: (1 * 0.126928 + 2.098612 * 1.313262) / (1 + 2.098612)
    #   = (0.126928 + 2.756030) / 3.098612 = 0.930402
    weights = torch.tensor([1.0, 1.0 + math.log(3.0)])
    assert pairwise_softmax_loss(pos, neg, weights).item() == pytest.approx(0.930402, abs=1e-6)
    # all-equal weights give the plain mean
    assert pairwise_softmax_loss(pos, neg, torch.tensor([3.0, 3.0])).item() == pytest.approx(0.720095, abs=1e-6)


def test_pairwise_softmax_loss_gradient_pushes_pos_up_and_neg_down():
    pos = torch.tensor([0.0], requires_grad=True)
    neg = torch.tensor([0.0], requires_grad=True)
    pairwise_softmax_loss(pos, neg).backward()
    # d/dpos softplus(neg - pos) = -sigmoid(neg - pos) = -0.5
    assert pos.grad.item() == pytest.approx(-0.5) and neg.grad.item() == pytest.approx(0.5)


def test_soft_quality_targets_interpolate_between_the_two_nearest_grades():
    targets = soft_quality_targets(torch.tensor([2.3, 4.0, 0.0, 3.5]))
    expected = torch.tensor([
        [0.0, 0.0, 0.7, 0.3, 0.0],  # 2.3: 1 - 0.3 on grade 2, 0.3 on grade 3
        [0.0, 0.0, 0.0, 0.0, 1.0],  # 4.0: all on grade 4
        [1.0, 0.0, 0.0, 0.0, 0.0],  # 0.0: all on grade 0
        [0.0, 0.0, 0.0, 0.5, 0.5],  # 3.5: halfway
    ])
    torch.testing.assert_close(targets, expected)
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    for bad in (-0.1, 4.2, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 4\]"):
            soft_quality_targets(torch.tensor([1.0, bad]))


def test_rounded_grades_round_half_up():
    # 0.49 -> 0, 0.5 -> 1, 2.5 -> 3 (numpy's round-half-even would give 2), 3.5 -> 4, 4.0 -> 4
    assert rounded_grades(torch.tensor([0.49, 0.5, 2.5, 3.5, 4.0])).tolist() == [0, 1, 3, 4, 4]


def test_quality_ce_and_sce_by_hand():
    # logits [0, ln 2, 0, 0, 0] -> softmax = [1, 2, 1, 1, 1] / 6
    logits = torch.log(torch.tensor([[1.0, 2.0, 1.0, 1.0, 1.0]] * 2))
    # CE on rounded grades: 1.4 -> 1: -ln(2/6) = ln 3 = 1.098612; 2.5 -> 3: -ln(1/6) = ln 6 = 1.791759
    #   mean = (1.098612 + 1.791759) / 2 = 1.445186
    assert quality_ce_loss(logits, torch.tensor([1.4, 2.5])).item() == pytest.approx(1.445186, abs=1e-5)
    # SCE, 1.3 -> 0.7 on grade 1, 0.3 on grade 2: 0.7 ln 3 + 0.3 ln 6 = 0.769029 + 0.537528 = 1.306557
    assert quality_sce_loss(logits[:1], torch.tensor([1.3])).item() == pytest.approx(1.306557, abs=1e-5)
    # an integer score puts all mass on one grade: SCE = CE
    scores = torch.tensor([1.0, 3.0])
    assert quality_sce_loss(logits, scores).item() == pytest.approx(quality_ce_loss(logits, scores).item())


def test_distillation_loss_weights_the_click_mse_and_the_centred_quality_mse():
    student_click, teacher_click = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
    student_quality = torch.zeros(2, 5)
    teacher_quality = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0], [7.0, 5.0, 5.0, 5.0, 5.0]])
    total, click, quality = distillation_loss(student_click, student_quality, teacher_click, teacher_quality,
                                              click_weight=2.0, quality_weight=0.5)
    # click MSE = (1^2 + 2^2) / 2 = 2.5
    assert click.item() == pytest.approx(2.5)
    # both teacher rows centre to [1.6, -0.4, -0.4, -0.4, -0.4] (row means 0.4 and 5.4); the student's to 0:
    #   per row (1.6^2 + 4 * 0.4^2) / 5 = (2.56 + 0.64) / 5 = 0.64
    assert quality.item() == pytest.approx(0.64)
    # total = 2.0 * 2.5 + 0.5 * 0.64 = 5.32
    assert total.item() == pytest.approx(5.32)
    assert distillation_loss(student_click, student_quality, teacher_click, teacher_quality).total.item() == \
        pytest.approx(3.14)  # default weights 1, 1


def test_centred_quality_term_ignores_a_per_row_shift_of_either_side():
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    click = torch.zeros(6)
    base = distillation_loss(click, student, click, teacher).quality
    shift = torch.randn(6, 1, generator=gen) * 10
    expected = pytest.approx(base.item(), rel=1e-5)
    assert distillation_loss(click, student + shift, click, teacher).quality.item() == expected
    assert distillation_loss(click, student, click, teacher - 3 * shift).quality.item() == expected
    torch.testing.assert_close(centred(student + shift), centred(student))
    # ... but not a change of the spread within a row
    assert distillation_loss(click, 2 * student, click, teacher).quality.item() != pytest.approx(base.item(), rel=1e-3)


def test_head_weights_make_the_terms_stand_in_the_configured_ratio():
    initial = {"click": 4.0, "quality": 0.25}
    weights = head_weights(initial, {"click": 1.0, "quality": 1.0})
    assert weights == {"click": 0.25, "quality": 4.0}
    assert weights["click"] * initial["click"] == weights["quality"] * initial["quality"] == 1.0
    weights = head_weights(initial, {"click": 2.0, "quality": 1.0})
    assert weights["click"] * initial["click"] == pytest.approx(2 * weights["quality"] * initial["quality"])
    assert head_weights(initial, {"click": 1.0, "quality": 0.0}) == {"click": 0.25}   # a 0 ratio drops its term
    with pytest.raises(ValueError, match="quality term measured before training is 0.0"):
        head_weights({"click": 1.0, "quality": 0.0}, {"click": 1.0, "quality": 1.0})
    with pytest.raises(ValueError, match="click weight must be"):
        head_weights(initial, {"click": -1.0, "quality": 1.0})
    with pytest.raises(ValueError, match="every term weight is 0"):
        head_weights(initial, {"click": 0.0, "quality": 0.0})


def test_click_label_loss_leaves_out_unknown_labels():
    logits = torch.tensor([0.0, 2.0, -1.0])
    # only rows 0 and 2 are known: (-log sigmoid(0) + -log(1 - sigmoid(-1))) / 2 = (0.693147 + 0.313262) / 2
    assert click_label_loss(logits, torch.tensor([1.0, float("nan"), 0.0])).item() == pytest.approx(0.503204, abs=1e-5)
    assert click_label_loss(logits, torch.full((3,), float("nan"))).item() == 0.0
