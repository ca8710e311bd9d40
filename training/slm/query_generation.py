"""Batched query generation with a generate-once cache.

Cache layout: ``cache_dir/<model_version>/<task>[-few-shot]/generations.parquet`` with columns
(key, text): ``key`` is the sha256 of the templated prompt (system message and few-shot turns included)
and the length setting, ``text`` the raw generated answer. A refresh (e.g. after new news arrive) generates
only messages not cached for the current model version and task; the cache is rewritten atomically. Answers
are parsed on every call, so parser changes need no regeneration; malformed or empty answers are counted and
dropped, never fatal.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from training.config_dict import ConfigDict
from training.slm.prompts import TASKS, chat_prompt, parse_queries
from training.slm.shared_prefix import PromptOpening, greedy_continue
from training.staging import staged_dir
from training.torch_threads import torch_threads

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from training.slm.causal_lm import CausalLM

log = logging.getLogger(__name__)
CACHE_FILE = "generations.parquet"
#: Progress bars appear from this many batches on.
PROGRESS_MIN_BATCHES = 4
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class GenerationConfig(ConfigDict):
    """Generation settings (greedy by default)."""

    max_new_tokens: int = 48
    batch_size: int = 16
    max_queries: int = 6
    few_shot: bool = False
    do_sample: bool = False
    torch_threads: int = 2
    # neutral by default: in ``generate`` both act on the prompt's tokens too, so they forbid the trigger's own
    # words, which related queries need; repeated queries are removed by the parser's duplicate filter instead
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1 or self.max_queries < 1:
            raise ValueError("GenerationConfig needs max_new_tokens, batch_size and max_queries >= 1")
        if self.no_repeat_ngram_size < 0 or self.repetition_penalty <= 0:
            raise ValueError("GenerationConfig.no_repeat_ngram_size must be >= 0 (0: off) and "
                             f"repetition_penalty > 0 (1: off), got {self.no_repeat_ngram_size}, "
                             f"{self.repetition_penalty}")


@dataclass(frozen=True)
class TextGenerationStats:
    """One :func:`generate_texts` call."""

    n_prompts: int
    tokens: int          # generated tokens, up to and including each answer's eos
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class GenerationStats:
    """One :func:`generate_queries` call. Malformed / empty / filter counts cover all inputs (cached too)."""

    n_inputs: int               # input rows
    n_generated: int            # distinct messages run through the model
    n_cached: int               # input rows served from the cache as it was before the call
    n_malformed: int            # non-empty answers with no usable query
    n_empty: int                # empty answers
    n_duplicates_removed: int   # duplicate / near-duplicate queries removed
    n_filtered: int             # queries removed by the length / language filters
    tokens: int                 # generated tokens (this call only)
    seconds: float              # wall time of the whole call
    model_version: str = ""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def _generated_lengths(new_tokens: torch.Tensor, stop_ids: set[int]) -> list[int]:
    """Tokens per row up to and including the first stop token (all of them if none)."""
    lengths = []
    for row in new_tokens.tolist():
        n = len(row)
        for i, token in enumerate(row):
            if token in stop_ids:
                n = i + 1
                break
        lengths.append(n)
    return lengths


def generate_texts(model: CausalLM, tokenizer: PreTrainedTokenizerBase, chat_prompts: list[str],
                   config: GenerationConfig | None = None) -> tuple[list[str], TextGenerationStats]:
    """Answers to fully templated prompts (row-aligned): left-padded, length-sorted batches under
    ``torch.inference_mode``; greedy unless ``config.do_sample``. Greedy decoding without penalties runs the
    prompts' shared opening (system message, few-shot turns) once (``training.slm.shared_prefix``); the answers
    equal ``model.generate``'s."""
    config = config or GenerationConfig()
    start = time.perf_counter()
    texts = [""] * len(chat_prompts)
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in chat_prompts]
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    batches = [order[i: i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop_ids = {tokenizer.eos_token_id, pad_id}
    plain_greedy = not config.do_sample and not config.no_repeat_ngram_size and config.repetition_penalty == 1.0
    tokens = 0
    with torch_threads(config.torch_threads), torch.inference_mode():
        opening = PromptOpening.of(model, encoded) if plain_greedy and encoded else None
        skip = opening.length if opening is not None else 0
        for rows in tqdm(batches, desc="generate queries", unit="batch",
                         disable=len(batches) < PROGRESS_MIN_BATCHES):
            width = max(len(encoded[r]) - skip for r in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, r in enumerate(rows):   # left padding: the answer starts right after every prompt
                own = encoded[r][skip:]
                ids[i, width - len(own):] = torch.tensor(own, dtype=torch.long)
                mask[i, width - len(own):] = 1
            if opening is not None:
                new_tokens = greedy_continue(model, opening, ids, mask, config.max_new_tokens, pad_id,
                                             tokenizer.eos_token_id)
            else:
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=config.max_new_tokens,
                                     do_sample=config.do_sample, num_beams=1, pad_token_id=pad_id,
                                     no_repeat_ngram_size=config.no_repeat_ngram_size or None,
                                     repetition_penalty=config.repetition_penalty,
                                     eos_token_id=tokenizer.eos_token_id)
                new_tokens = out[:, width:]
            tokens += sum(_generated_lengths(new_tokens, stop_ids))
            for i, r in enumerate(rows):
                texts[r] = tokenizer.decode(new_tokens[i], skip_special_tokens=True)
    return texts, TextGenerationStats(n_prompts=len(chat_prompts), tokens=tokens,
                                      seconds=time.perf_counter() - start)


def message_key(prompt: str, config: GenerationConfig | None = None) -> str:
    """The cache key of one generation: sha256 of the fully templated prompt (system message and few-shot
    turns included, so changing either regenerates) and the settings that change the answer."""
    config = config or GenerationConfig()
    settings = (f"\x1e{config.max_new_tokens}\x1e{config.do_sample}\x1e{config.no_repeat_ngram_size}"
                f"\x1e{config.repetition_penalty}")
    return hashlib.sha256((str(prompt) + settings).encode("utf-8")).hexdigest()


class GenerationCache:
    """key -> raw answer store of one (model version, task, prompt style) under ``cache_dir``."""

    def __init__(self, cache_dir: str | Path, model_version: str, task: str, few_shot: bool = False) -> None:
        if not _SAFE_VERSION.match(str(model_version)):
            raise ValueError(f"model_version {model_version!r} must be 1-128 characters of [A-Za-z0-9._-] "
                             "(it names a cache folder)")
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.directory = Path(cache_dir) / model_version / (f"{task}-few-shot" if few_shot else task)

    def load(self) -> dict[str, str]:
        path = self.directory / CACHE_FILE
        if not path.is_file():
            return {}
        frame = pd.read_parquet(path)
        return dict(zip(frame["key"].astype(str), frame["text"].fillna("").astype(str)))

    def save(self, answers: dict[str, str]) -> None:
        """Write beside the old entry, then swap folders (readers never see half a cache)."""
        with staged_dir(self.directory) as staging:
            pd.DataFrame({"key": list(answers), "text": list(answers.values())}).to_parquet(
                staging / CACHE_FILE, index=False)


def generate_queries(model: CausalLM, tokenizer: PreTrainedTokenizerBase, inputs: pd.DataFrame,
                     config: GenerationConfig | None = None, cache_dir: str | Path | None = None,
                     model_version: str = "", task: str = "news") -> tuple[pd.DataFrame, GenerationStats]:
    """Queries ``(input_id, query_rank, query)`` for ``inputs`` ``(input_id, message)``, generating only
    messages not cached under (``model_version``, ``task``); see the module docstring. Without
    ``cache_dir`` nothing is cached."""
    config = config or GenerationConfig()
    start = time.perf_counter()
    missing = [c for c in ("input_id", "message") if c not in inputs.columns]
    if missing:
        raise ValueError(f"inputs lacks column(s) {missing}; it has {list(inputs.columns)}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    cache = GenerationCache(cache_dir, model_version, task, config.few_shot) if cache_dir is not None else None
    messages = inputs["message"].fillna("").astype(str).tolist()
    prompts = [chat_prompt(tokenizer, m, few_shot=config.few_shot, task=task) for m in messages]
    keys = [message_key(p, config) for p in prompts]
    answers = cache.load() if cache is not None else {}
    todo: dict[str, str] = {}   # distinct uncached key -> templated prompt
    for key, prompt in zip(keys, prompts):
        if key not in answers and key not in todo:
            todo[key] = prompt
    n_cached = sum(1 for k in keys if k in answers)
    tokens = 0
    if todo:
        prompts = list(todo.values())
        texts, text_stats = generate_texts(model, tokenizer, prompts, config)
        if len(texts) != len(prompts):
            raise RuntimeError(f"generate_texts returned {len(texts)} answers for {len(prompts)} prompts")
        tokens = text_stats.tokens
        answers = {**answers, **{k: t if isinstance(t, str) else "" for k, t in zip(todo, texts)}}
        if cache is not None:
            cache.save(answers)
    rows, n_malformed, n_empty, n_duplicates, n_filtered = [], 0, 0, 0, 0
    for input_id, key in zip(inputs["input_id"].tolist(), keys):
        text = answers.get(key, "")
        if not text.strip():
            n_empty += 1
            continue
        parsed = parse_queries(text, max_queries=config.max_queries)
        n_duplicates += parsed.n_duplicates
        n_filtered += parsed.n_filtered
        if parsed.malformed:
            n_malformed += 1
            continue
        rows += [(input_id, rank, query) for rank, query in enumerate(parsed.queries)]
    stats = GenerationStats(
        n_inputs=len(inputs), n_generated=len(todo), n_cached=n_cached, n_malformed=n_malformed,
        n_empty=n_empty, n_duplicates_removed=n_duplicates, n_filtered=n_filtered, tokens=tokens,
        seconds=time.perf_counter() - start, model_version=model_version)
    log.info("generate_queries: %d inputs, %d generated, %d cached, %d malformed, %d empty (%s, %s)",
             stats.n_inputs, stats.n_generated, stats.n_cached, n_malformed, n_empty, model_version, task)
    queries = pd.DataFrame(rows, columns=["input_id", "query_rank", "query"])
    queries["query_rank"] = queries["query_rank"].astype("int64")
    return queries, stats
