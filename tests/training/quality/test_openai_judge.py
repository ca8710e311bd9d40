"""The OpenAI-compatible judge against a real HTTP server (``builders.openai_server``) that serves a local
causal LM through transformers: a tiny random Llama for the plumbing (retries, auth, errors), the real
SmolLM2-135M-Instruct for "same model, same prompt, same maths as LlmJudge B"."""
from __future__ import annotations

import math
import socket

import numpy as np
import pandas as pd
import pytest
from builders.openai_server import ChatCompletionsServer
from builders.slm import tiny_causal_lm

from training.quality.llm_judge import LlmJudge, judge_news_text
from training.quality.openai_judge import (
    OpenAIJudge,
    OpenAIJudgeError,
    label_logprobs_from_top,
    scores_from_label_logprobs,
)

KEY_ENV = "NEWSFORGE_TEST_JUDGE_KEY"
KEY = "sk-test-0123456789"
NEWS = pd.DataFrame({
    "news_id": [f"N{i}" for i in range(8)],
    "category": ["finance", "news", "sports", "finance", "finance", "lifestyle", "sports", "finance"],
    "title": ["Fed holds interest rates steady", "Storm makes landfall near the coast, millions without power",
              "Team wins final in overtime thriller", "Apple reports record profits as iPhone sales rise",
              "What the Fed's rate decision means for mortgages and savings accounts",
              "You won't BELIEVE this one weird trick! Click here to win a free iPhone now!!!",
              "Coach explains the overtime plan after the final", "Oil prices fall before the budget vote"],
    "abstract": ["The central bank left its benchmark rate unchanged.", "", "", "", "", "", "", ""],
    "url": ["https://www.continentalpress.example/finance/AA0.html", "https://assets.msn.com/labs/mind/AA1.html",
            "https://www.dailyledger.example/sports/AA2.html", "https://www.meridiannews.example/finance/AA3.html",
            "https://www.eveningpost.example/finance/AA4.html", "https://www.news4unow.example/lifestyle/AA5.html",
            "https://www.dailyledger.example/sports/AA6.html", "https://assets.msn.com/labs/mind/AA7.html"],
})
# What every judge reads (category and, where the URL names one, the source).
TRIGGERS = judge_news_text(NEWS, ["N0", "N1", "N2", "N3"])
CANDIDATES = judge_news_text(NEWS, ["N4", "N5", "N6", "N7"])


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_local(tmp_path_factory):
    """LlmJudge B on a tiny random Llama (byte-level BPE with a SmolLM2-like chat template)."""
    return LlmJudge(tiny_causal_lm(tmp_path_factory.mktemp("tiny_chat_lm")), "B", batch_size=1)


@pytest.fixture(scope="module")
def tiny_server(tiny_local):
    # A vocabulary-wide top_logprobs: every label is listed, so the scores equal the local judge's exactly.
    with ChatCompletionsServer(tiny_local.model, tiny_local.tokenizer, model_name="tiny", api_key=KEY,
                               max_top_logprobs=len(tiny_local.tokenizer)) as server:
        yield server


@pytest.fixture
def server(tiny_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    tiny_server.script.clear()
    tiny_server.requests.clear()
    tiny_server.prompts.clear()
    tiny_server.hide_digits_when = None
    return tiny_server


def tiny_judge(server, local: LlmJudge, variant: str = "B", **kwargs) -> OpenAIJudge:
    options = {"api_key_env": KEY_ENV, "answer_space": local.answer_prefix.endswith(" "),
               "top_logprobs": len(local.tokenizer), "backoff_s": 0.01, "timeout_s": 30.0, **kwargs}
    return OpenAIJudge(server.base_url, server.model_name, variant, **options)


# ----------------------------------------------------------------------------- pure pieces
def test_label_logprobs_from_top_logprobs():
    top = [{"token": " 3", "logprob": math.log(0.3)}, {"token": "3", "logprob": math.log(0.1)},
           {"token": "Ġ4", "logprob": math.log(0.2)}, {"token": " The", "logprob": math.log(0.25)},
           {"token": "0", "logprob": math.log(0.1)}, {"token": "7", "logprob": math.log(0.05)}]
    row = label_logprobs_from_top(top)
    np.testing.assert_allclose(np.exp(row), [0.1, 0, 0, 0.4, 0.2], atol=1e-12)   # " 3" and "3" summed
    assert np.isneginf(row[1]) and np.isneginf(row[2])
    np.testing.assert_allclose(scores_from_label_logprobs(row, "B"), [(0.4 * 3 + 0.2 * 4) / 0.7])
    np.testing.assert_array_equal(scores_from_label_logprobs(row, "A"), [3.0])
    none = label_logprobs_from_top([{"token": "Hello", "logprob": -0.1}])
    assert np.isnan(scores_from_label_logprobs(np.stack([row, none]), "B")[1])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="variant C needs answer_prefill"):
        OpenAIJudge("http://localhost:8000/v1", "m", "C", answer_prefill=False)
    with pytest.raises(ValueError, match="variant must be one of"):
        OpenAIJudge("http://localhost:8000/v1", "m", "D")
    with pytest.raises(ValueError, match="model is empty"):
        OpenAIJudge("http://localhost:8000/v1", "")
    judge = OpenAIJudge("http://localhost:8000/v1/", "m")
    assert judge.url == "http://localhost:8000/v1/chat/completions"


