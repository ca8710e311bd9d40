"""The two LightGBM LambdaRank stages of the related-news ranker ("Explore Further", KDD'25 §2.2, §4.6-4.8).

Stage 1 ranks on inexpensive count and pair features; stage 2 adds the ranking student's click and quality
heads and the CTR model's score. The final score trades clicks for quality:
``(1 - λ) · z(stage2) + λ · z(student_quality)`` with z-scores from training-set means and deviations, and
λ chosen on the quality/click trade-off curve (``training.ltr.tradeoff``).

One impression is one LambdaRank group. ``plan_groups`` makes the groups LightGBM can train on and counts
every change it makes: rows regrouped, oversized groups split, groups without a click left out.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat, SupportsIndex

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.config_dict import ConfigDict
from training.ltr.count_features import STAGE2_EXTRA

log = logging.getLogger(__name__)

#: LightGBM 4.7's lambdarank rejects larger queries ("Number of rows N exceeds upper limit of 10000 for a query").
LIGHTGBM_MAX_GROUP = 10_000
#: Prediction runs on one thread: LightGBM's default (every core) is slower for the small batches of serving.
PREDICT_PARAMS: dict[str, Any] = {"num_threads": 1}
QUALITY_FEATURE = "student_quality"
RANKER_FILES = ("stage1.txt", "stage2.txt", "ranker.json")


@dataclass(frozen=True)
class RankerConfig(ConfigDict):
    num_leaves: int = 15
    n_estimators: int = 150
    learning_rate: float = 0.05
    min_data_in_leaf: int = 20
    label_gain: tuple[float, ...] = (0.0, 1.0, 3.0, 7.0, 15.0)
    max_group_size: int = 1000
    seed: int = 42
    threads: int = 2
    early_stopping_rounds: int = 20
    #: Seeded subsampling of whole impressions (``bagging_by_query``) and of features, so seeds give different
    #: models (with neither, LightGBM's seed changes nothing here).
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    feature_fraction: float = 0.9

    def __post_init__(self) -> None:
        if not 1 <= self.max_group_size <= LIGHTGBM_MAX_GROUP:
            raise ValueError(f"max_group_size must be in [1, {LIGHTGBM_MAX_GROUP}] (LightGBM's lambdarank limit), "
                             f"got {self.max_group_size}")
        for name in ("num_leaves", "n_estimators", "min_data_in_leaf"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0 (0: OpenMP's default, OMP_NUM_THREADS), got {self.threads}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.early_stopping_rounds < 0:
            raise ValueError(f"early_stopping_rounds must be >= 0, got {self.early_stopping_rounds}")
        for name in ("bagging_fraction", "feature_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.bagging_freq < 0:
            raise ValueError(f"bagging_freq must be >= 0 (0: no bagging), got {self.bagging_freq}")
        if len(self.label_gain) < 2 or any(g < 0 for g in self.label_gain):
            raise ValueError(f"label_gain needs >= 2 non-negative gains, got {self.label_gain}")

    def lightgbm_params(self) -> dict[str, Any]:
        """Training parameters. With bagging on, training runs on one thread whatever ``threads`` says: LightGBM
        4.7's ``bagging_by_query`` on more threads gave a different booster on every run, ``deterministic``
        notwithstanding (issue 22; ``threads`` still builds the datasets)."""
        bagging = self.bagging_freq > 0 and self.bagging_fraction < 1.0
        return {
            "objective": "lambdarank", "label_gain": list(self.label_gain), "metric": "ndcg", "eval_at": [5],
            "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf, "seed": self.seed, "num_threads": 1 if bagging else self.threads,
            "bagging_fraction": self.bagging_fraction, "bagging_freq": self.bagging_freq, "bagging_by_query": True,
            "feature_fraction": self.feature_fraction,
            "deterministic": True, "force_row_wise": True, "verbose": -1,
        }


# -- groups ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupPlan:
    """The rows LightGBM trains on (``rows``, indices into the input, in training order) and their group sizes,
    with a count of every change made to the input's groups."""

    rows: np.ndarray
    sizes: np.ndarray
    n_groups: int                  # distinct groups in the input
    regrouped: bool                # groups were not contiguous: rows were stably sorted by first appearance
    n_split: int                   # groups larger than max_group_size, split into consecutive chunks
    n_chunks: int                  # chunks those split groups became
    n_without_positive: int        # groups (chunks after a split) without a positive label: left out
    n_rows_without_positive: int

    def as_dict(self) -> dict[str, int | bool]:
        return {"groups_in": self.n_groups, "groups_kept": int(self.sizes.size), "rows_kept": int(self.rows.size),
                "regrouped": self.regrouped, "groups_split": self.n_split, "chunks_from_split": self.n_chunks,
                "groups_without_positive": self.n_without_positive,
                "rows_without_positive": self.n_rows_without_positive}


