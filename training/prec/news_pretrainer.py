"""PREC news pre-training (MNTP + NVA + NCP) with Lightning; ``train_news_encoder`` is the entry point."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from torch.utils.data import DataLoader

from training.prec.config import NewsPretrainConfig
from training.prec.lightning_loop import PretrainModule, TaskOutputs, fit, split_train_val
from training.prec.news_encoder_store import SPLIT_FILE, save_news_encoder
from training.prec.news_model import NewsEncoder, build_news_encoder
from training.prec.news_tasks import (
    NewsBatchCollator,
    NewsTaskHeads,
    NewsTasks,
    classification_loss,
    label_classes,
    label_codes,
    resolve_news_tasks,
)
from training.prec.news_views import view_texts
from training.prec.tokenization import NewsTokenizer, minilm_dir

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class NewsPretrainResult:
    """Outcome of ``train_news_encoder``; ``encoder_dir`` is loadable by ``load_news_encoder``."""

    encoder_dir: Path
    model_version: str
    metrics: dict[str, float]            # final val metrics of the best weights: val/loss, val/<task>_loss|_acc
    tasks: tuple[str, ...]               # tasks that were on
    n_train: int
    n_val: int
    global_step: int
    best_checkpoint: Path | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)


class NewsPretrainModule(PretrainModule):
    """Encoder + task heads; the weighted task losses are the training objective."""

    def __init__(self, encoder: NewsEncoder, heads: NewsTaskHeads, tasks: NewsTasks,
                 config: NewsPretrainConfig) -> None:
        super().__init__(config)
        self.encoder, self.heads, self.tasks, self.config = encoder, heads, tasks, config
        self.task_weights = {n: getattr(tasks, n) for n in tasks.names}

    def task_outputs(self, batch: dict[str, torch.Tensor]) -> TaskOutputs:
        ids = batch["masked_ids"] if "masked_ids" in batch else batch["input_ids"]
        states = self.encoder.hidden_states(ids, batch["view_ids"], batch["attention_mask"])
        pooled = self.encoder.pool(states, batch["attention_mask"])
        out: TaskOutputs = {}
        if self.tasks.mntp > 0:
            selected = batch["mntp_labels"] != -100
            logits = self.heads.mntp_logits(states[selected], self.encoder.word_embeddings.weight)
            out["mntp"] = classification_loss(logits, batch["mntp_labels"][selected])
        if self.tasks.nva > 0:
            assert self.heads.nva is not None  # the heads of every enabled task are built
            logit = self.heads.nva(pooled).squeeze(-1)
            label = batch["nva_label"]
            out["nva"] = (F.binary_cross_entropy_with_logits(logit, label),
                          ((logit > 0).float() == label).float().mean())
        if self.tasks.ncp > 0:
            assert self.heads.ncp is not None
            out["ncp"] = classification_loss(self.heads.ncp(pooled), batch["category"])
        if self.tasks.subcategory > 0:
            assert self.heads.subcategory is not None
            out["subcategory"] = classification_loss(self.heads.subcategory(pooled), batch["subcategory"])
        return out


@dataclass
class NewsPretrainSetup:
    """Everything built before training; exposed so tests and benchmarks can drive steps directly."""

    module: NewsPretrainModule
    tokenizer: NewsTokenizer
    train_collator: NewsBatchCollator
    val_collator: NewsBatchCollator
    train_index: np.ndarray
    val_index: np.ndarray
    categories: list[str]


def build_tokenizer(config: NewsPretrainConfig, texts: list[list[str]]) -> NewsTokenizer:
    if config.pretrained:
        return NewsTokenizer.from_pretrained(minilm_dir(config.pretrained_dir), len(config.views))
    if config.tokenizer_dir:
        return NewsTokenizer.from_local(config.tokenizer_dir, len(config.views))
    corpus = [t for column in texts for t in column if t]
    return NewsTokenizer.train(corpus, len(config.views), config.vocab_size, config.min_frequency,
                               config.tokenizer_model)


def prepare_news_pretraining(news: pd.DataFrame, config: NewsPretrainConfig) -> NewsPretrainSetup:
    """Seed, split 4:1, build tokenizer (from the train split), encoder, heads and collators."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    news = news.reset_index(drop=True)
    tasks = resolve_news_tasks(config, news)
    train_index, val_index = split_train_val(len(news), config.val_fraction, config.seed)
    texts = view_texts(news, config.views)
    tokenizer = build_tokenizer(config, [[col[i] for i in train_index] for col in texts])
    views = tokenizer.tokenize_views(texts, cap=config.max_len)
    categories = label_classes(news["category"].iloc[train_index]) if tasks.ncp > 0 else []
    subcategories = label_classes(news["subcategory"].iloc[train_index]) if tasks.subcategory > 0 else []
    cat_codes = label_codes(news["category"], categories) if tasks.ncp > 0 else None
    sub_codes = label_codes(news["subcategory"], subcategories) if tasks.subcategory > 0 else None
    torch.manual_seed(config.seed)
    encoder = build_news_encoder(config, tokenizer)
    heads = NewsTaskHeads(encoder.hidden_size, tokenizer.vocab_size, tasks, len(categories), len(subcategories))
    module = NewsPretrainModule(encoder, heads, tasks, config)

    def collator(pool: np.ndarray, train: bool) -> NewsBatchCollator:
        return NewsBatchCollator(views, tokenizer, config, tasks, pool, cat_codes, sub_codes, train=train)

    return NewsPretrainSetup(module, tokenizer, collator(train_index, True), collator(val_index, False),
                             train_index, val_index, categories)


def train_news_encoder(news: pd.DataFrame, config: NewsPretrainConfig, out_dir: str | Path,
                       loggers: list[Logger] | None = None,
                       callbacks: list[L.Callback] | None = None) -> NewsPretrainResult:
    """Pre-train a news encoder on a NEWS_SCHEMA DataFrame and save it (self-contained) to ``out_dir``.

    ``out_dir`` receives the encoder files (see ``news_encoder_store``), ``metrics.json``, ``split.json``
    (validation news ids) and ``lightning/checkpoints/best.ckpt``. ``loggers``: Lightning loggers (e.g.
    MLFlowLogger) or None; ``callbacks``: extra Lightning callbacks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = prepare_news_pretraining(news, config)
    train_loader = DataLoader(setup.train_index.tolist(), batch_size=config.batch_size, shuffle=True,
                              collate_fn=setup.train_collator, generator=torch.Generator().manual_seed(config.seed))
    val_loader = DataLoader(setup.val_index.tolist(), batch_size=config.batch_size, shuffle=False,
                            collate_fn=setup.val_collator)
    log.info("news pre-training: %d train / %d val news, tasks %s", len(setup.train_index), len(setup.val_index),
             setup.module.tasks.names)
    outcome = fit(setup.module, train_loader, val_loader, config, out_dir / "lightning", loggers, callbacks)
    version = save_news_encoder(setup.module.encoder.cpu(), setup.tokenizer, config, out_dir)
    (out_dir / METRICS_FILE).write_text(json.dumps(outcome.metrics, indent=2, sort_keys=True))
    val_ids = news["news_id"].astype(str).to_numpy()[setup.val_index].tolist()
    (out_dir / SPLIT_FILE).write_text(json.dumps({"val_news_ids": val_ids}))
    return NewsPretrainResult(
        encoder_dir=out_dir, model_version=version, metrics=outcome.metrics, tasks=setup.module.tasks.names,
        n_train=len(setup.train_index), n_val=len(setup.val_index), global_step=outcome.global_step,
        best_checkpoint=outcome.best_checkpoint, categories=tuple(setup.categories),
    )
