"""Lightning wrapper: BCE training, MIND metrics on the validation split, best-epoch weights kept in memory."""
from __future__ import annotations

import copy

import lightning as L
import numpy as np
import torch
from torch.nn import functional as F

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.metrics.ranking import METRIC_KEYS, mind_metrics


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
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._val_metrics: dict[str, float] = {}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(self.model(batch), batch["label"])
        self._loss_sum = self._loss_sum.to(loss.device) + loss.detach()
        self._loss_batches += 1
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(batch["label"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        scores = torch.sigmoid(self.model(batch))
        self._val_outputs.append((batch["impression_id"].cpu(), batch["label"].cpu(), scores.float().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        ids, labels, scores = (torch.cat(parts).numpy() for parts in zip(*self._val_outputs))
        self._val_outputs.clear()
        self._val_metrics = ranking_metrics(ids, labels, scores)
        for key, value in self._val_metrics.items():
            self.log(f"val_{key}", value, prog_bar=key == "auc")
        auc = self._val_metrics["auc"]
        if self.best_epoch < 0 or auc > self.best_metrics.get("auc", -np.inf):
            self._keep_best(self._val_metrics)

    def _keep_best(self, metrics: dict[str, float]) -> None:
        self.best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.best_metrics = dict(metrics)
        self.best_epoch = self.current_epoch

    def on_train_epoch_end(self) -> None:
        loss = float(self._loss_sum / max(self._loss_batches, 1))
        self.history.append({"epoch": self.current_epoch, "train_loss": loss,
                             **{f"val_{k}": v for k, v in self._val_metrics.items()}})
        self._loss_sum, self._loss_batches, self._val_metrics = torch.zeros(()), 0, {}
        if not self.trainer.val_dataloaders:  # no validation split: the last epoch is the result
            self._keep_best({})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def restore_best(self) -> None:
        """Load the best epoch's weights into ``model`` (keeps the frozen vector buffers)."""
        if self.best_state is not None:
            self.model.load_state_dict(copy.copy(self.best_state))