def check_labels(labels: ArrayLike, n_gains: int, name: str = "labels") -> np.ndarray:
    """``labels`` as int32, or ``ValueError`` naming the first value that is not an integer in [0, n_gains)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    rule = f"{name} must be integers in [0, {n_gains - 1}] (one label_gain per grade)"
    try:
        as_float = y.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{rule}, got dtype {y.dtype}") from None
    bad = ~np.isfinite(as_float) | (as_float < 0) | (as_float >= n_gains) | (as_float != np.round(as_float))
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{rule}: row {row} is {y[row].item()!r}")
    return as_float.astype(np.int32)


def plan_groups(labels: np.ndarray, groups: ArrayLike, max_group_size: int) -> GroupPlan:
    """Contiguous groups of at most ``max_group_size`` rows, each with a positive label.

    Non-contiguous groups are regrouped by a stable sort on first appearance (row order kept inside a group);
    a group over ``max_group_size`` is split into ``ceil(size / max)`` consecutive chunks of near-equal size;
    groups (chunks) without a positive label carry no LambdaRank gradient and are left out. All counted.
    """
    ids = np.asarray(groups)
    if ids.ndim != 1 or ids.size != labels.size:
        raise ValueError(f"groups must be 1-D with one id per row ({labels.size}), got shape {ids.shape}")
    codes, uniques = pd.factorize(ids)
    if (codes < 0).any():
        raise ValueError(f"groups has a missing id on row {int(np.argmax(codes < 0))}")
    regrouped = bool(codes.size) and bool((np.diff(codes) < 0).any())
    order = np.argsort(codes, kind="stable") if regrouped else np.arange(codes.size)
    codes = codes[order]
    sizes = np.bincount(codes, minlength=len(uniques))
    starts = np.cumsum(sizes) - sizes
    n_chunks = -(-sizes // max_group_size)
    within = np.arange(codes.size) - starts[codes]
    chunk = within * n_chunks[codes] // sizes[codes]
    first_chunk = np.cumsum(n_chunks) - n_chunks
    piece = first_chunk[codes] + chunk                   # consecutive ids, one per (group, chunk)
    piece_sizes = np.bincount(piece, minlength=int(n_chunks.sum()))
    positive = np.bincount(piece, weights=labels[order] > 0, minlength=piece_sizes.size) > 0
    keep_row = positive[piece]
    split = n_chunks > 1
    return GroupPlan(rows=order[keep_row], sizes=piece_sizes[positive], n_groups=len(uniques), regrouped=regrouped,
                     n_split=int(split.sum()), n_chunks=int(n_chunks[split].sum()),
                     n_without_positive=int((~positive).sum()), n_rows_without_positive=int((~keep_row).sum()))


def _report(plan: GroupPlan, what: str) -> None:
    if plan.regrouped:
        log.warning("%s: groups were not contiguous; rows stably regrouped by first appearance", what)
    if plan.n_split:
        log.warning("%s: %d group(s) over max_group_size split into %d chunks", what, plan.n_split, plan.n_chunks)
    if plan.n_without_positive:
        log.info("%s: %d group(s) (%d rows) without a positive label left out", what, plan.n_without_positive,
                 plan.n_rows_without_positive)


def _dataset(X: ArrayLike, labels: ArrayLike, groups: ArrayLike, config: RankerConfig, what: str,
             feature_names: list[str] | None, reference: lgb.Dataset | None = None) -> tuple[lgb.Dataset, GroupPlan]:
    x = np.asarray(X, dtype=np.float32)
    y = check_labels(labels, len(config.label_gain), f"{what} labels")
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(f"{what} X must be 2-D with one row per label ({y.size}), got shape {x.shape}")
    if feature_names is not None and len(feature_names) != x.shape[1]:
        raise ValueError(f"{what}: {len(feature_names)} feature names for {x.shape[1]} columns")
    plan = plan_groups(y, groups, config.max_group_size)
    _report(plan, what)
    if plan.sizes.size == 0:
        raise ValueError(f"{what}: no group has a positive label; nothing to rank")
    data = lgb.Dataset(x[plan.rows], y[plan.rows], group=plan.sizes, reference=reference,
                       feature_name=feature_names if feature_names is not None else "auto",
                       params={"verbose": -1, "num_threads": config.threads}, free_raw_data=True)
    return data, plan


def train_stage(X: ArrayLike, labels: ArrayLike, groups: ArrayLike,
                valid: tuple[ArrayLike, ArrayLike, ArrayLike] | None = None, config: RankerConfig = RankerConfig(),
                feature_names: list[str] | None = None) -> lgb.Booster:
    """A LambdaRank booster on rows ``X`` (float32), integer ``labels`` (grades < len(label_gain)) and
    per-row group ids ``groups``, prepared by ``plan_groups`` (non-contiguous groups are stably sorted, large
    ones split, click-less ones left out; each logged). ``valid = (X, labels, groups)`` turns on early
    stopping on its ndcg@5; the returned booster holds only the trees up to the best iteration."""
    train_set, _ = _dataset(X, labels, groups, config, "train", feature_names)
    params = config.lightgbm_params()
    callbacks: list[Callable[..., Any]] = []
    valid_sets = []
    if valid is not None:
        valid_set, _ = _dataset(*valid, config, "valid", feature_names, reference=train_set)
        valid_sets = [valid_set]
        if config.early_stopping_rounds:
            callbacks.append(lgb.early_stopping(config.early_stopping_rounds, first_metric_only=True, verbose=False))
    booster = lgb.train(params, train_set, num_boost_round=config.n_estimators, valid_sets=valid_sets,
                        valid_names=["valid"][: len(valid_sets)], callbacks=callbacks)
    if booster.best_iteration > 0 and booster.best_iteration < booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    return booster


# -- the ranker --------------------------------------------------------------------------------------------
def _predict(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """``booster``'s scores of the rows ``x`` (``PREDICT_PARAMS``)."""
    scores = booster.predict(x, **PREDICT_PARAMS)
    if not isinstance(scores, np.ndarray):  # sparse or list outputs come only with pred_contrib
        raise TypeError(f"LightGBM predict returned {type(scores).__name__}, not an array of scores")
    return scores


