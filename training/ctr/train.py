"""Entry point: fit a CTR model on train days, early-stop on the validation day, save the artefact."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from training.ctr.base_model import CtrModel
from training.ctr.config import CtrConfig
from training.ctr.dataset import make_loader
from training.ctr.features import CtrData, CtrFeatures, FeatureSpace, table_index
from training.ctr.lightning_module import CtrLightningModule
from training.ctr.predict import CtrPredictor
from training.ctr.registry import build_model
from training.ctr.stream import CtrParquetData, fit_stream, make_stream_loader
from training.ctr.warm_start import WarmStartReport, warm_start
from training.distributed import trainer_kwargs
from training.embedding_table import EmbeddingTable

log = logging.getLogger(__name__)
_Tables = tuple[EmbeddingTable | None, EmbeddingTable | None]
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class CtrTrainResult:
    """Outcome of ``train_ctr_model``: validation metrics of the best epoch and where the artefact is."""

    metrics: dict[str, float]          # auc, mrr, ndcg5, ndcg10 (empty without a validation split)
    history: list[dict[str, float]]    # per epoch: epoch, train_loss, val_auc, val_mrr, val_ndcg5, val_ndcg10
    best_epoch: int
    artefact_dir: Path                 # load with CtrPredictor.load(artefact_dir)
    config: CtrConfig
    num_train_rows: int
    num_valid_rows: int
    train_seconds: float
    field_sizes: dict[str, int] = field(default_factory=dict)
    warm_start: WarmStartReport | None = None  # set when training started from ``init_from``

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "history": self.history, "best_epoch": self.best_epoch,
                "artefact_dir": str(self.artefact_dir), "config": self.config.to_dict(),
                "num_train_rows": self.num_train_rows, "num_valid_rows": self.num_valid_rows,
                "train_seconds": self.train_seconds, "field_sizes": self.field_sizes,
                "warm_start": None if self.warm_start is None else self.warm_start.to_dict()}


def _check_tables(data: CtrData | CtrParquetData, config: CtrConfig, split: str) -> None:
    if config.uses_news_vectors and data.news_embeddings is None:
        raise ValueError(f"prec={config.prec!r} needs {split}.news_embeddings")
    if config.uses_user_vectors and data.user_embeddings is None:
        raise ValueError(f"prec={config.prec!r} needs {split}.user_embeddings")


#: The ``CtrConfig`` fields that feature tensors depend on; configs that agree on them can share a feature set.
FEATURE_SETTINGS = ("history_length", "min_count", "age_bucket_hours")


def _feature_settings(config: CtrConfig) -> tuple[Any, ...]:
    return tuple(getattr(config, name) for name in FEATURE_SETTINGS)


@dataclass(frozen=True)
class CtrFeatureSet:
    """Feature tensors of one train/valid pair, built once by :func:`build_features` and shared by every
    model, PREC variant and seed of a grid. Vector rows point into whichever frozen tables the data
    carries; a model ignores the rows of a table it does not use."""

    space: FeatureSpace
    train: CtrFeatures | int  # int: the row count of a streamed split (``_stream_features``)
    valid: CtrFeatures | None
    settings: tuple[Any, ...]  # values of FEATURE_SETTINGS they were built with


def _valid_tables(train: CtrData | CtrParquetData, valid: CtrData) -> _Tables:
    """``valid``'s own frozen tables (e.g. the user table as of the validation day), else the training ones."""
    return (valid.news_embeddings if valid.news_embeddings is not None else train.news_embeddings,
            valid.user_embeddings if valid.user_embeddings is not None else train.user_embeddings)


def build_features(train: CtrData, valid: CtrData | None, config: CtrConfig) -> CtrFeatureSet:
    """Fit the feature space on ``train`` (vocabularies, first-seen times) and featurise both splits."""
    space = FeatureSpace.fit(train, config)
    train_features = space.transform(train, table_index(train.news_embeddings), table_index(train.user_embeddings))
    valid_features = None
    if valid is not None:
        news, user = _valid_tables(train, valid)
        valid_features = space.transform(valid, table_index(news), table_index(user))
    return CtrFeatureSet(space, train_features, valid_features, _feature_settings(config))


def _stream_features(train: CtrParquetData, valid: CtrData | None, config: CtrConfig) -> CtrFeatureSet:
    """The space fitted in one pass over the parquet batches; ``train`` holds the row count (the rows
    themselves are read again every epoch), ``valid`` is featurised in memory."""
    space, num_rows = fit_stream(train, config)
    valid_features = None
    if valid is not None:
        news, user = _valid_tables(train, valid)
        valid_features = space.transform(valid, table_index(news), table_index(user))
    return CtrFeatureSet(space, num_rows, valid_features, _feature_settings(config))