# ----------------------------------------------------------------------------- against the tiny model
def test_variants_a_and_b_equal_the_local_judge_and_send_the_key(server, tiny_local):
    judge = tiny_judge(server, tiny_local, "B", concurrency=2)
    assert KEY not in repr(judge)
    result = judge.score_details(TRIGGERS, CANDIDATES)
    local = tiny_local.score_details(TRIGGERS, CANDIDATES)
    assert result.n_errors == 0 and result.pairs_per_second > 0 and judge.pairs_per_second == result.pairs_per_second
    np.testing.assert_allclose(result.label_logprobs, local.label_logprobs, atol=1e-5)
    np.testing.assert_allclose(result.scores, local.scores, atol=1e-6)
    # The server rendered exactly the local judge's prompt text.
    assert sorted(server.prompts) == sorted(tiny_local.prompt(t, c) for t, c in zip(TRIGGERS, CANDIDATES))
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["logprobs"] is True and body["max_tokens"] == 1 and body["temperature"] == 0
    assert body["top_logprobs"] == len(tiny_local.tokenizer) and body["model"] == "tiny"
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant"]
    scores_a = tiny_judge(server, tiny_local, "A").score(TRIGGERS, CANDIDATES)
    np.testing.assert_array_equal(scores_a, np.argmax(local.label_logprobs, axis=1).astype(float))


def test_variant_c_reasons_then_scores_like_the_local_judge(server, tiny_local):
    local = LlmJudge(tiny_local.model_dir, "C", max_reason_tokens=6, batch_size=1)
    expected = local.score_details(TRIGGERS[:2], CANDIDATES[:2])
    result = tiny_judge(server, tiny_local, "C", max_reason_tokens=6).score_details(TRIGGERS[:2], CANDIDATES[:2])
    assert result.reasons == expected.reasons
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-6)
    assert len(server.requests) == 4                        # reasoning, then the label, per pair
    assert {r["body"]["max_tokens"] for r in server.requests} == {6, 1}


def test_a_500_then_200_is_retried(server, tiny_local):
    server.script = [(500, {"error": {"message": "CUDA out of memory"}}),
                     (429, {"error": {"message": "slow down"}})]
    scores = tiny_judge(server, tiny_local, "B", concurrency=1).score(TRIGGERS[:1], CANDIDATES[:1])
    assert len(server.requests) == 3 and np.isfinite(scores).all()


def test_retries_run_out_with_url_status_and_message(server, tiny_local):
    server.script = [(503, {"message": "model is loading"})] * 3
    judge = tiny_judge(server, tiny_local, "B", max_retries=2)
    with pytest.raises(OpenAIJudgeError) as err:
        judge.score(TRIGGERS[:1], CANDIDATES[:1])
    message = str(err.value)
    assert judge.url in message and "after 3 tries" in message and "HTTP 503: model is loading" in message


