"""Training loops: click teacher (pairwise softmax), quality teacher (CE / SCE), MT student (distillation),
direct two-head fine-tuning on judged pairs (click BCE + SCE).

Plain torch: AdamW (no decay on biases / norms), linear warmup then linear decay to zero, gradient clipping.
Each call tokenises the news it needs once (``PairTokenCache``), shuffles with a seeded generator and, within
chunks of 50 batches, groups examples of similar length into a batch (dynamic padding); the batch order is shuffled
again. Deterministic given the seed and the starting weights. Warm start: ``load_cross_encoder`` then call again.

Early stopping (``train_click(..., early_stopping=...)``): after each epoch the held-out loss is measured; training
stops after ``TrainConfig.patience`` epochs without a lower one and the best epoch's weights are restored.
Two-term losses (``distill``, ``train_judged``) are balanced: both unweighted terms are measured on the first
batches before training (eval mode, ``BALANCE_BATCHES``) and each is weighted ``ratio / initial term``
(``losses.head_weights``), so at step 0 the terms stand in the configured ratio (1:1 by default).
"""
from __future__ import annotations

import dataclasses
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
    MAX_GRADE,
    click_label_loss,
    distillation_loss,
    head_weights,
    pairwise_softmax_loss,
    quality_ce_loss,
    quality_sce_loss,
)
from training.cross_encoder.model import CrossEncoder
from training.cross_encoder.pair_inputs import PairTokenCache, check_columns
from training.prec.encode_cache import length_bucketed_batches
from training.torch_threads import torch_threads
from training.weighted_losses import weighted_sum

log = logging.getLogger(__name__)

QUALITY_LOSSES = {"ce": quality_ce_loss, "sce": quality_sce_loss}
BALANCE_BATCHES = 4  #: batches on which a two-term loss measures its terms before training (head weights)


@dataclass(frozen=True)
class FitResult:
    """Outcome of one training call. ``epoch_losses``: example-weighted mean training loss of each (possibly
    partial, when ``max_steps`` stops it) epoch; ``train_loss`` = the last of them; ``seconds``: the whole call
    (tokenisation included); ``pairs_per_second``: pairs through the model (a click triplet counts two) / seconds;
    ``epoch_parts``: per-epoch means of the unweighted loss terms (distillation: "click", "quality");
    ``initial_parts`` / ``part_weights``: those terms measured before training and the weight each got (balanced
    two-term losses; the weighted term of an epoch is ``part_weights[k] * epoch_parts[k][e]``);
    ``held_out``: per-epoch early-stopping figures ("loss", and "accuracy" for the click teacher);
    ``best_epoch``: the 1-based epoch whose weights were kept (None without early stopping)."""

    epoch_losses: tuple[float, ...]
    train_loss: float
    steps: int
    seconds: float
    pairs_per_second: float
    n_examples: int
    epoch_parts: dict[str, tuple[float, ...]] = field(default_factory=dict)
    initial_parts: dict[str, float] = field(default_factory=dict)
    part_weights: dict[str, float] = field(default_factory=dict)
    held_out: dict[str, tuple[float, ...]] = field(default_factory=dict)
    best_epoch: int | None = None