def combine_scores(stage2: ArrayLike, quality: ArrayLike, lam: float, mu: dict[str, float],
                   sigma: dict[str, float]) -> np.ndarray:
    """``(1 - lam) · z(stage2) + lam · z(quality)`` with ``z(x) = (x - mu) / sigma`` per key ``stage2`` and
    ``quality``; a NaN quality counts as the mean (z = 0)."""
    lam = check_lambda(lam)
    click = (np.asarray(stage2, dtype=np.float64) - mu["stage2"]) / sigma["stage2"]
    z_quality = (np.asarray(quality, dtype=np.float64) - mu["quality"]) / sigma["quality"]
    return (1.0 - lam) * click + lam * np.nan_to_num(z_quality, nan=0.0)


def check_lambda(lam: object) -> float:
    try:
        if not isinstance(lam, (SupportsFloat, SupportsIndex, str, bytes, bytearray, memoryview)):
            raise TypeError
        value = float(lam)
    except (TypeError, ValueError):
        raise ValueError(f"lambda must be a number in [0, 1], got {lam!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"lambda must be in [0, 1], got {lam!r}")
    return value


def _json_value(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"ranker meta value {value!r} of type {type(value).__name__} is not JSON")


@dataclass
class Ranker:
    """Both stages, their feature orders and the λ combination of stage 2 with the student's quality head."""

    stage1: lgb.Booster
    stage2: lgb.Booster
    stage1_features: list[str]
    stage2_features: list[str]
    lam: float = 0.0
    mu: dict[str, float] = field(default_factory=lambda: {"stage2": 0.0, "quality": 0.0})
    sigma: dict[str, float] = field(default_factory=lambda: {"stage2": 1.0, "quality": 1.0})
    config: RankerConfig = field(default_factory=RankerConfig)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stage1_features, self.stage2_features = list(self.stage1_features), list(self.stage2_features)
        for stage, booster, names in (("stage1", self.stage1, self.stage1_features),
                                      ("stage2", self.stage2, self.stage2_features)):
            if booster.num_feature() != len(names):
                raise ValueError(f"{stage} booster has {booster.num_feature()} features, {len(names)} names given")
        if QUALITY_FEATURE not in self.stage2_features:
            raise ValueError(f"stage2_features lack {QUALITY_FEATURE!r}, which the λ combination needs")
        for name, values in (("mu", self.mu), ("sigma", self.sigma)):
            if set(values) != {"stage2", "quality"}:
                raise ValueError(f"{name} needs keys 'stage2' and 'quality', got {sorted(values)}")
        if min(self.sigma.values()) <= 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        self.lam = check_lambda(self.lam)

    @property
    def quality_column(self) -> int:
        """Position of ``student_quality`` among the stage-2 features."""
        return self.stage2_features.index(QUALITY_FEATURE)

    @staticmethod
    def _matrix(X: ArrayLike, names: list[str], stage: str) -> np.ndarray:
        x = np.ascontiguousarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise ValueError(f"{stage} X must have shape (n, {len(names)}) in {stage}_features order, got {x.shape}")
        return x

    def score_stage1(self, X: ArrayLike) -> np.ndarray:
        return _predict(self.stage1, self._matrix(X, self.stage1_features, "stage1"))

    def score_stage2(self, X: ArrayLike) -> np.ndarray:
        return _predict(self.stage2, self._matrix(X, self.stage2_features, "stage2"))

    def combine(self, stage2: ArrayLike, quality: ArrayLike, lam: float | None = None) -> np.ndarray:
        return combine_scores(stage2, quality, self.lam if lam is None else lam, self.mu, self.sigma)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.stage1.save_model(directory / RANKER_FILES[0])
        self.stage2.save_model(directory / RANKER_FILES[1])
        spec = {"stage1_features": self.stage1_features, "stage2_features": self.stage2_features, "lam": self.lam,
                "mu": self.mu, "sigma": self.sigma, "config": self.config.to_dict(), "meta": self.meta}
        (directory / RANKER_FILES[2]).write_text(json.dumps(spec, indent=2, default=_json_value))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Ranker:
        directory = Path(directory)
        missing = [name for name in RANKER_FILES if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(f"ranker folder {directory} lacks {missing}")
        spec = json.loads((directory / RANKER_FILES[2]).read_text())
        return cls(stage1=lgb.Booster(model_file=directory / RANKER_FILES[0]),
                   stage2=lgb.Booster(model_file=directory / RANKER_FILES[1]),
                   stage1_features=spec["stage1_features"], stage2_features=spec["stage2_features"],
                   lam=spec["lam"], mu=spec["mu"], sigma=spec["sigma"],
                   config=RankerConfig.from_dict(spec["config"]), meta=spec["meta"])


def _columns(frame: pd.DataFrame, names: list[str], what: str) -> np.ndarray:
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")
    return frame[names].to_numpy(dtype=np.float32)


def _mean_std(values: np.ndarray, name: str) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ValueError(f"no finite {name} values to estimate its mean and deviation")
    std = float(finite.std())
    return float(finite.mean()), std if std > 1e-12 else 1.0


def train_ranker(train: pd.DataFrame, valid: pd.DataFrame | None, stage1_features: list[str],
                 stage2_features: list[str], config: RankerConfig = RankerConfig(), label: str = "clicked",
                 group: str = "impression_id", zscore_sample: int = 20_000) -> Ranker:
    """Both stages trained on the same rows of ``train`` (stage 2 with its extra columns), early-stopped on
    ``valid`` when given; μ, σ of the stage-2 score and of ``student_quality`` from a seeded sample of at most
    ``zscore_sample`` training rows; λ = 0 until ``tradeoff.choose_lambda`` picks one."""
    stage1_features, stage2_features = list(stage1_features), list(stage2_features)
    not_in_stage2 = [c for c in stage1_features if c not in stage2_features]
    if not_in_stage2:
        raise ValueError(f"stage2_features must include every stage-1 feature; missing {not_in_stage2}")
    extra = [c for c in STAGE2_EXTRA if c not in stage2_features]
    if extra:
        log.warning("stage2_features lack %s of STAGE2_EXTRA", extra)
    if zscore_sample < 1:
        raise ValueError(f"zscore_sample must be >= 1, got {zscore_sample}")
    for what, frame in (("train", train), ("valid", valid)):
        if frame is not None:
            missing = [c for c in (label, group) if c not in frame.columns]
            if missing:
                raise ValueError(f"{what} lacks column(s) {missing}")
    y, groups = train[label].to_numpy(), train[group].to_numpy()
    x2 = _columns(train, stage2_features, "train")
    x1 = x2[:, [stage2_features.index(c) for c in stage1_features]]
    valid_xy = None
    if valid is not None:
        v2 = _columns(valid, stage2_features, "valid")
        valid_xy = (v2, valid[label].to_numpy(), valid[group].to_numpy())
    boosters = {}
    for stage, x, names in (("stage1", x1, stage1_features), ("stage2", x2, stage2_features)):
        stage_valid = None
        if valid_xy is not None:
            cols = [stage2_features.index(c) for c in names]
            stage_valid = (valid_xy[0][:, cols], valid_xy[1], valid_xy[2])
        boosters[stage] = train_stage(x, y, groups, stage_valid, config, feature_names=names)

    rng = np.random.default_rng(config.seed)
    n = len(train)
    sample = np.sort(rng.choice(n, size=zscore_sample, replace=False)) if n > zscore_sample else np.arange(n)
    stage2_scores = _predict(boosters["stage2"], x2[sample])
    quality = x2[sample, stage2_features.index(QUALITY_FEATURE)].astype(np.float64)
    mu_s, sd_s = _mean_std(stage2_scores, "stage-2 score")
    mu_q, sd_q = _mean_std(quality, QUALITY_FEATURE)

    plan = plan_groups(check_labels(y, len(config.label_gain), "train labels"), groups, config.max_group_size)
    meta = {"train_rows": n, "train_groups": plan.n_groups, "train_plan": plan.as_dict(),
            "best_iteration": {s: int(b.current_iteration()) for s, b in boosters.items()},
            "zscore_rows": int(sample.size), "lightgbm": lgb.__version__}
    if valid is not None and valid_xy is not None:
        vplan = plan_groups(check_labels(valid_xy[1], len(config.label_gain), "valid labels"), valid_xy[2],
                            config.max_group_size)
        meta.update({"valid_rows": len(valid), "valid_groups": vplan.n_groups, "valid_plan": vplan.as_dict()})
    return Ranker(stage1=boosters["stage1"], stage2=boosters["stage2"], stage1_features=stage1_features,
                  stage2_features=stage2_features, lam=0.0, mu={"stage2": mu_s, "quality": mu_q},
                  sigma={"stage2": sd_s, "quality": sd_q}, config=config, meta=meta)
