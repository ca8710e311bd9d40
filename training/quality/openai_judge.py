"""The quality judge on an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, llama.cpp server, TGI,
OpenAI): a larger model than the local SmolLM2, the same prompts and the same maths as
:class:`training.quality.llm_judge.LlmJudge`.

Each pair is one ``POST {base_url}/chat/completions`` with the local judge's system and user turns
(:func:`~training.quality.llm_judge.judge_messages`), ``max_tokens: 1``, ``temperature: 0``,
``logprobs: true`` and ``top_logprobs`` (20, OpenAI's maximum). The score is read from the top log-probs of
the answer's first token: the tokens whose text is a label "0".."4" (``" 3"`` counts as ``"3"``; variants of one
label are summed, as the local judge's logsumexp) are renormalised over the five labels; A takes the most
likely label, B and C the expected label ``sum_i p_i * i``. A label absent from the top log-probs has
probability 0; a pair with **none** of the five is an error: scored NaN, counted in
:attr:`OpenAIJudgeResult.errors` and logged, and more than ``max_error_share`` of such pairs raise.

``answer_prefill`` (default): the messages end with an assistant turn holding the answer prefix
``"Rating: "`` (C: ``"Reasoning:"``) and the request asks the server to continue it
(``continue_final_message: true, add_generation_prompt: false``, as vLLM and SGLang take it; llama.cpp
continues a final assistant turn by itself): the model then sees exactly the local judge's prompt text.
``answer_space`` keeps the space after ``"Rating:"`` (right for tokenizers that write ``" 3"`` as a space
token and the digit: SmolLM2, Llama 3, Qwen). Without prefill (hosted APIs that reject unknown fields or
do not continue an assistant turn) the answer's first token is the label itself; C then is an error.
C asks for the reasoning first (``max_reason_tokens``, greedy), then for the label after
``"Reasoning:<reasoning>\\nRating: "``: two requests a pair.

The API key is read from the environment variable named by ``api_key_env`` (default ``OPENAI_API_KEY``)
and sent as ``Authorization: Bearer``; it is never logged nor part of ``repr``; unset: no header (a local
server without a key). 408, 429 and 5xx answers and connection failures are retried ``max_retries`` times
with exponential backoff (``backoff_s * 2**attempt``, or the server's ``Retry-After``); any other error
raises :class:`OpenAIJudgeError` naming the URL, the HTTP status and the body's message. Standard library
only (``urllib``), ``concurrency`` requests in flight, a tqdm bar from :data:`PROGRESS_MIN_PAIRS` pairs on.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.quality.llm_judge import (
    ANSWER_PREFIX,
    LABELS,
    PROMPT_VARIANTS,
    REASON_PREFIX,
    argmax_label,
    chat_messages,
    expected_label,
    judge_messages,
    label_probabilities,
    reasoning_before_label,
)

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
#: Statuses retried with backoff (besides connection failures and timeouts).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Progress bars appear from this many pairs on (``progress=None``).
PROGRESS_MIN_PAIRS = 32
#: The longest wait between two tries, whatever ``Retry-After`` says.
MAX_BACKOFF_S = 60.0
_BODY_CHARS = 500


class OpenAIJudgeError(RuntimeError):
    """A request that failed for good (URL, HTTP status, the body's message), a malformed answer, or too
    many pairs without a label token."""


@dataclass(frozen=True)
class PairError:
    index: int          # the pair's position in the scored lists
    message: str


@dataclass(frozen=True)
class OpenAIJudgeResult:
    """One :meth:`OpenAIJudge.score_details` call."""

    scores: np.ndarray              # (n,) float64 in [0, 4]; NaN for the pairs in ``errors``
    label_logprobs: np.ndarray      # (n, 5) log-probs of "0".."4" among the top log-probs; -inf where absent
    reasons: list[str] | None       # variant C: the model's reasoning per pair, else None
    errors: tuple[PairError, ...]   # pairs with no label token among the top log-probs
    seconds: float
    pairs_per_second: float

    @property
    def n_errors(self) -> int:
        return len(self.errors)

    @property
    def label_probs(self) -> np.ndarray:
        """(n, 5) the label probabilities renormalised over the five labels (NaN rows for errors)."""
        out = np.full(self.label_logprobs.shape, np.nan)
        ok = np.isfinite(self.label_logprobs).any(axis=1)
        if ok.any():
            out[ok] = label_probabilities(self.label_logprobs[ok])
        return out


def _label_of(token: str) -> str | None:
    text = token.replace("Ġ", " ").replace("▁", " ").strip()   # raw byte-level / sentencepiece spellings too
    return text if text in LABELS else None


def label_logprobs_from_top(top_logprobs: Sequence[dict[str, Any]]) -> np.ndarray:
    """(5,) log-probs of the labels "0".."4" from one position's ``top_logprobs`` entries ``{token, logprob}``:
    the entries whose stripped text is the label, summed in probability; ``-inf`` where none is listed."""
    per_label: list[list[float]] = [[] for _ in LABELS]
    for entry in top_logprobs:
        label = _label_of(str(entry.get("token", "")))
        if label is not None and entry.get("logprob") is not None:
            per_label[LABELS.index(label)].append(float(entry["logprob"]))
    out = np.full(len(LABELS), -np.inf)
    for i, values in enumerate(per_label):
        if values:
            top = max(values)
            out[i] = top + math.log(sum(math.exp(v - top) for v in values))
    return out


def scores_from_label_logprobs(label_logprobs: np.ndarray, variant: str) -> np.ndarray:
    """A: the most likely listed label; B/C: the expected label over the renormalised listed labels; NaN for
    rows where no label is listed."""
    label_logprobs = np.asarray(label_logprobs, dtype=np.float64).reshape(-1, len(LABELS))
    scores = np.full(len(label_logprobs), np.nan)
    ok = np.isfinite(label_logprobs).any(axis=1)
    if ok.any():
        rows = label_logprobs[ok]
        scores[ok] = argmax_label(rows) if variant == "A" else expected_label(rows)
    return scores


def _error_message(raw: bytes) -> str:
    """The message of an error body: OpenAI ``{"error": {"message"}}``, vLLM ``{"message"}``, FastAPI
    ``{"detail"}``, else the text (shortened)."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_BODY_CHARS]
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key][:_BODY_CHARS]
    return (text[:_BODY_CHARS] + ("..." if len(text) > _BODY_CHARS else "")) or "(empty body)"


