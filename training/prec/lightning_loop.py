"""Shared Lightning plumbing for both pre-trainers: seeded splits, the module base class and ``fit``."""
from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader

from training.distributed import trainer_kwargs
from training.prec.config import TrainLoopConfig
from training.weighted_losses import weighted_sum

log = logging.getLogger(__name__)

VAL_LOSS = "val/loss"


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into (train, val); both non-empty (needs ``n`` >= 2)."""
    if n < 2:
        raise ValueError(f"need at least 2 rows to split train/val, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


TaskOutputs = dict[str, tuple[torch.Tensor, torch.Tensor | None]]


class PretrainModule(L.LightningModule):
    """Weighted multi-task loss with per-task loss/accuracy logging; AdamW + warmup/linear decay.

    Subclasses implement ``task_outputs(batch) -> {task: (loss, accuracy or None)}`` and ``task_weights``.
    """

    def __init__(self, loop: TrainLoopConfig) -> None:
        super().__init__()
        self.loop = loop

    task_weights: dict[str, float]

    def task_outputs(self, batch: dict[str, torch.Tensor]) -> TaskOutputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def total_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, TaskOutputs]:
        outputs = self.task_outputs(batch)
        if not outputs:
            raise ValueError(f"{type(self).__name__}.task_outputs returned no task loss")
        losses = {name: loss for name, (loss, _) in outputs.items()}
        return weighted_sum(losses, {name: self.task_weights[name] for name in outputs}), outputs

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        total, outputs = self.total_loss(batch)
        size = int(next(iter(batch.values())).shape[0])
        on_step = stage == "train"
        self.log(f"{stage}/loss", total, on_step=on_step, on_epoch=True, prog_bar=True, batch_size=size)
        for name, (loss, acc) in outputs.items():
            self.log(f"{stage}/{name}_loss", loss, on_step=on_step, on_epoch=True, batch_size=size)
            if acc is not None and not torch.isnan(acc):
                self.log(f"{stage}/{name}_acc", acc, on_step=on_step, on_epoch=True, batch_size=size)
        return total

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "LayerNorm" in name or "norm" in name else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.loop.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.loop.learning_rate)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 10**6
        warmup = min(self.loop.warmup_steps, max(1, total // 10))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.05, 1.0 - (step - warmup) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class _ReportProgress(L.Callback):
    """Puts the final step and epoch into ``callback_metrics``: the part of a rank's trainer state that
    spawn-based strategies send back to the calling process (never logged)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.callback_metrics[_STEP] = torch.tensor(float(trainer.global_step))
        trainer.callback_metrics[_EPOCH] = torch.tensor(float(trainer.current_epoch))


_STEP, _EPOCH = "progress/global_step", "progress/epoch"


@dataclass(frozen=True)
class FitOutcome:
    metrics: dict[str, float]
    best_checkpoint: Path | None
    global_step: int
    epochs: int


def fit(module: PretrainModule, train_loader: DataLoader[Any], val_loader: DataLoader[Any], loop: TrainLoopConfig,
        root_dir: Path, loggers: list[Logger] | None = None, callbacks: list[L.Callback] | None = None) -> FitOutcome:
    """Train with checkpointing + early stopping on ``val/loss``, restore the best weights and
    return the final validation metrics of those weights.

    ``loop.strategy``/``devices``/``num_nodes`` go to the Trainer (``training.distributed``). Under DDP
    Lightning shards both loaders with a ``DistributedSampler`` (which pads the validation set to a
    multiple of the ranks, so the ``val/loss`` that picks the checkpoint is approximate); the returned
    metrics come from one process validating the restored weights on the whole validation set."""
    distributed = trainer_kwargs(loop.strategy, loop.devices, loop.num_nodes, loop.accelerator)
    shutil.rmtree(root_dir / "checkpoints", ignore_errors=True)  # a rerun must not pick up a stale best
    checkpoint = ModelCheckpoint(dirpath=root_dir / "checkpoints", filename="best", monitor=VAL_LOSS, mode="min",
                                 save_top_k=1, save_weights_only=True, save_on_train_epoch_end=False)
    stopper = EarlyStopping(monitor=VAL_LOSS, mode="min", patience=loop.early_stopping_patience, strict=False,
                            check_on_train_epoch_end=False)  # max_steps may end a run before any validation
    n_batches = max(1, len(train_loader))
    settings: dict[str, Any] = dict(accelerator=loop.accelerator, logger=list(loggers) if loggers else False,
                    enable_progress_bar=loop.progress_bar, enable_model_summary=False,
                    default_root_dir=str(root_dir), limit_val_batches=loop.limit_val_batches, deterministic=False)
    trainer = L.Trainer(
        max_epochs=loop.max_epochs, max_steps=loop.max_steps, log_every_n_steps=min(50, n_batches),
        callbacks=[checkpoint, stopper, _ReportProgress(), *(callbacks or [])],
        val_check_interval=loop.val_check_interval, num_sanity_val_steps=0, **settings, **distributed)
    # a spawn-based strategy cannot run a second loop on the same Trainer, and a sharded one would pad
    single = trainer if loop.devices * loop.num_nodes == 1 else L.Trainer(devices=1, **settings)
    threads_before = torch.get_num_threads()
    if loop.torch_threads > 0:
        torch.set_num_threads(loop.torch_threads)
    try:
        trainer.fit(module, train_loader, val_loader)
        best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
        if best is not None and best.exists():
            state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
            module.load_state_dict(state)
            log.info("restored best checkpoint %s (val/loss %s)", best,  # score: None after spawn/fork ranks
                     checkpoint.best_model_score)
        results = single.validate(module, val_loader, verbose=False)
    finally:
        torch.set_num_threads(threads_before)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items() if math.isfinite(float(v))}
    done = trainer.callback_metrics
    return FitOutcome(metrics, best, int(done.get(_STEP, trainer.global_step)),
                      int(done.get(_EPOCH, trainer.current_epoch)))
