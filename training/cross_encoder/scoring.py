"""Batch scoring of (trigger, candidate) pairs: length-bucketed, dynamically padded, results in input order."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from training.cross_encoder.config import N_QUALITY
from training.cross_encoder.model import CrossEncoder
from training.cross_encoder.pair_inputs import PairTokenCache
from training.prec.encode_cache import length_bucketed_batches
from training.torch_threads import torch_threads as threads_during


@dataclass(frozen=True)
class PairScores:
    """Row-aligned with the input pairs: ``click`` (N,) logit, ``quality_logits`` (N, 5)."""

    click: np.ndarray
    quality_logits: np.ndarray

    def __len__(self) -> int:
        return len(self.click)

    @property
    def quality_probs(self) -> np.ndarray:
        logits = self.quality_logits.astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    @property
    def quality(self) -> np.ndarray:
        """Expected grade ``sum_i softmax(logits)_i * i`` in [0, 4], (N,)."""
        return (self.quality_probs @ np.arange(N_QUALITY, dtype=np.float32)).astype(np.float32)


#: ``precision`` of :func:`score_pairs`: ``fp32``; ``bf16`` (autocast: matrix products in bfloat16, about twice
#: as fast on CPUs with native bf16, logits within ~1e-2 of fp32); ``auto``: bf16 where the device has it natively.
PRECISIONS = ("fp32", "bf16", "auto")
#: Offline bulk scoring (evaluation tables, distillation targets): thousands of pairs, where bf16 halves the time.
#: Online and gate scoring keep the exact default, ``fp32``.
BULK_PRECISION = "auto"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (CPU: AVX512-BF16 or AMX; CUDA: compute capability 8+)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype that ``precision`` means on ``device`` (None: plain fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16" or (precision == "auto" and native_bf16(device)):
        return torch.bfloat16
    return None


def score_pairs(model: CrossEncoder, news: pd.DataFrame, trigger_ids: Sequence[str], candidate_ids: Sequence[str],
                batch_size: int = 256, torch_threads: int | None = None,
                progress: bool | None = None, precision: str = "fp32") -> PairScores:
    """Click logits and quality logits of each pair (``trigger_ids[i]``, ``candidate_ids[i]``).

    Each distinct news is tokenised once and each distinct pair scored once (an evaluation day repeats about a
    fifth of its pairs across impressions); pairs run in batches of similar length under ``torch.inference_mode``
    on the model's device, in eval mode (the previous mode is restored). ``torch_threads``: torch CPU threads for
    the call (restored after). ``progress``: tqdm bar (None: when there are >= 20 batches). ``precision``: one of
    :data:`PRECISIONS` (bulk callers pass :data:`BULK_PRECISION`).
    """
    dtype = autocast_dtype(precision, model.device)   # resolved once; a bad precision fails before any work
    if len(trigger_ids) != len(candidate_ids):
        raise ValueError(f"{len(trigger_ids)} trigger ids but {len(candidate_ids)} candidate ids")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    if len(trigger_ids) == 0:
        return PairScores(np.zeros(0, dtype=np.float32), np.zeros((0, N_QUALITY), dtype=np.float32))
    pairs = pd.DataFrame({"trigger_id": list(trigger_ids), "candidate_id": list(candidate_ids)})
    first = ~pairs.duplicated()
    distinct = pairs[first]
    scores = _score_distinct(model, news, distinct["trigger_id"].tolist(), distinct["candidate_id"].tolist(),
                             batch_size, torch_threads, progress, dtype)
    if len(distinct) == len(pairs):
        return scores
    row = pairs.merge(distinct.assign(row=np.arange(len(distinct))), on=["trigger_id", "candidate_id"],
                      how="left", sort=False)["row"].to_numpy()
    return PairScores(scores.click[row], scores.quality_logits[row])


def _score_distinct(model: CrossEncoder, news: pd.DataFrame, trigger_ids: list[str], candidate_ids: list[str],
                    batch_size: int, torch_threads: int | None, progress: bool | None,
                    dtype: torch.dtype | None) -> PairScores:
    """``dtype``: the autocast dtype (None: plain fp32)."""
    n = len(trigger_ids)
    click = np.zeros(n, dtype=np.float32)
    quality = np.zeros((n, N_QUALITY), dtype=np.float32)
    cache = PairTokenCache(model.inputs, news, {"trigger_id": trigger_ids, "candidate_id": candidate_ids})
    trig, cand = cache.rows["trigger_id"], cache.rows["candidate_id"]
    batches = length_bucketed_batches(cache.pair_lengths(trig, cand), batch_size)
    device, was_training = model.device, model.training
    model.eval()
    try:
        with threads_during(torch_threads), torch.inference_mode(), \
                torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None), \
                tqdm(total=len(batches), desc="score pairs", unit="batch",
                     disable=not (progress if progress is not None else len(batches) >= 20)) as bar:
            for rows in batches:
                click_logit, quality_logits = model(cache.batch(trig[rows], cand[rows], device))
                click[rows] = click_logit.float().cpu().numpy()
                quality[rows] = quality_logits.float().cpu().numpy()
                bar.update(1)
    finally:
        model.train(was_training)
    return PairScores(click, quality)