class _Retryable(Exception):
    def __init__(self, status: int | None, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


class OpenAIJudge:
    """Scores (trigger, candidate) news pairs 0-4 on an OpenAI-compatible server; see the module docstring.

    ``base_url``: the API root, e.g. ``http://localhost:8000/v1`` (requests go to ``{base_url}/chat/completions``);
    ``model``: the served model's name; ``variant``: A, B or C as :class:`LlmJudge`; ``api_key_env``: the
    NAME of the variable holding the key; ``timeout_s``: per request; ``concurrency``: requests in flight;
    ``max_retries`` / ``backoff_s``: retries of 408/429/5xx and connection failures; ``max_error_share``:
    the share of pairs without a label token above which :meth:`score_details` raises.
    """

    def __init__(self, base_url: str, model: str, variant: str = "B", *,
                 api_key_env: str = DEFAULT_API_KEY_ENV, answer_prefill: bool = True, answer_space: bool = True,
                 system_role: bool = True, top_logprobs: int = 20, max_reason_tokens: int = 32,
                 max_text_chars: int = 300, timeout_s: float = 60.0, concurrency: int = 4, max_retries: int = 4,
                 backoff_s: float = 1.0, max_error_share: float = 0.1, progress: bool | None = None) -> None:
        if variant not in PROMPT_VARIANTS:
            raise ValueError(f"variant must be one of {PROMPT_VARIANTS}, got {variant!r}")
        if variant == "C" and not answer_prefill:
            raise ValueError("variant C needs answer_prefill: the label is read after the model's own reasoning, "
                             "which the server must continue as a final assistant turn (vLLM, SGLang, llama.cpp); "
                             "use variant A or B against servers without it")
        if not base_url:
            raise ValueError("base_url is empty: give the API root, e.g. http://localhost:8000/v1")
        if not model:
            raise ValueError("model is empty: give the served model's name (GET {base_url}/models lists them)")
        if concurrency < 1 or max_retries < 0 or top_logprobs < 1 or timeout_s <= 0:
            raise ValueError("concurrency, top_logprobs and timeout_s must be positive and max_retries >= 0")
        base = base_url.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.base_url = base_url
        self.model = model
        self.variant = variant
        self.api_key_env = api_key_env
        self.answer_prefill = bool(answer_prefill)
        self.answer_prefix = ANSWER_PREFIX + (" " if answer_space else "")
        self.system_role = bool(system_role)
        self.top_logprobs = int(top_logprobs)
        self.max_reason_tokens = int(max_reason_tokens)
        self.max_text_chars = int(max_text_chars)
        self.timeout_s = float(timeout_s)
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_error_share = float(max_error_share)
        self.progress = progress
        self.last_result: OpenAIJudgeResult | None = None
        self._api_key = (os.environ.get(api_key_env) or None) if api_key_env else None
        if api_key_env and self._api_key is None:
            log.info("$%s is not set: requests to %s go without an Authorization header", api_key_env, self.url)

    def __repr__(self) -> str:   # no key in here
        return (f"OpenAIJudge(url={self.url!r}, model={self.model!r}, variant={self.variant!r}, "
                f"api_key_env={self.api_key_env!r})")

    # ----------------------------------------------------------------------------- requests
    def messages(self, trigger: str, candidate: str, assistant: str | None = None) -> list[dict[str, str]]:
        """The chat turns of one pair: the local judge's system and user texts, then (with prefill) the
        assistant turn to continue: ``assistant`` or the answer prefix (A/B) / ``"Reasoning:"`` (C)."""
        system, user = judge_messages(trigger, candidate, self.variant, self.max_text_chars)
        turns = chat_messages(system, user, system_role=self.system_role)
        if self.answer_prefill:
            if assistant is None:
                assistant = REASON_PREFIX if self.variant == "C" else self.answer_prefix
            turns.append({"role": "assistant", "content": assistant})
        return turns

    def _body(self, messages: list[dict[str, str]], *, max_tokens: int, logprobs: bool) -> dict[str, Any]:
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "n": 1}
        if logprobs:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        if self.answer_prefill:
            body.update(continue_final_message=True, add_generation_prompt=False)
        return body

    def _post_once(self, payload: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            message = _error_message(exc.read() or b"")
            if exc.code in RETRY_STATUSES:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                try:
                    wait_s = float(retry_after) if retry_after else None
                except ValueError:
                    wait_s = None
                raise _Retryable(exc.code, message, wait_s) from None
            hint = ""
            if exc.code in (401, 403):
                hint = (f" (the API key comes from ${self.api_key_env}, which is "
                        f"{'set' if self._api_key else 'not set'})")
            raise OpenAIJudgeError(f"POST {self.url} failed: HTTP {exc.code}: {message}{hint}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retryable(None, f"{type(reason).__name__}: {reason}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise OpenAIJudgeError(f"POST {self.url}: the answer is not JSON: "
                                   f"{raw[:_BODY_CHARS].decode('utf-8', errors='replace')!r}") from None

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            try:
                return self._post_once(payload)
            except _Retryable as exc:
                what = f"HTTP {exc.status}: {exc.message}" if exc.status else exc.message
                if attempt == self.max_retries:
                    raise OpenAIJudgeError(f"POST {self.url} failed after {attempt + 1} tries: {what}") from None
                delay = exc.retry_after if exc.retry_after is not None else self.backoff_s * 2 ** attempt
                delay = min(max(delay, 0.0), MAX_BACKOFF_S)
                log.warning("POST %s: %s; retry %d of %d in %.1f s", self.url, what, attempt + 1,
                            self.max_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _choice(self, answer: dict[str, Any]) -> dict[str, Any]:
        try:
            return answer["choices"][0]
        except (KeyError, IndexError, TypeError):
            raise OpenAIJudgeError(f"POST {self.url}: the answer has no choices: "
                                   f"{json.dumps(answer)[:_BODY_CHARS]}") from None

    def _first_token_top(self, answer: dict[str, Any]) -> list[dict[str, Any]]:
        choice = self._choice(answer)
        try:
            top = choice["logprobs"]["content"][0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            top = None
        if not top:
            raise OpenAIJudgeError(
                f"POST {self.url}: the answer has no choices[0].logprobs.content[0].top_logprobs; the server "
                f"must support chat completions with logprobs: true, top_logprobs: {self.top_logprobs} "
                f"(got {json.dumps(choice.get('logprobs'))[:_BODY_CHARS]})")
        return top

    def _score_pair(self, trigger: str, candidate: str) -> tuple[np.ndarray, str | None, str | None]:
        """(label log-probs, reasoning (C), error message or None) of one pair."""
        reason = None
        if self.variant == "C":
            answer = self._post(self._body(self.messages(trigger, candidate), max_tokens=self.max_reason_tokens,
                                           logprobs=False))
            text = str(self._choice(answer).get("message", {}).get("content") or "")
            reason = reasoning_before_label(text)
            messages = self.messages(trigger, candidate, f"{REASON_PREFIX}{reason}\n{self.answer_prefix}")
        else:
            messages = self.messages(trigger, candidate)
        top = self._first_token_top(self._post(self._body(messages, max_tokens=1, logprobs=True)))
        label_logprobs = label_logprobs_from_top(top)
        if not np.isfinite(label_logprobs).any():
            listed = ", ".join(repr(str(e.get("token"))) for e in top[:8])
            return label_logprobs, reason, (f"no label token 0-4 among the top {len(top)} log-probs of the "
                                            f"answer's first token (top: {listed}{', ...' if len(top) > 8 else ''})")
        return label_logprobs, reason, None

    # ----------------------------------------------------------------------------- public API
    def score_details(self, triggers: Sequence[str], candidates: Sequence[str]) -> OpenAIJudgeResult:
        """Scores, label log-probs, reasoning (C), pairs without a label token and throughput; also kept as
        :attr:`last_result` (set before raising on too many errors)."""
        from tqdm.auto import tqdm

        if len(triggers) != len(candidates):
            raise ValueError(f"{len(triggers)} triggers but {len(candidates)} candidates")
        n = len(triggers)
        start = time.perf_counter()
        label_logprobs = np.full((n, len(LABELS)), -np.inf)
        reasons: list[str] | None = [""] * n if self.variant == "C" else None
        errors: list[PairError] = []
        lock = threading.Lock()
        show = self.progress if self.progress is not None else n >= PROGRESS_MIN_PAIRS
        with tqdm(total=n, desc=f"openai judge {self.variant}", unit="pair", disable=not show,
                  leave=False) as bar, ThreadPoolExecutor(max_workers=min(self.concurrency, max(n, 1))) as pool:

            def one(i: int) -> None:
                row, reason, error = self._score_pair(triggers[i], candidates[i])
                with lock:
                    label_logprobs[i] = row
                    if reasons is not None:
                        reasons[i] = reason or ""
                    if error:
                        errors.append(PairError(i, error))
                    bar.update(1)

            futures = [pool.submit(one, i) for i in range(n)]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((err for f in done if (err := f.exception()) is not None), None)
            if failure is not None:
                for future in pending:
                    future.cancel()
                raise failure
        seconds = time.perf_counter() - start
        errors.sort(key=lambda e: e.index)
        self.last_result = OpenAIJudgeResult(
            scores=scores_from_label_logprobs(label_logprobs, self.variant), label_logprobs=label_logprobs,
            reasons=reasons, errors=tuple(errors), seconds=seconds,
            pairs_per_second=n / seconds if seconds > 0 else 0.0)
        if errors:
            log.warning("%s: %d of %d pairs have no label token among the top log-probs (scored NaN); "
                        "first, pair %d: %s", self.url, len(errors), n, errors[0].index, errors[0].message)
            if len(errors) > self.max_error_share * n:
                raise OpenAIJudgeError(
                    f"{self.url} ({self.model}): {len(errors)} of {n} pairs have no label token 0-4 among the "
                    f"top {self.top_logprobs} log-probs of the answer's first token, more than max_error_share "
                    f"{self.max_error_share:g}; first, pair {errors[0].index}: {errors[0].message}. Check "
                    f"answer_prefill / answer_space against the server and its chat template")
        return self.last_result

    def score(self, triggers: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """(n,) float scores in [0, 4] (NaN for pairs without a label token): A the most likely label, B/C
        the expected label."""
        return self.score_details(triggers, candidates).scores

    @property
    def pairs_per_second(self) -> float | None:
        """Throughput of the last :meth:`score` / :meth:`score_details` call (None before any)."""
        return None if self.last_result is None else self.last_result.pairs_per_second
