"""LoRA SFT on the tiny causal LM: masking, learning, trainable parameters, adapter round trip."""
from __future__ import annotations

import json

import pytest
import torch
from builders.slm import tiny_causal_lm

from training.slm.lora_sft import (
    ADAPTER_META_FILE,
    IGNORE_INDEX,
    LoraSftConfig,
    collate,
    load_causal_lm,
    load_generator_model,
    read_adapter_version,
    save_adapter,
    sft_examples,
    target_token_loss,
    train_lora,
    with_lora,
)
from training.slm.prompts import chat_prompt, format_target, news_prompt

TITLES = ["Stocks rise after rate cut", "Lakers win against Celtics", "Storm brings heavy snow",
          "Apple announce new phone"]
QUERIES = [["mortgage rates", "stock market today"], ["nba scores", "lakers schedule"],
           ["winter storm warning", "snow forecast"], ["iphone review", "apple stock"]]
CONFIG = LoraSftConfig(lr=1e-2, max_steps=30, batch_size=4, torch_threads=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def trained(model_dir):
    prompts = [news_prompt(t) for t in TITLES]
    return train_lora(model_dir, prompts, [format_target(q) for q in QUERIES], CONFIG, progress=False)


def test_config_round_trip_and_validation():
    assert LoraSftConfig.from_dict(CONFIG.to_dict()) == CONFIG
    with pytest.raises(ValueError, match="unknown"):
        LoraSftConfig.from_dict({"rnak": 4})
    with pytest.raises(ValueError, match="batch_size"):
        LoraSftConfig(batch_size=0)


def test_load_causal_lm_is_fp32_left_padded(model_dir):
    model, tokenizer = load_causal_lm(model_dir, torch_threads=1)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert tokenizer.padding_side == "left" and tokenizer.pad_token_id is not None


def test_sft_examples_label_only_the_target(model_dir):
    _, tokenizer = load_causal_lm(model_dir, torch_threads=1)
    message, target = news_prompt("Stocks rise"), "mortgage rates\nstock market"
    (example,) = sft_examples(tokenizer, [message], [target], max_len=512)
    prompt_ids = tokenizer(chat_prompt(tokenizer, message), add_special_tokens=False)["input_ids"]
    n_prompt = len(prompt_ids)
    assert example["input_ids"][:n_prompt] == prompt_ids
    assert example["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert example["labels"][n_prompt:] == example["input_ids"][n_prompt:]
    assert example["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(example["input_ids"][n_prompt:-1]) == target
    assert example["prompt_cut"] == 0


def test_sft_examples_truncate_the_prompt_side(model_dir):
    _, tokenizer = load_causal_lm(model_dir, torch_threads=1)
    target = "mortgage rates\nstock market"
    (example,) = sft_examples(tokenizer, [news_prompt("Stocks " * 200)], [target], max_len=40)
    assert len(example["input_ids"]) == 40
    full = len(tokenizer(chat_prompt(tokenizer, news_prompt("Stocks " * 200)), add_special_tokens=False)["input_ids"])
    assert example["prompt_cut"] == full - example["labels"].count(IGNORE_INDEX) > 0
    kept = [t for t in example["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(kept[:-1]) == target and kept[-1] == tokenizer.eos_token_id


def test_target_token_loss_equals_the_models_loss_and_gradients(model_dir):
    """The output layer at the labelled positions only: same loss and same adapter gradients as the model's own
    loss over every position."""
    model, tokenizer = load_causal_lm(model_dir, torch_threads=1)
    model = with_lora(model, CONFIG).eval()   # no LoRA dropout: both passes see the same function
    examples = sft_examples(tokenizer, [news_prompt(t) for t in TITLES], [format_target(q) for q in QUERIES],
                            max_len=512)
    batch = collate(examples, tokenizer.pad_token_id)
    assert (batch["labels"] == IGNORE_INDEX).float().mean() > 0.3     # prompts and padding are skipped
    grads = []
    for loss_of in (lambda: model(**batch).loss, lambda: target_token_loss(model, batch)):
        model.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        grads.append((float(loss), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (whole, whole_grads), (targets, target_grads) = grads
    assert targets == pytest.approx(whole, rel=1e-5)
    for a, b in zip(whole_grads, target_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_lora_loss_goes_down_and_only_lora_trains(trained):
    assert trained.n_steps == 30 and len(trained.losses) == 30
    assert trained.last_loss < 0.6 * trained.first_loss
    trainable = [name for name, p in trained.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert trained.trainable_params == sum(p.numel() for p in trained.model.parameters() if p.requires_grad)
    assert trained.trainable_params < 0.2 * trained.total_params
    assert trained.train_tokens > 0 and trained.tokens_per_second > 0


def test_training_is_deterministic(model_dir, trained):
    again = train_lora(model_dir, [news_prompt(t) for t in TITLES], [format_target(q) for q in QUERIES],
                       CONFIG.replace(max_steps=3), progress=False)
    assert again.losses == pytest.approx(trained.losses[:3], abs=1e-6)


def test_adapter_round_trip_gives_identical_logits(model_dir, trained, tmp_path):
    version = save_adapter(trained.model, tmp_path / "adapter", model_dir, CONFIG)
    assert version == read_adapter_version(tmp_path / "adapter") and len(version) == 64
    meta = json.loads((tmp_path / "adapter" / ADAPTER_META_FILE).read_text())
    assert meta["config"]["rank"] == CONFIG.rank and meta["base_model_dir"].endswith(model_dir.name)

    tokenizer = trained.tokenizer
    batch = tokenizer([chat_prompt(tokenizer, news_prompt(t)) for t in TITLES[:2]], padding=True,
                      add_special_tokens=False, return_tensors="pt")
    trained.model.eval()
    with torch.inference_mode():
        expected = trained.model(**batch).logits
        base, _ = load_generator_model(model_dir, None, torch_threads=1)
        assert not torch.allclose(base(**batch).logits, expected, atol=1e-3)
        for merge in (False, True):
            model, _ = load_generator_model(model_dir, tmp_path / "adapter", merge=merge, torch_threads=1)
            assert hasattr(model, "peft_config") != merge
            # unmerged: identical; merged: W + BA is rounded in fp32 (measured max diff 2.4e-5, |logits| <= 7.4)
            torch.testing.assert_close(model(**batch).logits, expected, atol=5e-5 if merge else 1e-5, rtol=0)


def test_save_adapter_takes_plain_settings_and_records_the_adapter_below(model_dir, trained, tmp_path):
    below = save_adapter(trained.model, tmp_path / "warm", model_dir, CONFIG)
    version = save_adapter(trained.model, tmp_path / "top", model_dir, {"steps": 3, "beta": 0.04},
                           base_adapter_dir=tmp_path / "warm")
    meta = json.loads((tmp_path / "top" / ADAPTER_META_FILE).read_text())
    assert meta["config"] == {"steps": 3, "beta": 0.04} and meta["adapter_sha256"] == version
    assert meta["base_adapter_sha256"] == below and meta["base_adapter_dir"] == str((tmp_path / "warm").resolve())
    assert "base_adapter_dir" not in json.loads((tmp_path / "warm" / ADAPTER_META_FILE).read_text())
    with pytest.raises(FileNotFoundError, match="not an adapter folder"):
        save_adapter(trained.model, tmp_path / "orphan", model_dir, CONFIG, base_adapter_dir=tmp_path / "nowhere")
    assert not (tmp_path / "orphan").exists()


def test_full_finetune_trains_everything(model_dir):
    result = train_lora(model_dir, [news_prompt(TITLES[0])], ["mortgage rates"],
                        CONFIG.replace(full_finetune=True, max_steps=2), progress=False)
    assert result.trainable_params == result.total_params and result.n_steps == 2
    with pytest.raises(TypeError, match="peft"):
        save_adapter(result.model, "unused", model_dir, CONFIG)
