"""On-policy distillation: the divergence's definition, and a student that moves towards its teacher."""
from __future__ import annotations

import pytest
import torch
from builders.slm import tiny_causal_lm

from training.query_lists.distill import DistillSettings, distill_on_policy, divergence, token_divergence
from training.slm.lora_sft import load_causal_lm
from training.slm.prompts import user_prompt

TRAIN = [user_prompt([t]) for t in ("Stocks rise after interest rates", "Lakers win against the playoffs",
                                     "A storm warn about heavy snow", "Nasa prepare for space launch",
                                     "Apple announce record profits", "Farmers react to climate change")]
HELD_OUT = [user_prompt([t]) for t in ("Tesla delay a recall", "The senate debate the budget",
                                       "Oil prices fall before the election")]


def test_token_divergence_is_zero_for_equal_models_and_asymmetric_at_the_ends():
    torch.manual_seed(0)
    a, b = torch.randn(2, 3, 7), 3 * torch.randn(2, 3, 7)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    for beta in (0.0, 0.5, 1.0):
        assert float(token_divergence(a, a, mask, beta)) == pytest.approx(0.0, abs=1e-6)
    forward, reverse = float(token_divergence(a, b, mask, 0.0)), float(token_divergence(a, b, mask, 1.0))
    assert forward > 0 and reverse > 0 and forward != pytest.approx(reverse)
    assert float(token_divergence(b, a, mask, 0.0)) == pytest.approx(reverse, rel=1e-5)   # KL(t||s) = KL(s||t) swapped
    assert 0 < float(token_divergence(a, b, mask, 0.5)) < min(forward, reverse)            # JSD is bounded by both
    masked_out = b.clone()
    masked_out[0, 2] += 100.0   # a position outside the mask changes nothing
    assert float(token_divergence(a, masked_out, mask, 1.0)) == pytest.approx(reverse)
    with pytest.raises(ValueError, match="one tokenizer and vocabulary"):
        token_divergence(a, b[..., :5], mask, 1.0)


def test_distilling_a_teacher_into_a_smaller_student_reduces_the_reverse_kl(tmp_path):
    teacher, tokenizer = load_causal_lm(tiny_causal_lm(tmp_path / "teacher", seed=1), torch_threads=1)
    student, _ = load_causal_lm(tiny_causal_lm(tmp_path / "student", hidden=16, layers=1, intermediate=32, seed=2),
                                torch_threads=1)
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters()) / 2
    teacher_before = {name: p.clone() for name, p in teacher.state_dict().items()}
    before = divergence(student, teacher, tokenizer, HELD_OUT, max_new_tokens=8)
    settings = DistillSettings(steps=40, prompts_per_step=4, max_new_tokens=8, learning_rate=1e-2, torch_threads=1)
    result = distill_on_policy(student, teacher, tokenizer, TRAIN, settings, progress=False)
    after = divergence(student, teacher, tokenizer, HELD_OUT, max_new_tokens=8)
    assert len(result.losses) == 40 and result.model is student
    assert after < 0.8 * before, (before, after)
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    assert all(torch.equal(teacher_before[name], p) for name, p in teacher.state_dict().items())


def test_distill_settings_name_what_is_wrong():
    with pytest.raises(ValueError, match="beta must be in"):
        DistillSettings(beta=1.5)
    with pytest.raises(ValueError, match="prompts_per_step"):
        DistillSettings(prompts_per_step=0)
