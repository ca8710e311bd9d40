"""The stages' weights on a tiny LM: SFT warm start -> merged copy -> GRPO -> saved policy -> loaded policy."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from builders.slm import tiny_causal_lm
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from training.query_lists.grpo import GrpoSettings, train_grpo
from training.query_lists.policy import layer_subset, load_policy, merged_copy, truncated_copy
from training.query_lists.sampling import list_prompts
from training.query_lists.warm_start import warm_start_targets
from training.slm.lora_sft import (
    ADAPTER_META_FILE,
    LoraSftConfig,
    load_generator_model,
    read_adapter_version,
    save_adapter,
    train_lora,
)
from training.slm.prompts import user_prompt
from training.slm.query_generation import GenerationConfig, generate_texts

NEWS = pd.DataFrame({"news_id": ["N1", "N2", "N3", "N4"],
                     "title": ["Lakers win against the playoffs", "Stocks rise after interest rates",
                               "A storm warn about heavy snow", "Nasa prepare for space launch"]})
ROWS = pd.DataFrame({"message": [user_prompt([t]) for t in ("Lakers celebrate", "Oil prices fall", "Farmers react")],
                     "clicks": [["N1", "N4"], ["N2"], ["N3", "N2"]]})
SFT = LoraSftConfig(lr=1e-2, max_steps=8, batch_size=3, torch_threads=1, task="user")
GRPO = GrpoSettings(steps=2, prompts_per_step=2, group_size=2, learning_rate=3e-2, max_completion_length=8,
                    torch_threads=1)
GREEDY = GenerationConfig(max_new_tokens=12, torch_threads=1)


@pytest.fixture(scope="module")
def warm_start(tmp_path_factory):
    """(base model folder, warm start folder, SFT result) of a few SFT steps on the rows' targets."""
    base_dir = tiny_causal_lm(tmp_path_factory.mktemp("base"))
    targets = warm_start_targets(ROWS, NEWS)
    warm_dir = tmp_path_factory.mktemp("warm") / "adapter"
    fit = train_lora(base_dir, targets.messages, targets.targets, SFT, out_dir=warm_dir, progress=False)
    return base_dir, warm_dir, fit


def _logits(model, tokenizer):
    batch = tokenizer(list_prompts(tokenizer, ROWS["message"]), padding=True, add_special_tokens=False,
                      return_tensors="pt")
    with torch.inference_mode():
        return model(**batch).logits


def word_count(prompts, completions, **columns):
    return [float(len(str(c).split())) for c in completions]


def test_merged_copy_is_a_new_plain_model_with_the_adapters_outputs(warm_start):
    _, _, fit = warm_start
    adapter_logits = _logits(fit.model, fit.tokenizer)
    merged = merged_copy(fit.model)
    assert not isinstance(merged, PeftModel) and not merged.training
    assert isinstance(fit.model, PeftModel)                              # the SFT model keeps its adapter
    # W + BA is rounded in fp32: equal up to float error (the slm round trip measured 2.4e-5)
    torch.testing.assert_close(_logits(merged, fit.tokenizer), adapter_logits, atol=5e-5, rtol=0)
    torch.testing.assert_close(_logits(fit.model, fit.tokenizer), adapter_logits, atol=0, rtol=0)
    with fit.model.disable_adapter():
        assert not torch.allclose(_logits(fit.model, fit.tokenizer), adapter_logits, atol=1e-3)  # SFT moved it
    with pytest.raises(TypeError, match="peft model"):
        merged_copy(merged)


def test_a_saved_grpo_policy_loads_back_and_writes_the_same_greedy_text(warm_start, tmp_path):
    base_dir, warm_dir, fit = warm_start
    warm = merged_copy(fit.model)
    result = train_grpo(warm, fit.tokenizer, ROWS, [word_count], GRPO, progress=False)
    version = save_adapter(result.model, tmp_path / "policy", base_dir, GRPO, base_adapter_dir=warm_dir)
    meta = json.loads((tmp_path / "policy" / ADAPTER_META_FILE).read_text())
    assert meta["config"] == GRPO.to_dict() and meta["adapter_sha256"] == version
    assert meta["base_adapter_sha256"] == read_adapter_version(warm_dir)

    loaded, tokenizer = load_policy(base_dir, tmp_path / "policy", warm_dir, torch_threads=1)
    prompts = list_prompts(tokenizer, ROWS["message"])
    expected_logits = _logits(result.model, tokenizer)
    torch.testing.assert_close(_logits(loaded, tokenizer), expected_logits, atol=1e-4, rtol=0)
    assert not torch.allclose(_logits(warm, tokenizer), expected_logits, atol=1e-3)   # GRPO moved the policy
    texts, _ = generate_texts(loaded, tokenizer, prompts, GREEDY)
    assert texts == generate_texts(result.model, fit.tokenizer, prompts, GREEDY)[0]
    assert any(texts)

    with pytest.raises(ValueError, match="trained on warm start"):
        load_policy(base_dir, tmp_path / "policy", None, torch_threads=1)       # the warm start left out
    with pytest.raises(ValueError, match="load_policy"):                      # the plain loader would skip it
        load_generator_model(base_dir, tmp_path / "policy", torch_threads=1)
    with pytest.raises(FileNotFoundError, match=ADAPTER_META_FILE):
        load_policy(base_dir, tmp_path, warm_dir, torch_threads=1)