def train_ctr_model(train: CtrData | CtrParquetData, valid: CtrData | None, config: CtrConfig, out_dir: str | Path,
                    loggers: Any = None, features: CtrFeatureSet | None = None,
                    init_from: str | Path | None = None) -> CtrTrainResult:
    """Train ``config.model`` on ``train``, early-stop on validation AUC, save the best epoch to ``out_dir``.

    Vocabularies and first-seen times come from ``train`` only. The frozen tables of ``train`` are used
    for training and saved in the artefact; ``valid`` is featurised with its own tables (e.g. the user
    table as of the validation day) when given, else with the training ones. ``features``: the output of
    ``build_features(train, valid, ...)`` to reuse across a grid (built here when None). ``loggers`` goes
    to ``lightning.Trainer(logger=...)`` (e.g. an MLflowLogger); default: no logger. ``init_from``: a
    previous predictor artefact to start from (see ``training.ctr.warm_start``); its report is kept in
    ``result.warm_start`` and ``metrics.json``. With ``config.data_loading == "stream"``, ``train`` is a
    ``CtrParquetData`` read in record batches (``training.ctr.stream``); ``valid`` stays in memory.
    """
    started = time.perf_counter()
    L.seed_everything(config.seed, workers=True, verbose=False)
    _check_tables(train, config, "train")
    if config.data_loading == "stream":
        if not isinstance(train, CtrParquetData) or features is not None:
            raise ValueError("data_loading='stream' needs train as CtrParquetData and no shared features")
        features = _stream_features(train, valid, config)
    elif isinstance(train, CtrParquetData):
        raise ValueError("train is a CtrParquetData: set data_loading='stream'")
    elif features is None:
        features = build_features(train, valid, config)
    elif features.settings != _feature_settings(config):
        raise ValueError(f"the shared features were built with {dict(zip(FEATURE_SETTINGS, features.settings))}, "
                         f"this config asks for {dict(zip(FEATURE_SETTINGS, _feature_settings(config)))}")
    if (valid is None) != (features.valid is None):
        raise ValueError("the shared features and the call disagree on whether there is a validation split")
    space = features.space
    news_table = train.news_embeddings if config.uses_news_vectors else None
    user_table = train.user_embeddings if config.uses_user_vectors else None
    train_features = features.train
    model = build_model(config, space.field_sizes(), None if news_table is None else news_table.dim,
                        None if user_table is None else user_table.dim)
    model.set_frozen_vectors(news_table, user_table)
    report = None if init_from is None else warm_start(model, space, init_from)
    module = CtrLightningModule(model, config)

    if isinstance(train_features, int):  # streamed: only the row count is known here
        assert isinstance(train, CtrParquetData)  # checked above (data_loading="stream")
        num_train = train_features
        train_loader = make_stream_loader(train, config, space, num_train)
    else:
        num_train = len(train_features)
        train_loader = make_loader(train_features, config.batch_size, shuffle=True,
                                   negative_ratio=config.negative_ratio, seed=config.seed)
    valid_loader, num_valid = None, 0
    callbacks: list[L.Callback] = []
    valid_news = valid_user = None
    if valid is not None:
        valid_news, valid_user = _valid_tables(train, valid)
        valid_news = valid_news if config.uses_news_vectors else None
        valid_user = valid_user if config.uses_user_vectors else None
        valid_features = features.valid
        assert valid_features is not None  # checked above: features and call agree on a validation split
        num_valid = len(valid_features)
        valid_loader = make_loader(valid_features, config.eval_batch_size, shuffle=False)
        callbacks.append(EarlyStopping(monitor="val_auc", mode="max", patience=config.patience))
        if valid_news is not news_table or valid_user is not user_table:
            callbacks.append(_ValidationTables(model, (news_table, user_table), (valid_news, valid_user)))
    log.info("training %s (prec=%s) on %d rows (%s), validating on %d", config.model, config.prec,
             num_train, config.data_loading, num_valid)

    trainer = L.Trainer(
        max_epochs=config.max_epochs, accelerator=config.accelerator, logger=loggers or False,
        callbacks=callbacks, enable_checkpointing=False, enable_progress_bar=config.progress_bar,
        enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=True if config.accelerator == "cpu" else "warn",
        log_every_n_steps=max(1, min(50, len(train_loader))),
        use_distributed_sampler=False,  # CandidateBatchSampler / CtrStreamDataset shard every global batch
        **trainer_kwargs(config.strategy, config.devices, config.num_nodes, config.accelerator,
                         sync_buffers_each_step=False),  # the frozen vector tables: buffers every rank holds
    )
    # the best epoch's weights are in ``model`` after fit, also under spawn-based strategies (see
    # CtrLightningModule.on_fit_end / get_extra_state)
    trainer.fit(module, train_loader, valid_loader)
    model.set_frozen_vectors(news_table, user_table)

    out_dir = Path(out_dir)
    CtrPredictor(model, space, config, news_table, user_table).save(out_dir)
    result = CtrTrainResult(
        metrics=module.best_metrics, history=module.history, best_epoch=module.best_epoch,
        artefact_dir=out_dir, config=config, num_train_rows=num_train, num_valid_rows=num_valid,
        train_seconds=time.perf_counter() - started, field_sizes=space.field_sizes(), warm_start=report)
    (out_dir / METRICS_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=float))
    return result


class _ValidationTables(L.Callback):
    """Installs the validation split's frozen tables for each validation loop, then restores the training ones."""

    def __init__(self, model: CtrModel, train_tables: _Tables, valid_tables: _Tables) -> None:
        self.model, self.train_tables, self.valid_tables = model, train_tables, valid_tables

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.model.set_frozen_vectors(*self.valid_tables)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.model.set_frozen_vectors(*self.train_tables)
