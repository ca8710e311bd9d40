"""Batched generation and the generate-once cache of the query generators."""
from __future__ import annotations

import pandas as pd
import pytest
from builders.slm import tiny_causal_lm

from training.slm import prompts, query_generation
from training.slm.lora_sft import load_causal_lm
from training.slm.prompts import chat_prompt, news_prompt
from training.slm.query_generation import (
    GenerationConfig,
    TextGenerationStats,
    generate_queries,
    generate_texts,
)

CONFIG = GenerationConfig(max_new_tokens=8, batch_size=2, torch_threads=1)


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return load_causal_lm(tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm")), torch_threads=1)


def inputs(*titles: str) -> pd.DataFrame:
    return pd.DataFrame({"input_id": list(titles), "message": [news_prompt(t) for t in titles]})


def test_generate_texts_is_greedy_batched_and_row_aligned(lm):
    model, tokenizer = lm
    titles = ("Short", "A much longer title about rates", "Mid title")
    prompts = [chat_prompt(tokenizer, news_prompt(t)) for t in titles]
    texts, stats = generate_texts(model, tokenizer, prompts, CONFIG)
    assert len(texts) == 3 and stats.n_prompts == 3 and 0 < stats.tokens <= 3 * CONFIG.max_new_tokens
    alone, _ = generate_texts(model, tokenizer, prompts[1:2], CONFIG)
    assert alone[0] == texts[1]           # left padding does not change a greedy answer
    assert generate_texts(model, tokenizer, prompts, CONFIG)[0] == texts


class FakeGenerator:
    """Stands in for generate_texts: records what it was asked, answers from a table."""

    def __init__(self, answers: dict[str, str | None]):
        self.answers, self.calls = answers, []

    def __call__(self, model, tokenizer, prompts, config):
        self.calls.append(prompts)
        texts = [next((a for key, a in self.answers.items() if key in p), "generic news query") for p in prompts]
        return texts, TextGenerationStats(n_prompts=len(prompts), tokens=5 * len(prompts), seconds=0.01)


def test_cache_generates_only_new_inputs_and_per_model_version(lm, tmp_path, monkeypatch):
    fake = FakeGenerator({"Fed": "1. Mortgage rates\n2. stock market today\n- mortgage rates"})
    monkeypatch.setattr(query_generation, "generate_texts", fake)
    model, tokenizer = lm
    first, stats = generate_queries(model, tokenizer, inputs("Fed hikes", "Storm"), CONFIG, tmp_path, "v1", "news")
    assert stats.n_generated == 2 and stats.n_cached == 0 and stats.tokens == 10
    assert first[first.input_id == "Fed hikes"]["query"].tolist() == ["mortgage rates", "stock market today"]
    assert first["query_rank"].tolist()[:2] == [0, 1] and stats.n_duplicates_removed == 1

    _, stats = generate_queries(model, tokenizer, inputs("Fed hikes", "Storm", "Lakers"), CONFIG, tmp_path, "v1",
                                "news")
    assert stats.n_generated == 1 and stats.n_cached == 2 and len(fake.calls[-1]) == 1
    assert "Lakers" in fake.calls[-1][0]

    _, stats = generate_queries(model, tokenizer, inputs("Fed hikes"), CONFIG, tmp_path, "v2", "news")
    assert stats.n_generated == 1 and stats.n_cached == 0
    _, stats = generate_queries(model, tokenizer, inputs("Fed hikes"), CONFIG, tmp_path, "v1", "user")
    assert stats.n_generated == 1
    assert (tmp_path / "v1" / "news" / "generations.parquet").is_file()
    # the key covers the whole templated prompt and the length: a new system message or budget regenerates
    _, stats = generate_queries(model, tokenizer, inputs("Fed hikes"), CONFIG.replace(max_new_tokens=7), tmp_path,
                                "v1", "news")
    assert stats.n_generated == 1
    monkeypatch.setitem(prompts.SYSTEM_MESSAGES, "news", "A different instruction.")
    _, stats = generate_queries(model, tokenizer, inputs("Fed hikes"), CONFIG, tmp_path, "v1", "news")
    assert stats.n_generated == 1


def test_garbage_answers_are_counted_not_fatal(lm, tmp_path, monkeypatch):
    fake = FakeGenerator({"Empty": "", "Nothing": None, "Junk": "!!!\n???\nx", "Good": "nba scores tonight"})
    monkeypatch.setattr(query_generation, "generate_texts", fake)
    model, tokenizer = lm
    queries, stats = generate_queries(model, tokenizer, inputs("Empty", "Nothing", "Junk", "Good"), CONFIG,
                                      tmp_path, "v1", "news")
    assert queries["input_id"].tolist() == ["Good"]
    assert stats.n_empty == 2 and stats.n_malformed == 1 and stats.n_filtered == 1 and stats.n_inputs == 4


def test_real_generation_end_to_end_and_bad_arguments(lm, tmp_path):
    model, tokenizer = lm
    queries, stats = generate_queries(model, tokenizer, inputs("Fed hikes", "Storm"), CONFIG, tmp_path, "tiny", "news")
    assert stats.n_generated == 2 and stats.tokens > 0
    assert list(queries.columns) == ["input_id", "query_rank", "query"]
    assert stats.n_empty + stats.n_malformed + queries["input_id"].nunique() == 2
    with pytest.raises(ValueError, match="model_version"):
        generate_queries(model, tokenizer, inputs("x"), CONFIG, tmp_path, "../escape", "news")
    with pytest.raises(ValueError, match="message"):
        generate_queries(model, tokenizer, pd.DataFrame({"input_id": ["a"]}), CONFIG, tmp_path, "v", "news")


def _generate_greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(input_ids=ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=max_new_tokens,
                         do_sample=False, num_beams=1, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("few_shot", [False, True])
def test_default_decoding_is_unpenalised_greedy_with_the_shared_opening_run_once(lm, few_shot):
    """transformers' repetition penalty and no-repeat n-grams act on the prompt's tokens too, so they would
    forbid the trigger's words; the default decoding is plain greedy. It runs the prompts' shared opening once
    (system message, few-shot turns) and answers exactly as ``model.generate`` does, prompt by prompt."""
    model, tokenizer = lm
    default = GenerationConfig()
    assert default.repetition_penalty == 1.0 and default.no_repeat_ngram_size == 0 and not default.do_sample
    titles = ("Storm hits coast", "A much longer title about interest rates and the economy", "Mid title")
    prompts = [chat_prompt(tokenizer, news_prompt(t), few_shot=few_shot) for t in titles]
    config = default.replace(max_new_tokens=6, batch_size=2, torch_threads=1)
    texts, _ = generate_texts(model, tokenizer, prompts, config)
    assert texts == [_generate_greedy(model, tokenizer, p, 6) for p in prompts]


def test_penalties_when_asked_go_to_generate(lm, monkeypatch):
    model, tokenizer = lm
    seen = {}
    original = model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    generate_texts(model, tokenizer, [chat_prompt(tokenizer, news_prompt("Storm hits coast"))],
                   GenerationConfig(max_new_tokens=4, torch_threads=1, repetition_penalty=1.3))
    assert seen["repetition_penalty"] == 1.3
    with pytest.raises(ValueError, match="repetition_penalty"):
        GenerationConfig(repetition_penalty=0.0)
