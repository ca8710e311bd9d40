"""A student's restricted output layer: the kept tokens' logits are the whole layer's, no other token is written,
it trains and distils, and it survives a save and a load."""
from __future__ import annotations

import json

import pytest
import torch
from builders.slm import tiny_causal_lm

from training.query_lists.distill import DistillSettings, distill_on_policy, divergence
from training.query_lists.output_vocabulary import (
    VOCABULARY_FILE,
    RestrictedOutput,
    list_vocabulary,
    load_student,
    output_vocabulary,
    restrict_output,
    save_student,
)
from training.query_lists.sampling import sampled_lists
from training.slm.lora_sft import load_causal_lm
from training.slm.prompts import user_prompt

TEXTS = ["Stocks rise after interest rates", "Lakers win against the playoffs", "A storm warn about heavy snow"]
MESSAGES = [user_prompt([t]) for t in TEXTS]


@pytest.fixture
def model_and_tokenizer(tmp_path):
    return load_causal_lm(tiny_causal_lm(tmp_path / "lm", seed=3), torch_threads=1)


def test_the_vocabulary_is_the_texts_tokens_as_written_and_lower_cased_and_the_special_tokens(model_and_tokenizer):
    _, tokenizer = model_and_tokenizer
    kept = list_vocabulary(tokenizer, TEXTS[:1], batch_size=1)
    expected = set(tokenizer.all_special_ids)
    for text in (TEXTS[0], TEXTS[0].lower()):
        expected.update(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert kept == sorted(expected)
    assert tokenizer.eos_token_id in kept and len(kept) < len(tokenizer)


def test_kept_tokens_keep_their_logits_and_no_other_token_is_written(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    batch = tokenizer(MESSAGES, return_tensors="pt", padding=True)
    with torch.no_grad():
        whole = model(**batch).logits
    kept = list_vocabulary(tokenizer, TEXTS[:2])
    restrict_output(model, kept)
    assert isinstance(model.get_output_embeddings(), RestrictedOutput) and output_vocabulary(model) == kept
    with torch.no_grad():
        restricted = model(**batch).logits
    others = sorted(set(range(whole.shape[-1])) - set(kept))
    assert torch.allclose(restricted[..., kept], whole[..., kept], atol=1e-6)
    assert (restricted[..., others] == torch.finfo(restricted.dtype).min).all()
    # sampled at temperature 1 from a random model: only kept tokens come out
    torch.manual_seed(0)
    prompts = tokenizer(MESSAGES, return_tensors="pt", padding=True, padding_side="left")
    out = model.generate(**prompts, do_sample=True, top_k=0, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id)
    assert set(out[:, prompts["input_ids"].shape[1]:].flatten().tolist()) <= set(kept)
    assert sampled_lists(model, tokenizer, MESSAGES, 2, max_new_tokens=8, threads=1)   # the list helpers run on it


def test_a_restricted_student_saves_and_loads_back_with_its_vocabulary(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    kept = list_vocabulary(tokenizer, TEXTS)
    restrict_output(model, kept)
    save_student(model, tokenizer, tmp_path / "student")
    assert isinstance(model.get_output_embeddings(), RestrictedOutput)   # saving leaves the model restricted
    assert json.loads((tmp_path / "student" / VOCABULARY_FILE).read_text())["token_ids"] == kept
    loaded, _ = load_student(tmp_path / "student", torch_threads=1)
    assert output_vocabulary(loaded) == kept
    batch = tokenizer(MESSAGES[:1], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    plain, _ = load_causal_lm(tmp_path / "student", torch_threads=1)   # the weights are a plain model's
    assert output_vocabulary(plain) is None


def test_a_restricted_student_distils_towards_its_teacher(tmp_path):
    teacher, tokenizer = load_causal_lm(tiny_causal_lm(tmp_path / "teacher", seed=1), torch_threads=1)
    student, _ = load_causal_lm(tiny_causal_lm(tmp_path / "student", hidden=16, layers=1, intermediate=32, seed=2),
                                torch_threads=1)
    restrict_output(student, list_vocabulary(tokenizer, TEXTS + MESSAGES))
    before = divergence(student, teacher, tokenizer, MESSAGES, max_new_tokens=8)
    settings = DistillSettings(steps=30, prompts_per_step=3, max_new_tokens=8, learning_rate=1e-2, torch_threads=1)
    result = distill_on_policy(student, teacher, tokenizer, MESSAGES, settings, progress=False)
    after = divergence(student, teacher, tokenizer, MESSAGES, max_new_tokens=8)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert after < 0.8 * before, (before, after)
    with pytest.raises(ValueError, match="forward KL"):
        distill_on_policy(student, teacher, tokenizer, MESSAGES, DistillSettings(beta=0.0, steps=1), progress=False)


def test_bad_vocabularies_are_refused(model_and_tokenizer, tmp_path):
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match="non-empty subset"):
        restrict_output(model, [])
    with pytest.raises(ValueError, match="non-empty subset"):
        restrict_output(model, [0, len(tokenizer) + 5])
    save_student(model, tokenizer, tmp_path / "whole")
    assert not (tmp_path / "whole" / VOCABULARY_FILE).exists()
    (tmp_path / "whole" / VOCABULARY_FILE).write_text(json.dumps({"n_tokens": 3, "token_ids": [1, 2]}))
    with pytest.raises(ValueError, match=f"{VOCABULARY_FILE}: field token_ids"):
        load_student(tmp_path / "whole", torch_threads=1)


def test_a_students_version_follows_its_weights_and_vocabulary(model_and_tokenizer, tmp_path):
    from training.query_lists.output_vocabulary import student_version

    model, tokenizer = model_and_tokenizer
    save_student(model, tokenizer, tmp_path / "a")
    restrict_output(model, list_vocabulary(tokenizer, TEXTS))
    save_student(model, tokenizer, tmp_path / "b")
    with torch.no_grad():
        next(model.parameters()).add_(1.0)   # same shapes and file sizes, other weights
    save_student(model, tokenizer, tmp_path / "c")
    versions = {student_version(tmp_path / name) for name in "abc"}
    assert len(versions) == 3 and student_version(tmp_path / "c") == student_version(tmp_path / "c")