def test_a_401_names_url_and_status_and_is_not_retried(server, tiny_local, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key")
    judge = tiny_judge(server, tiny_local)
    with pytest.raises(OpenAIJudgeError) as err:
        judge.score(TRIGGERS[:2], CANDIDATES[:2])
    message = str(err.value)
    assert f"POST {judge.url} failed: HTTP 401: Incorrect API key provided." in message
    assert f"${KEY_ENV}, which is set" in message and "sk-wrong-key" not in message
    assert len(server.requests) <= 2                            # no retries (two pairs may be in flight)
    monkeypatch.delenv(KEY_ENV)
    server.requests.clear()
    with pytest.raises(OpenAIJudgeError, match="HTTP 401.*which is not set"):
        tiny_judge(server, tiny_local, concurrency=1).score(TRIGGERS[:1], CANDIDATES[:1])
    assert "Authorization" not in server.requests[0]["headers"]


def test_a_400_is_not_retried_and_a_missing_logprobs_answer_is_an_error(server, tiny_local):
    server.script = [(400, {"detail": "top_logprobs must be <= 5"})]
    with pytest.raises(OpenAIJudgeError, match=r"HTTP 400: top_logprobs must be <= 5"):
        tiny_judge(server, tiny_local, concurrency=1).score(TRIGGERS[:1], CANDIDATES[:1])
    assert len(server.requests) == 1
    server.script = [(200, {"choices": [{"message": {"role": "assistant", "content": "3"}, "logprobs": None}]})]
    with pytest.raises(OpenAIJudgeError, match="no choices.0..logprobs.content.0..top_logprobs"):
        tiny_judge(server, tiny_local, concurrency=1).score(TRIGGERS[:1], CANDIDATES[:1])


def test_missing_label_tokens_are_counted_errors_never_a_default(server, tiny_local):
    server.hide_digits_when = "weird trick"                     # the model answers pair 1 without a label
    judge = tiny_judge(server, tiny_local, "B", max_error_share=0.5)
    result = judge.score_details(TRIGGERS[:3], CANDIDATES[:3])
    assert result.n_errors == 1 and result.errors[0].index == 1
    assert "no label token 0-4 among the top" in result.errors[0].message
    assert np.isnan(result.scores[1]) and np.isfinite(result.scores[[0, 2]]).all()
    assert np.isneginf(result.label_logprobs[1]).all() and np.isnan(result.label_probs[1]).all()
    strict = tiny_judge(server, tiny_local, "B", max_error_share=0.0)
    with pytest.raises(OpenAIJudgeError, match="1 of 3 pairs have no label token 0-4"):
        strict.score(TRIGGERS[:3], CANDIDATES[:3])
    assert strict.last_result is not None and strict.last_result.n_errors == 1


def test_a_server_that_is_down_is_retried_then_named(tiny_local):
    with socket.socket() as sock:                               # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    judge = OpenAIJudge(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff_s=0.01, timeout_s=5)
    with pytest.raises(OpenAIJudgeError, match=rf"127.0.0.1:{port}/v1/chat/completions failed after 2 tries"):
        judge.score(TRIGGERS[:1], CANDIDATES[:1])


# ----------------------------------------------------------------------------- against SmolLM2
@pytest.mark.slow
def test_smollm2_over_http_equals_the_local_variant_b(smollm2_folder):
    local = LlmJudge(smollm2_folder, "B", batch_size=4)
    expected = local.score_details(TRIGGERS, CANDIDATES)
    with ChatCompletionsServer(local.model, local.tokenizer, model_name="smollm2-135m-instruct") as server:
        judge = OpenAIJudge(server.base_url, server.model_name, "B", api_key_env="", top_logprobs=20,
                            concurrency=2)
        result = judge.score_details(TRIGGERS, CANDIDATES)
    assert result.n_errors == 0
    assert sorted(server.prompts) == sorted(local.prompt(t, c) for t, c in zip(TRIGGERS, CANDIDATES))
    # Only the top 20 log-probs come back: the labels outside them (negligible mass) drop out.
    np.testing.assert_allclose(result.scores, expected.scores, atol=1e-3)
    assert np.ptp(result.scores) > 0.1 and result.pairs_per_second > 0


def test_the_asset_config_builds_the_judge_and_holds_no_key(monkeypatch):
    from assets.quality import JUDGES, JudgeEvaluationConfig, OpenAIJudgeConfig, QualityLabelsConfig, _openai_judge

    monkeypatch.setenv(KEY_ENV, KEY)
    assert "openai" in JUDGES and not JudgeEvaluationConfig().openai.base_url   # no Table 1 row by default
    config = QualityLabelsConfig(judge="openai", openai=OpenAIJudgeConfig(
        base_url="http://gpu-box:8000/v1", model="Qwen/Qwen2.5-7B-Instruct", api_key_env=KEY_ENV, variant="A"))
    judge = _openai_judge(config.openai)
    assert (judge.url, judge.model, judge.variant) == ("http://gpu-box:8000/v1/chat/completions",
                                                       "Qwen/Qwen2.5-7B-Instruct", "A")
    assert KEY not in str(config.model_dump())                  # what MLflow logs as params
    with pytest.raises(ValueError, match="judge: openai needs openai.base_url"):
        _openai_judge(OpenAIJudgeConfig())
