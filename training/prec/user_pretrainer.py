"""PREC user pre-training (MUTP + UVA, optional PUNR behaviour masking / generation) and user encoding."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from training.embedding_table import EmbeddingTable
from training.prec.config import UserPretrainConfig
from training.prec.lightning_loop import PretrainModule, TaskOutputs, fit, split_train_val
from training.prec.user_data import (
    ITEM_OFFSET,
    ITEM_PAD,
    ProfileVocab,
    UserSequences,
    build_user_sequences,
    latest_histories,
)
from training.prec.user_encoder_store import load_user_encoder, save_user_encoder
from training.prec.user_model import UserEncoder
from training.prec.user_tasks import (
    UserBatchCollator,
    UserTaskHeads,
    UserTasks,
    resolve_user_tasks,
    sampled_softmax,
)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class UserPretrainResult:
    """Outcome of ``train_user_encoder``; ``encoder_dir`` is loadable by ``load_user_encoder``."""

    encoder_dir: Path
    model_version: str
    metrics: dict[str, float]        # final val metrics of the best weights: val/loss, val/<task>_loss|_acc
    tasks: tuple[str, ...]
    n_train: int
    n_val: int
    global_step: int
    n_unknown_clicks: int            # history clicks absent from the news table (encoded as [UNK])
    n_clicks: int
    best_checkpoint: Path | None = None


class UserPretrainModule(PretrainModule):
    def __init__(self, encoder: UserEncoder, heads: UserTaskHeads, tasks: UserTasks,
                 config: UserPretrainConfig) -> None:
        super().__init__(config)
        self.encoder, self.heads, self.tasks, self.config = encoder, heads, tasks, config
        self.task_weights = {n: getattr(tasks, n) for n in tasks.names}

    def _infonce(self, queries: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return sampled_softmax(queries, items - ITEM_OFFSET, self.encoder.news_table, self.config.num_negatives,
                               self.config.temperature)

    def task_outputs(self, batch: dict[str, torch.Tensor]) -> TaskOutputs:
        items = batch["items"]
        states, mask = self.encoder.hidden_states(items, batch.get("profile"))
        user = self.encoder.pool(states, mask)
        out: TaskOutputs = {}
        if self.tasks.mutp > 0:
            assert self.heads.mutp is not None  # the heads of every enabled task are built
            labels = batch["mutp_labels"]
            selected = labels >= ITEM_OFFSET
            if bool(selected.any()):
                item_states = states[:, 1: 1 + items.shape[1]]
                out["mutp"] = self._infonce(self.heads.mutp(item_states[selected]), labels[selected])
            else:
                out["mutp"] = (user.sum() * 0.0, None)
        if self.tasks.uva > 0:
            assert self.heads.uva is not None
            logit = self.heads.uva(user).squeeze(-1)
            label = batch["uva_label"]
            out["uva"] = (F.binary_cross_entropy_with_logits(logit, label),
                          ((logit > 0).float() == label).float().mean())
        if self.tasks.generation > 0:
            out["generation"] = self._generation(user, batch["original_items"])
        return out

    def _generation(self, user: torch.Tensor, original: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        valid = original != ITEM_PAD
        rows = valid.any(1)
        if not bool(rows.any()):
            return user.sum() * 0.0, None
        user, original, valid = user[rows], original[rows], valid[rows]
        assert self.heads.generation is not None  # _generation runs for the enabled generation task only
        predicted = self.heads.generation(user, self.encoder.item_vectors(original), valid)
        target = original >= ITEM_OFFSET
        if not bool(target.any()):  # only [UNK] clicks: nothing to reconstruct
            return predicted.sum() * 0.0, None
        return self._infonce(predicted[target], original[target])


@dataclass
class UserPretrainSetup:
    module: UserPretrainModule
    sequences: UserSequences
    profile_vocab: ProfileVocab | None
    train_collator: UserBatchCollator
    val_collator: UserBatchCollator
    train_index: np.ndarray
    val_index: np.ndarray


def prepare_user_pretraining(histories: pd.DataFrame, news_embeddings: EmbeddingTable, config: UserPretrainConfig,
                             user_profiles: pd.DataFrame | None = None,
                             as_of_day: str | None = None) -> UserPretrainSetup:
    """Seed, take each user's latest history, split users 4:1, build encoder, heads and collators."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    latest = latest_histories(histories, as_of_day)
    use_profiles = config.use_profiles and user_profiles is not None and not user_profiles.empty
    vocab = ProfileVocab.fit(user_profiles) if use_profiles else None
    sequences = build_user_sequences(latest, news_embeddings, config.max_history,
                                     user_profiles if use_profiles else None, vocab)
    if sequences.n_unknown:
        log.warning("%d of %d history clicks are not in the news table; they use the learned [UNK] vector",
                    sequences.n_unknown, sequences.n_clicks)
    tasks = resolve_user_tasks(config, sequences)
    train_index, val_index = split_train_val(len(sequences), config.val_fraction, config.seed)
    torch.manual_seed(config.seed)
    encoder = UserEncoder(news_embeddings.dim, config, vocab.sizes if vocab is not None else None)
    encoder.set_news_table(news_embeddings.vectors)
    heads = UserTaskHeads(config.hidden_size, news_embeddings.dim, tasks, config)
    module = UserPretrainModule(encoder, heads, tasks, config)
    n_news = len(news_embeddings.ids)
    return UserPretrainSetup(
        module, sequences, vocab,
        UserBatchCollator(sequences, n_news, config, tasks, train_index, train=True),
        UserBatchCollator(sequences, n_news, config, tasks, val_index, train=False),
        train_index, val_index,
    )