def test_truncated_copy_keeps_the_first_layers_and_reloads_as_a_plain_model(tmp_path):
    base_dir = tiny_causal_lm(tmp_path / "base", layers=3)
    model, tokenizer = load_generator_model(base_dir, None, torch_threads=1)
    before = _logits(model, tokenizer)
    small = truncated_copy(model, 2)
    assert small.config.num_hidden_layers == 2 and len(small.model.layers) == 2 and not small.training
    assert model.config.num_hidden_layers == 3 and len(model.model.layers) == 3        # the original is kept
    torch.testing.assert_close(_logits(model, tokenizer), before, atol=0, rtol=0)
    assert small.get_output_embeddings().weight is small.get_input_embeddings().weight  # still tied
    # a fresh 2-layer model with its weights computes the same thing: nothing of layer 3 is left
    fresh = AutoModelForCausalLM.from_config(small.config)
    fresh.load_state_dict(small.state_dict())
    fresh.eval()
    torch.testing.assert_close(_logits(fresh, tokenizer), _logits(small, tokenizer), atol=0, rtol=0)
    assert not torch.allclose(_logits(small, tokenizer), before, atol=1e-3)
    small.save_pretrained(str(tmp_path / "small"))
    tokenizer.save_pretrained(str(tmp_path / "small"))
    reloaded, _ = load_generator_model(tmp_path / "small", None, torch_threads=1)
    assert reloaded.config.num_hidden_layers == 2
    prompts = list_prompts(tokenizer, ROWS["message"])
    assert generate_texts(reloaded, tokenizer, prompts, GREEDY)[0] == generate_texts(small, tokenizer, prompts,
                                                                                       GREEDY)[0]
    torch.testing.assert_close(_logits(truncated_copy(model, 3), tokenizer), before, atol=0, rtol=0)
    for bad in (0, 4):
        with pytest.raises(ValueError, match="n_layers"):
            truncated_copy(model, bad)
    with pytest.raises(TypeError, match="plain transformers model"):
        truncated_copy(get_peft_model(fresh, LoraConfig(r=2, target_modules=["q_proj"])), 1)


def test_layer_subset_keeps_any_layers_renumbered_for_the_cache(tmp_path):
    base_dir = tiny_causal_lm(tmp_path / "base", layers=3)
    model, tokenizer = load_generator_model(base_dir, None, torch_threads=1)
    ends = layer_subset(model, [0, 2])
    assert [layer.self_attn.layer_idx for layer in ends.model.layers] == [0, 1]
    assert ends.config.num_hidden_layers == 2 and model.config.num_hidden_layers == 3
    torch.testing.assert_close(ends.model.layers[1].mlp.up_proj.weight, model.model.layers[2].mlp.up_proj.weight)
    fresh = AutoModelForCausalLM.from_config(ends.config)   # layers 0 and 2's weights in a plain 2-layer model
    fresh.load_state_dict(ends.state_dict())
    fresh.eval()
    torch.testing.assert_close(_logits(fresh, tokenizer), _logits(ends, tokenizer), atol=0, rtol=0)
    prompts = list_prompts(tokenizer, ROWS["message"])   # greedy decoding reads the KV cache at the new indices
    assert generate_texts(ends, tokenizer, prompts, GREEDY)[0] == generate_texts(fresh, tokenizer, prompts, GREEDY)[0]
    for bad in ([], [2, 0], [0, 0], [3], [-1]):
        with pytest.raises(ValueError, match="distinct ascending layer indices"):
            layer_subset(model, bad)