StepFn = Callable[[np.ndarray], tuple[torch.Tensor, dict[str, torch.Tensor]]]
ValidateFn = Callable[[], dict[str, float]]   #: held-out figures of the current weights; "loss" is monitored


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
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def fit(model: CrossEncoder, lengths: np.ndarray, step_loss: StepFn, config: TrainConfig, desc: str,
        pairs_per_example: int = 1, started: float | None = None, validate: ValidateFn | None = None) -> FitResult:
    """Generic loop: ``step_loss(example_indices) -> (loss, parts)`` per batch; ``validate`` (eval mode, after
    each epoch) enables early stopping on its "loss"; see the module docstring."""
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
    held_out: dict[str, list[float]] = {}
    best_loss, best_epoch, best_state, waited = math.inf, None, None, 0
    steps = examples = 0
    with torch_threads(config.torch_threads), torch.random.fork_rng(devices=_cuda_devices(model)):
        torch.manual_seed(config.seed)
        model.train()
        try:
            with tqdm(total=total, desc=desc, unit="step", disable=not config.progress_bar) as bar:
                for _ in range(config.epochs):
                    if steps >= total:
                        break
                    loss_sum, count = 0.0, 0
                    parts_sum: dict[str, float] = {}
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
                    if validate is None:
                        continue
                    model.eval()
                    figures = validate()
                    model.train()
                    for key, value in figures.items():
                        held_out.setdefault(key, []).append(float(value))
                    log.info("%s epoch %d: held-out %s", desc, len(epoch_losses),
                             ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
                    if figures["loss"] < best_loss:
                        best_loss, best_epoch, waited = figures["loss"], len(epoch_losses), 0
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        waited += 1
                        if waited >= config.patience:
                            break
        finally:
            model.eval()
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - started
    result = FitResult(tuple(epoch_losses), epoch_losses[-1] if epoch_losses else float("nan"), steps, seconds,
                       examples * pairs_per_example / seconds if seconds > 0 else float("inf"), n,
                       {k: tuple(v) for k, v in epoch_parts.items()},
                       held_out={k: tuple(v) for k, v in held_out.items()}, best_epoch=best_epoch)
    log.info("%s: %d examples, %d steps, %.1fs, loss %s%s", desc, n, steps, seconds,
             " -> ".join(f"{v:.4f}" for v in epoch_losses),
             f"; kept epoch {best_epoch} of {len(epoch_losses)}" if best_epoch is not None else "")
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


def _triplet_weights(triplets: pd.DataFrame, what: str) -> np.ndarray:
    check_columns(triplets, ["trigger_id", "pos_id", "neg_id"], what)
    _non_empty(triplets, what)
    weights = _float_column(triplets, "weight", what) if "weight" in triplets.columns else \
        np.ones(len(triplets), dtype=np.float32)
    if (weights <= 0).any():
        raise ValueError(f"{what}.weight must be > 0 "
                         "(use training.data.pairs.triplet_weight(frequency) = 1 + ln(frequency))")
    return weights


def _click_logits(model: CrossEncoder, cache: PairTokenCache, trig: np.ndarray, cand: np.ndarray,
                  batch_size: int) -> torch.Tensor:
    """Click logits of pairs (rows of ``cache``) under ``torch.inference_mode``, in input order."""
    out = torch.empty(len(trig), dtype=torch.float32)
    with torch.inference_mode():
        for rows in length_bucketed_batches(cache.pair_lengths(trig, cand), batch_size):
            click, _ = model(cache.batch(trig[rows], cand[rows], model.device))
            out[torch.from_numpy(np.asarray(rows))] = click.float().cpu()
    return out


def triplet_figures(pos: torch.Tensor, neg: torch.Tensor, weight: torch.Tensor) -> dict[str, float]:
    """Held-out figures of click logits on triplets: weighted pairwise softmax ``loss`` and ``accuracy`` (the
    weighted share of triplets with the clicked candidate above the other; a tie counts 1/2)."""
    hits = (pos > neg).to(torch.float32) + 0.5 * (pos == neg).to(torch.float32)
    return {"loss": float(pairwise_softmax_loss(pos, neg, weight)),
            "accuracy": float((weight * hits).sum() / weight.sum())}


def train_click(model: CrossEncoder, news: pd.DataFrame, triplets: pd.DataFrame, config: TrainConfig,
                early_stopping: pd.DataFrame | None = None) -> FitResult:
    """Click teacher: pairwise softmax loss on (trigger, clicked, not clicked) triplets of one impression.

    ``triplets``: columns trigger_id, pos_id, neg_id and weight (precomputed
    ``training.data.pairs.triplet_weight(frequency)``; when the column is absent every triplet weighs 1). Only the
    click head (and the backbone) learn.
    ``early_stopping``: triplets of a later day, same columns: after each epoch their weighted pairwise softmax
    loss and pairwise accuracy are measured (``FitResult.held_out``); training stops after ``config.patience``
    epochs without a lower loss and the best epoch's weights are kept (``FitResult.best_epoch``).
    """
    started = time.perf_counter()
    weights = _triplet_weights(triplets, "triplets")
    cache = PairTokenCache(model.inputs, news, {c: triplets[c] for c in ("trigger_id", "pos_id", "neg_id")})
    trig, pos, neg = (cache.rows[c] for c in ("trigger_id", "pos_id", "neg_id"))
    lengths = np.maximum(cache.pair_lengths(trig, pos), cache.pair_lengths(trig, neg))
    device = model.device
    weight_t = torch.from_numpy(weights)
    validate = None
    if early_stopping is not None:
        es_weight = torch.from_numpy(_triplet_weights(early_stopping, "early_stopping"))
        es_cache = PairTokenCache(model.inputs, news,
                                  {c: early_stopping[c] for c in ("trigger_id", "pos_id", "neg_id")})
        es_trig, es_pos, es_neg = (es_cache.rows[c] for c in ("trigger_id", "pos_id", "neg_id"))
        es_batch = max(config.batch_size, 256)

        def validate() -> dict[str, float]:
            return triplet_figures(_click_logits(model, es_cache, es_trig, es_pos, es_batch),
                                   _click_logits(model, es_cache, es_trig, es_neg, es_batch), es_weight)

    def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = cache.batch(np.concatenate([trig[rows], trig[rows]]), np.concatenate([pos[rows], neg[rows]]), device)
        click, _ = model(batch)
        return pairwise_softmax_loss(click[: len(rows)], click[len(rows):], weight_t[rows].to(device)), {}

    return fit(model, lengths, step, config, "click teacher", pairs_per_example=2, started=started, validate=validate)


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


TermsFn = Callable[[np.ndarray, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def initial_terms(model: CrossEncoder, cache: PairTokenCache, trig: np.ndarray, cand: np.ndarray,
                  terms: TermsFn, config: TrainConfig, n_batches: int = BALANCE_BATCHES) -> dict[str, float]:
    """Example-weighted means of the unweighted loss terms on the first ``n_batches`` batches that training
    will see (same seed, same order), in eval mode without gradients; the model's mode is restored."""
    batches = epoch_batches(cache.pair_lengths(trig, cand), config.batch_size, np.random.default_rng(config.seed))
    sums: dict[str, float] = {}
    count, was_training = 0, model.training
    model.eval()
    try:
        with torch_threads(config.torch_threads), torch.inference_mode():
            for rows in batches[:n_batches]:
                click, quality = model(cache.batch(trig[rows], cand[rows], model.device))
                for key, value in terms(rows, click, quality).items():
                    sums[key] = sums.get(key, 0.0) + float(value) * len(rows)
                count += len(rows)
    finally:
        model.train(was_training)
    return {key: value / count for key, value in sums.items()}


def _balanced_fit(model: CrossEncoder, news: pd.DataFrame, pairs: pd.DataFrame, terms: TermsFn,
                  ratios: dict[str, float], config: TrainConfig, desc: str, balance: bool,
                  started: float) -> FitResult:
    """Train on ``sum_k w_k * term_k`` over (trigger, candidate) pairs; ``w_k = ratio_k / initial term_k``
    (``balance``) or ``ratio_k``."""
    cache = PairTokenCache(model.inputs, news, {c: pairs[c] for c in ("trigger_id", "candidate_id")})
    trig, cand = cache.rows["trigger_id"], cache.rows["candidate_id"]
    initial = initial_terms(model, cache, trig, cand, terms, config) if balance else {}
    weights = head_weights(initial, ratios) if balance else {k: float(v) for k, v in ratios.items() if v > 0}
    if balance:
        log.info("%s: terms before training %s -> weights %s", desc,
                 {k: round(v, 5) for k, v in initial.items()}, {k: round(v, 5) for k, v in weights.items()})
    device = model.device

    def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        click, quality = model(cache.batch(trig[rows], cand[rows], device))
        parts = terms(rows, click, quality)
        return weighted_sum(parts, weights), parts

    result = fit(model, cache.pair_lengths(trig, cand), step, config, desc, started=started)
    return dataclasses.replace(result, initial_parts=initial, part_weights=weights)


def _check_ratios(click_weight: float, quality_weight: float) -> None:
    for name, value in (("click_weight", click_weight), ("quality_weight", quality_weight)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}={value} must be a finite number >= 0")
    if click_weight + quality_weight == 0:
        raise ValueError("click_weight and quality_weight must not both be 0")


def distill(student: CrossEncoder, news: pd.DataFrame, pairs: pd.DataFrame, teacher_click: np.ndarray,
            teacher_quality: np.ndarray, config: TrainConfig, click_weight: float = 1.0,
            quality_weight: float = 1.0, balance: bool = True) -> FitResult:
    """MT student: MSE to the click teacher's logit and MSE to the quality teacher's **centred** 5 logits over
    unlabelled pairs (``losses.distillation_loss``).

    ``pairs``: columns trigger_id, candidate_id; ``teacher_click`` (N,) and ``teacher_quality`` (N, 5) aligned
    with its rows (e.g. ``score_pairs(teacher, ...).click`` / ``.quality_logits``). ``balance`` (default): the
    terms' weights are ``click_weight / initial click term`` and ``quality_weight / initial quality term``, so at
    step 0 they stand in the ratio click_weight : quality_weight; a weight of 0 drops its term (the click-only
    student). Without ``balance`` the weights multiply the raw terms. For continual training pass a loaded
    previous student.
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
    _check_ratios(click_weight, quality_weight)
    click_t, quality_t = torch.from_numpy(t_click), torch.from_numpy(t_quality)
    device = student.device

    def terms(rows: np.ndarray, click: torch.Tensor, quality: torch.Tensor) -> dict[str, torch.Tensor]:
        out = distillation_loss(click, quality, click_t[rows].to(device), quality_t[rows].to(device))
        return {"click": out.click, "quality": out.quality}

    return _balanced_fit(student, news, pairs, terms, {"click": click_weight, "quality": quality_weight}, config,
                         "distil student", balance, started)


def train_judged(model: CrossEncoder, news: pd.DataFrame, pairs: pd.DataFrame, config: TrainConfig,
                 click_weight: float = 1.0, quality_weight: float = 1.0, quality_loss: str = "sce",
                 balance: bool = True) -> FitResult:
    """Both heads on judged pairs without a teacher: binary cross-entropy of the click head against the pairs'
    logged click rate (``clicked`` in [0, 1]; NaN: never logged, left out of the click term) plus the quality
    loss (``quality_loss`` "sce" or "ce") against the judge's ``score``; weighted and balanced as in ``distill``.

    ``pairs``: columns trigger_id, candidate_id, score (in [0, 4]), clicked.
    """
    started = time.perf_counter()
    if quality_loss not in QUALITY_LOSSES:
        raise ValueError(f"quality_loss={quality_loss!r}; expected one of {sorted(QUALITY_LOSSES)}")
    check_columns(pairs, ["trigger_id", "candidate_id", "score", "clicked"], "pairs")
    _non_empty(pairs, "pairs")
    scores = _float_column(pairs, "score", "pairs")
    if ((scores < 0) | (scores > MAX_GRADE)).any():
        raise ValueError(f"pairs.score must lie in [0, {MAX_GRADE}]")
    try:
        clicked = pairs["clicked"].to_numpy(dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError("pairs.clicked must be numeric (a click rate in [0, 1], NaN when unknown)") from exc
    known = clicked[~np.isnan(clicked)]
    if known.size == 0 and click_weight > 0:
        raise ValueError("pairs.clicked: no judged pair has a logged click label")
    if ((known < 0) | (known > 1)).any():
        raise ValueError("pairs.clicked must lie in [0, 1]")
    _check_ratios(click_weight, quality_weight)
    scores_t, clicked_t = torch.from_numpy(scores), torch.from_numpy(clicked)
    loss_fn, device = QUALITY_LOSSES[quality_loss], model.device

    def terms(rows: np.ndarray, click: torch.Tensor, quality: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"click": click_label_loss(click, clicked_t[rows].to(device)),
                "quality": loss_fn(quality, scores_t[rows].to(device))}

    return _balanced_fit(model, news, pairs, terms, {"click": click_weight, "quality": quality_weight}, config,
                         f"judged pairs (click + {quality_loss})", balance, started)