def train_user_encoder(histories: pd.DataFrame, news_embeddings: EmbeddingTable, config: UserPretrainConfig,
                       out_dir: str | Path, user_profiles: pd.DataFrame | None = None,
                       loggers: list[Logger] | None = None, as_of_day: str | None = None,
                       news_model_version: str | None = None,
                       callbacks: list[L.Callback] | None = None) -> UserPretrainResult:
    """Pre-train a user encoder on HISTORIES_SCHEMA rows over frozen news vectors; save it to ``out_dir``.

    ``as_of_day`` limits training to histories with ``day <= as_of_day``; ``news_model_version`` is only
    recorded in the manifest for lineage; ``loggers`` / ``callbacks``: Lightning loggers and extra callbacks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare_user_pretraining(histories, news_embeddings, config, user_profiles, as_of_day)
    train_loader = DataLoader(setup.train_index.tolist(), batch_size=config.batch_size, shuffle=True,
                              collate_fn=setup.train_collator, generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(setup.val_index.tolist(), batch_size=config.batch_size, shuffle=False,
                            collate_fn=setup.val_collator)
    log.info("user pre-training: %d train / %d val users, tasks %s", len(setup.train_index),
             len(setup.val_index), setup.module.tasks.names)
    outcome = fit(setup.module, train_loader, val_loader, config, out_dir / "lightning", loggers, callbacks)
    version = save_user_encoder(setup.module.encoder.cpu(), config, setup.profile_vocab, out_dir, news_model_version)
    (out_dir / METRICS_FILE).write_text(json.dumps(outcome.metrics, indent=2, sort_keys=True))
    return UserPretrainResult(
        encoder_dir=out_dir, model_version=version, metrics=outcome.metrics, tasks=setup.module.tasks.names,
        n_train=len(setup.train_index), n_val=len(setup.val_index), global_step=outcome.global_step,
        n_unknown_clicks=setup.sequences.n_unknown, n_clicks=setup.sequences.n_clicks,
        best_checkpoint=outcome.best_checkpoint,
    )


def encode_users(user_encoder_dir: str | Path, histories: pd.DataFrame, news_embeddings: EmbeddingTable,
                 as_of_day: str, user_profiles: pd.DataFrame | None = None, batch_size: int = 256,
                 device: str | torch.device | None = None, progress: bool | None = None) -> EmbeddingTable:
    """User vectors (ids sorted) from each user's latest history with ``day <= as_of_day``.

    Users whose first impression is after ``as_of_day`` are absent. Clicks on news missing from
    ``news_embeddings`` use the learned [UNK] vector.
    """
    device = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    saved = load_user_encoder(user_encoder_dir, device)
    if news_embeddings.dim != saved.model.news_dim:
        raise ValueError(f"news vectors have dim {news_embeddings.dim}, the user encoder expects "
                         f"{saved.model.news_dim}")
    latest = latest_histories(histories, as_of_day)
    profiles = user_profiles if saved.profile_vocab is not None else None
    sequences = build_user_sequences(latest, news_embeddings, saved.config.max_history, profiles, saved.profile_vocab)
    if sequences.n_unknown:
        log.info("encode_users: %d of %d clicks not in the news table ([UNK])", sequences.n_unknown,
                 sequences.n_clicks)
    model = saved.model
    model.set_news_table(news_embeddings.vectors)
    out = np.zeros((len(sequences), model.hidden_size), dtype=np.float32)
    starts = range(0, len(sequences), batch_size)
    show = progress if progress is not None else len(starts) >= 20
    with torch.inference_mode():
        for start in tqdm(starts, desc="encode users", unit="batch", disable=not show):
            rows = range(start, min(start + batch_size, len(sequences)))
            width = max(1, max(len(sequences.items[r]) for r in rows))
            items = torch.full((len(rows), width), ITEM_PAD, dtype=torch.long)
            for k, r in enumerate(rows):
                items[k, : len(sequences.items[r])] = torch.from_numpy(sequences.items[r])
            profile = torch.from_numpy(sequences.profile[start: start + len(rows)]).to(device) \
                if sequences.profile is not None else None
            out[start: start + len(rows)] = model(items.to(device), profile).float().cpu().numpy()
    return EmbeddingTable(ids=sequences.user_ids, vectors=out)
