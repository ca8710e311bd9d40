"""GRPO with TRL on a tiny LM: a toy reward goes up, the KL is measured against the given weights, and the best
checkpoint on a selection score is the policy returned."""
from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from builders.slm import tiny_causal_lm
from peft import PeftModel

from training.query_lists.grpo import CHECKPOINT_COLUMNS, STEP_COLUMNS, GrpoSettings, grpo_dataset, train_grpo
from training.query_lists.query_list import QueryListSpec
from training.query_lists.rewards import REWARD_NAMES, RewardWeights
from training.query_lists.trl_rewards import ListRetrievals, reward_functions
from training.slm.lora_sft import LoraSftConfig, load_causal_lm, with_lora

ROWS = pd.DataFrame({
    "message": ["Recently read (most recent last):\n1. Lakers win against the playoffs\nSearch queries:",
                "Searched recently (most recent last):\n- snow forecast\nSearch queries:"],
    "clicks": [["N1", "N2"], ["N4"]],
    "user_id": ["U1", "U2"],
})
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TOY = GrpoSettings(steps=16, prompts_per_step=2, group_size=8, learning_rate=3e-2, beta=0.01,
                   max_completion_length=8, lora_rank=8, lora_alpha=16, target_modules=ALL_LINEAR, torch_threads=1)


@pytest.fixture(scope="module")
def warm_start(tmp_path_factory):
    return load_causal_lm(tiny_causal_lm(tmp_path_factory.mktemp("warm_start")), torch_threads=1)


def test_grpo_moves_a_toy_reward_up_against_a_kl_to_the_given_model(warm_start):
    model, tokenizer = warm_start
    before = {name: p.clone() for name, p in model.state_dict().items()}
    word_starts = {i for i in range(len(tokenizer)) if tokenizer.convert_ids_to_tokens(i).startswith("\u0120")}

    def word_start(prompts, completions, completion_ids, **columns):   # share of tokens that begin a word
        assert columns["user_id"] and columns["clicks"]                  # the rows' columns arrive as kwargs
        return [sum(t in word_starts for t in ids) / max(len(ids), 1) for ids in completion_ids]

    result = train_grpo(model, tokenizer, ROWS, [word_start], TOY, progress=False)
    steps = result.steps
    assert steps["step"].tolist() == list(range(1, TOY.steps + 1))
    assert set(STEP_COLUMNS) | {"rewards/word_start/mean"} <= set(steps.columns)
    first, last = steps["reward"].head(4).mean(), steps["reward"].tail(4).mean()
    assert last > first + 0.1, steps["reward"].round(3).tolist()
    assert steps["kl"].iloc[0] == pytest.approx(0.0, abs=1e-6)    # the fresh adapter is the given model
    assert steps["kl"].tail(4).mean() > 0.01                       # and the policy moved away from it
    assert isinstance(result.model, PeftModel) and result.seconds_per_step > 0
    assert not isinstance(model, PeftModel)                        # the caller's model is still the warm start
    assert all(torch.equal(before[name], p) for name, p in model.state_dict().items())


def test_grpo_logs_every_list_reward_and_their_weighted_total(warm_start, retriever, quality_scorer):
    model, tokenizer = warm_start
    functions = reward_functions(ListRetrievals(retriever, QueryListSpec(n_queries=2, per_query=3, k=4)),
                                 quality_scorer)
    weights = RewardWeights(retrieval=1.0, format=0.5)
    settings = TOY.replace(steps=2, group_size=2)
    steps = train_grpo(model, tokenizer, ROWS, functions, settings, weights.of(REWARD_NAMES), progress=False).steps
    means = steps[[f"rewards/{name}/mean" for name in REWARD_NAMES]]
    assert len(steps) == 2 and means.notna().all().all()
    total = (means * weights.of(REWARD_NAMES)).sum(axis=1)
    assert steps["reward"].tolist() == pytest.approx(total.tolist())


