"""Lightning wrapper: BCE training, MIND metrics on the validation split, best-epoch weights kept in memory.

Under DDP (``training.distributed``) each rank scores its share of the validation rows; the shares are
gathered and put back in row order, so every rank computes the metrics of the whole validation day,
exactly those of one process. At the end of fit the best epoch's weights are loaded into the model and
``history``/``best_metrics``/``best_epoch`` ride along in the module's state (``get_extra_state``), which
is what a spawn-based strategy sends back to the calling process.
"""
from __future__ import annotations

import copy
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.distributed import gather_arrays
from training.metrics.mind import METRIC_KEYS, mind_metrics


def ranking_metrics(impression_ids: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """``METRIC_KEYS`` via ``mind_metrics``; rows are stably grouped by impression first."""
    order = np.argsort(impression_ids, kind="stable")
    m = mind_metrics(impression_ids[order], labels[order], scores[order])
    return {key: float(getattr(m, key)) for key in METRIC_KEYS}


class CtrLightningModule(L.LightningModule):
    """Trains a ``CtrModel``; logs ``train_loss`` and ``val_auc/val_mrr/val_ndcg5/val_ndcg10``.

    ``history`` holds one dict per epoch; ``best_state``/``best_metrics``/``best_epoch`` track the epoch
    with the highest validation AUC (or the last epoch when there is no validation split).
    """

    def __init__(self, model: CtrModel, config: CtrConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.save_hyperparameters(config.to_dict())  # so that loggers record the config
        self.history: list[dict[str, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metrics: dict[str, float] = {}
        self.best_epoch = -1
        self._loss_sum = torch.zeros(())
        self._loss_batches = 0
        self._val_outputs: list[tuple[torch.Tensor, ...]] = []
        self._val_metrics: dict[str, float] = {}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = F.binary_cross_entropy_with_logits(self.model(batch), batch["label"], reduction="none")
        # this rank's share of the global batch's mean loss; DDP averages gradients over ranks, hence * world
        share = (losses * batch["row_weight"]).sum()
        self._loss_sum = self._loss_sum.to(share.device) + share.detach()
        self._loss_batches += 1
        loss = share * self.trainer.world_size
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(losses))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        scores = torch.sigmoid(self.model(batch))
        self._val_outputs.append((batch["row"].cpu(), batch["impression_id"].cpu(), batch["label"].cpu(),
                                  scores.float().cpu()))

    def on_validation_epoch_end(self) -> None:
        local: list[np.ndarray] = [torch.cat(parts).numpy() for parts in zip(*self._val_outputs)] \
            if self._val_outputs else \
            [np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.float32)]
        self._val_outputs.clear()
        rows, ids, labels, scores = gather_arrays(local)  # every rank: all validation rows
        if not len(rows):
            return
        order = np.argsort(rows, kind="stable")
        self._val_metrics = ranking_metrics(ids[order], labels[order], scores[order])
        for key, value in self._val_metrics.items():  # identical on every rank: the sync is a no-op mean
            self.log(f"val_{key}", value, prog_bar=key == "auc", sync_dist=True)
        auc = self._val_metrics["auc"]
        if self.best_epoch < 0 or auc > self.best_metrics.get("auc", -np.inf):
            self._keep_best(self._val_metrics)

    def _keep_best(self, metrics: dict[str, float]) -> None:
        self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.best_metrics = dict(metrics)
        self.best_epoch = self.current_epoch

    def on_train_epoch_end(self) -> None:
        total = self.trainer.strategy.reduce(self._loss_sum.clone(), reduce_op="sum")  # global batch losses
        loss = float(total / max(self._loss_batches, 1))
        self.history.append({"epoch": self.current_epoch, "train_loss": loss,
                             **{f"val_{k}": v for k, v in self._val_metrics.items()}})
        self._loss_sum, self._loss_batches, self._val_metrics = torch.zeros(()), 0, {}
        if not self.trainer.val_dataloaders:  # no validation split: the last epoch is the result
            self._keep_best({})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def on_fit_end(self) -> None:
        self.restore_best()  # so the weights a spawn-based strategy sends back are the best epoch's

    def restore_best(self) -> None:
        """Load the best epoch's weights into ``model`` (keeps the frozen vector buffers)."""
        if self.best_state is not None:
            self.model.load_state_dict(copy.copy(self.best_state))

    def get_extra_state(self) -> dict[str, Any]:
        """The training record, carried by ``state_dict`` (plain floats and ints, safe to load)."""
        return {"history": [{k: float(v) for k, v in row.items()} for row in self.history],
                "best_metrics": {k: float(v) for k, v in self.best_metrics.items()}, "best_epoch": self.best_epoch}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.history = [{k: (int(v) if k == "epoch" else v) for k, v in row.items()} for row in state["history"]]
        self.best_metrics = dict(state["best_metrics"])
        self.best_epoch = int(state["best_epoch"])
