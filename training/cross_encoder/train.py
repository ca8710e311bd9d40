"""Training loops: click teacher (pairwise softmax), quality teacher (CE / SCE), MT student (distillation).

Plain torch: AdamW (no decay on biases / norms), linear warmup then linear decay to zero, gradient clipping.
Each call tokenises the news it needs once (``PairTokenCache``), shuffles with a seeded generator and, within
chunks of 50 batches, groups examples of similar length into a batch (dynamic padding); the batch order is shuffled
again. Deterministic given the seed and the starting weights. Warm start: ``load_cross_encoder`` then call again.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from training.cross_encoder.config import N_QUALITY, TrainConfig
from training.cross_encoder.losses import (
    MAX_GRADE, distillation_loss, pairwise_softmax_loss, quality_ce_loss, quality_sce_loss,
)
from training.cross_encoder.model import CrossEncoder
from training.cross_encoder.pair_inputs import PairTokenCache, check_columns
from training.torch_threads import torch_threads
from training.prec.encode_cache import length_bucketed_batches

log = logging.getLogger(__name__)

QUALITY_LOSSES = {"ce": quality_ce_loss, "sce": quality_sce_loss}


@dataclass(frozen=True)
class FitResult:
    """Outcome of one training call. ``epoch_losses``: example-weighted mean training loss of each (possibly
    partial, when ``max_steps`` stops it) epoch; ``train_loss`` = the last of them; ``seconds``: the whole call
    (tokenisation included); ``pairs_per_second``: pairs through the model (a click triplet counts two) / seconds;
    ``epoch_parts``: per-epoch means of the loss parts (distillation: "click", "quality" MSE)."""

    epoch_losses: tuple[float, ...]
    train_loss: float
    steps: int
    seconds: float
    pairs_per_second: float
    n_examples: int
    epoch_parts: dict[str, tuple[float, ...]] = field(default_factory=dict)


StepFn = Callable[[np.ndarray], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                  chunk_batches: int = 50) -> list[np.ndarray]:
    """Shuffled example indices cut into batches of similar length (bucketed within shuffled chunks)."""
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk = batch_size * chunk_batches
    for start in range(0, len(order), chunk):
        rows = order[start: start + chunk]
        batches.extend(rows[b] for b in length_bucketed_batches(lengths[rows], batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor at optimiser step ``s`` (0-based): ``(s+1)/warmup`` while warming up, then linear to zero."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def fit(model: CrossEncoder, lengths: np.ndarray, step_loss: StepFn, config: TrainConfig, desc: str,
        pairs_per_example: int = 1, started: float | None = None) -> FitResult:
    """Generic loop: ``step_loss(example_indices) -> (loss, parts)`` per batch; see the module docstring."""
    started = time.perf_counter() if started is None else started
    n = len(lengths)
    rng = np.random.default_rng(config.seed)
    per_epoch = math.ceil(n / config.batch_size)
    total = config.epochs * per_epoch if config.max_steps is None else min(config.max_steps,
                                                                           config.epochs * per_epoch)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, linear_schedule(math.ceil(config.warmup_fraction * total), total))
    params = [p for p in model.parameters() if p.requires_grad]
    epoch_losses: list[float] = []
    epoch_parts: dict[str, list[float]] = {}
    steps = examples = 0
    with torch_threads(config.torch_threads), torch.random.fork_rng(devices=_cuda_devices(model)):
        torch.manual_seed(config.seed)
        model.train()
        try:
            with tqdm(total=total, desc=desc, unit="step", disable=not config.progress_bar) as bar:
                for _ in range(config.epochs):
                    if steps >= total:
                        break
                    loss_sum, count, parts_sum = 0.0, 0, {}
                    for rows in epoch_batches(lengths, config.batch_size, rng):
                        if steps >= total:
                            break
                        loss, parts = step_loss(rows)
                        value = float(loss.detach())
                        if not math.isfinite(value):  # stop before the update spoils the weights
                            raise FloatingPointError(f"{desc}: loss became {value} at step {steps + 1}")
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        if config.grad_clip is not None:
                            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                        optimizer.step()
                        scheduler.step()
                        steps += 1
                        loss_sum += value * len(rows)
                        count += len(rows)
                        for key, part in parts.items():
                            parts_sum[key] = parts_sum.get(key, 0.0) + float(part.detach()) * len(rows)
                        bar.update(1)
                        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                    epoch_losses.append(loss_sum / max(count, 1))
                    for key, value_sum in parts_sum.items():
                        epoch_parts.setdefault(key, []).append(value_sum / max(count, 1))
                    examples += count
        finally:
            model.eval()
    seconds = time.perf_counter() - started
    result = FitResult(tuple(epoch_losses), epoch_losses[-1] if epoch_losses else float("nan"), steps, seconds,
                       examples * pairs_per_example / seconds if seconds > 0 else float("inf"), n,
                       {k: tuple(v) for k, v in epoch_parts.items()})
    log.info("%s: %d examples, %d steps, %.1fs, loss %s", desc, n, steps, seconds,
             " -> ".join(f"{v:.4f}" for v in epoch_losses))
    return result


def _cuda_devices(model: torch.nn.Module) -> list[int]:
    device = next(model.parameters()).device
    return [device.index or 0] if device.type == "cuda" else []


def _non_empty(table: pd.DataFrame, what: str) -> None:
    if len(table) == 0:
        raise ValueError(f"{what} is empty")


def _float_column(table: pd.DataFrame, column: str, what: str) -> np.ndarray:
    try:
        values = table[column].to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}.{column} must be numeric") from exc
    if not np.isfinite(values).all():
        raise ValueError(f"{what}.{column} holds {int((~np.isfinite(values)).sum())} NaN/inf value(s)")
    return values


def train_click(model: CrossEncoder, news: pd.DataFrame, triplets: pd.DataFrame, config: TrainConfig) -> FitResult:
    """Click teacher: pairwise softmax loss on (trigger, clicked, not clicked) triplets of one impression.

    ``triplets``: columns trigger_id, pos_id, neg_id and weight (precomputed ``training.data.pairs.triplet_weight(frequency)``;
    when the column is absent every triplet weighs 1). Only the click head (and the backbone) learn.
    """
    started = time.perf_counter()
    check_columns(triplets, ["trigger_id", "pos_id", "neg_id"], "triplets")
    _non_empty(triplets, "triplets")
    weights = _float_column(triplets, "weight", "triplets") if "weight" in triplets.columns else \
        np.ones(len(triplets), dtype=np.float32)
    if (weights <= 0).any():
        raise ValueError("triplets.weight must be > 0 (use training.data.pairs.triplet_weight(frequency) = 1 + ln(frequency))")
    cache = PairTokenCache(model.inputs, news, {c: triplets[c] for c in ("trigger_id", "pos_id", "neg_id")})
    trig, pos, neg = (cache.rows[c] for c in ("trigger_id", "pos_id", "neg_id"))
    lengths = np.maximum(cache.pair_lengths(trig, pos), cache.pair_lengths(trig, neg))
    device = model.device
    weight_t = torch.from_numpy(weights)

    def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = cache.batch(np.concatenate([trig[rows], trig[rows]]), np.concatenate([pos[rows], neg[rows]]), device)
        click, _ = model(batch)
        return pairwise_softmax_loss(click[: len(rows)], click[len(rows):], weight_t[rows].to(device)), {}

    return fit(model, lengths, step, config, "click teacher", pairs_per_example=2, started=started)


def train_quality(model: CrossEncoder, news: pd.DataFrame, pairs: pd.DataFrame, loss: str,
                  config: TrainConfig) -> FitResult:
    """Quality teacher on judge labels: ``pairs`` columns trigger_id, candidate_id, score (float in [0, 4]);
    ``loss`` "ce" (rounded grades) or "sce" (soft targets on the two nearest grades)."""
    started = time.perf_counter()
    if loss not in QUALITY_LOSSES:
        raise ValueError(f"loss={loss!r}; expected one of {sorted(QUALITY_LOSSES)}")
    check_columns(pairs, ["trigger_id", "candidate_id", "score"], "pairs")
    _non_empty(pairs, "pairs")
    scores = _float_column(pairs, "score", "pairs")
    if ((scores < 0) | (scores > MAX_GRADE)).any():
        raise ValueError(f"pairs.score must lie in [0, {MAX_GRADE}]")
    cache = PairTokenCache(model.inputs, news, {c: pairs[c] for c in ("trigger_id", "candidate_id")})
    trig, cand = cache.rows["trigger_id"], cache.rows["candidate_id"]
    device, loss_fn, scores_t = model.device, QUALITY_LOSSES[loss], torch.from_numpy(scores)

    def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        _, quality = model(cache.batch(trig[rows], cand[rows], device))
        return loss_fn(quality, scores_t[rows].to(device)), {}

    return fit(model, cache.pair_lengths(trig, cand), step, config, f"quality teacher ({loss})", started=started)


def distill(student: CrossEncoder, news: pd.DataFrame, pairs: pd.DataFrame, teacher_click: np.ndarray,
            teacher_quality: np.ndarray, config: TrainConfig, click_weight: float = 1.0,
            quality_weight: float = 1.0) -> FitResult:
    """MT student: MSE to the click teacher's logit and to the quality teacher's 5 logits over unlabelled pairs.

    ``pairs``: columns trigger_id, candidate_id; ``teacher_click`` (N,) and ``teacher_quality`` (N, 5) aligned
    with its rows (e.g. ``score_pairs(teacher, ...).click`` / ``.quality_logits``). ``click_weight`` scales the
    click MSE (raise it to protect ClickNDCG). For continual training pass a loaded previous student.
    """
    started = time.perf_counter()
    check_columns(pairs, ["trigger_id", "candidate_id"], "pairs")
    _non_empty(pairs, "pairs")
    t_click = np.asarray(teacher_click, dtype=np.float32)
    t_quality = np.asarray(teacher_quality, dtype=np.float32)
    if t_click.shape != (len(pairs),):
        raise ValueError(f"teacher_click has shape {t_click.shape}; expected ({len(pairs)},) aligned with pairs")
    if t_quality.shape != (len(pairs), N_QUALITY):
        raise ValueError(f"teacher_quality has shape {t_quality.shape}; expected ({len(pairs)}, {N_QUALITY})")
    if not (np.isfinite(t_click).all() and np.isfinite(t_quality).all()):
        raise ValueError("teacher logits hold NaN/inf values")
    if click_weight < 0 or quality_weight < 0 or click_weight + quality_weight == 0:
        raise ValueError("click_weight and quality_weight must be >= 0 and not both 0")
    cache = PairTokenCache(student.inputs, news, {c: pairs[c] for c in ("trigger_id", "candidate_id")})
    trig, cand = cache.rows["trigger_id"], cache.rows["candidate_id"]
    device = student.device
    click_t, quality_t = torch.from_numpy(t_click), torch.from_numpy(t_quality)

    def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        click, quality = student(cache.batch(trig[rows], cand[rows], device))
        out = distillation_loss(click, quality, click_t[rows].to(device), quality_t[rows].to(device),
                                click_weight, quality_weight)
        return out.total, {"click": out.click, "quality": out.quality}

    return fit(student, cache.pair_lengths(trig, cand), step, config, "distil student", started=started)