def _lora_weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def _word_count(prompts, completions, **columns):
    return [float(len(str(c).split())) for c in completions]


def test_checkpoint_selection_returns_the_best_scored_checkpoints_weights(warm_start):
    model, tokenizer = warm_start
    settings = TOY.replace(steps=5, group_size=4, eval_every=2)
    seen = []

    def select(policy):   # scores checkpoints 2, 4, 5 as 0.2, 0.9, 0.5; draws from the torch generator
        assert not policy.training and not torch.is_grad_enabled()
        seen.append(_lora_weights(policy))
        torch.rand(3)
        return [0.2, 0.9, 0.5][len(seen) - 1]

    result = train_grpo(model, tokenizer, ROWS, [_word_count], settings, progress=False, select=select)
    assert result.checkpoints.columns.tolist() == list(CHECKPOINT_COLUMNS)
    assert result.checkpoints.values.tolist() == [[2, 0.2], [4, 0.9], [5, 0.5]]   # every 2 steps and the last
    assert (result.best_step, result.best_score) == (4, 0.9)
    returned = _lora_weights(result.model)
    assert returned.keys() == seen[1].keys() and all(torch.equal(returned[n], seen[1][n]) for n in returned)
    assert not all(torch.equal(seen[1][n], seen[2][n]) for n in returned)   # step 5's weights differ from step 4's
    plain = train_grpo(model, tokenizer, ROWS, [_word_count], settings.replace(eval_every=0), progress=False)
    assert plain.best_step is None and plain.checkpoints.empty
    assert all(torch.equal(p, seen[2][n]) for n, p in _lora_weights(plain.model).items())   # selection drew nothing
    assert plain.steps["reward"].tolist() == result.steps["reward"].tolist()


def test_checkpoint_selection_needs_a_finite_score_and_both_of_its_settings(warm_start):
    model, tokenizer = warm_start
    one_step = TOY.replace(steps=1, group_size=2, eval_every=1)
    with pytest.raises(ValueError, match="select returned nan at step 1"):
        train_grpo(model, tokenizer, ROWS, [_word_count], one_step, progress=False, select=lambda m: float("nan"))
    with pytest.raises(ValueError, match="needs both select and settings.eval_every > 0"):
        train_grpo(model, tokenizer, ROWS, [_word_count], one_step, progress=False)
    with pytest.raises(ValueError, match="needs both select and settings.eval_every > 0"):
        train_grpo(model, tokenizer, ROWS, [_word_count], TOY, progress=False, select=lambda m: 0.0)
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        GrpoSettings(eval_every=-1)


def test_grpo_dataset_and_settings_name_what_is_wrong(warm_start):
    _, tokenizer = warm_start
    data = grpo_dataset(tokenizer, ROWS)
    assert data.column_names == ["prompt", "clicks", "user_id"] and data[0]["clicks"] == ["N1", "N2"]
    assert data[0]["prompt"].startswith("<|im_start|>system\n") and data[0]["prompt"].endswith("assistant\n")
    with pytest.raises(ValueError, match="'message' column"):
        grpo_dataset(tokenizer, ROWS.drop(columns="message"))
    with pytest.raises(ValueError, match="group_size"):
        GrpoSettings(group_size=1)
    with pytest.raises(ValueError, match="beta"):
        GrpoSettings(beta=0.0)
    with pytest.raises(ValueError, match="2 reward weights for 1 reward functions"):
        train_grpo(None, tokenizer, ROWS, [lambda **kw: []], TOY, [1.0, 2.0])
    with pytest.raises(ValueError, match="adapter merged"):
        unmerged = with_lora(copy.deepcopy(warm_start[0]), LoraSftConfig(rank=2))
        train_grpo(unmerged, tokenizer, ROWS, [lambda **kw: []], TOY)
    assert GrpoSettings.from_dict(TOY.to_dict()) == TOY
