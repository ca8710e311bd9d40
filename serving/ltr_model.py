"""MLflow pyfunc of the two-stage related-news ranker (``training.ltr``): ``related(trigger_id)`` answers
online from precomputed candidate rows; ``predict`` scores any rows offline, with the same numbers.

Artefacts: ``ranker`` (a ``Ranker.save`` folder) and ``related`` (a parquet, ``related_frame``'s layout: one
row per (trigger_id, news_id) with the stage-2 feature columns, built offline from the candidate store;
``log_ranker`` adds each row's stage-2 score). At load the rows are grouped per trigger with their stage-2
scores z-scored, so a request is one weighted sum and an argsort over that trigger's few dozen candidates:
no LightGBM and no pandas per request.
"""
from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, SupportsIndex

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from training.ltr.stages import Ranker

KEY_COLUMNS = ("trigger_id", "news_id")
#: ``log_ranker`` stores each row's stage-2 score beside its features, so loading need not run LightGBM over
#: every row (a million rows take seconds); ``load`` re-scores a sample and refuses a mismatch.
STAGE2_SCORE = "stage2_score"
SCORE_CHECK_ROWS = 256


class _Candidates(NamedTuple):
    """One trigger's candidates, in the related frame's order."""

    news_ids: np.ndarray    # object
    features: np.ndarray    # float32 (m, stage-2 features)
    quality: np.ndarray     # float32 student quality head
    click: np.ndarray       # float64 stage-2 score
    z_click: np.ndarray     # float64 (click - μ) / σ
    z_quality: np.ndarray   # float64 (quality - μ) / σ, NaN -> 0


def related_frame(trigger_ids: ArrayLike, news_ids: ArrayLike, features: np.ndarray,
                  feature_names: Iterable[str]) -> pd.DataFrame:
    """The ``related`` artefact's layout: ``trigger_id, news_id`` then one float32 column per feature name
    (give them in the ranker's ``stage2_features`` order); (trigger_id, news_id) pairs must be unique."""
    triggers = np.asarray(trigger_ids, dtype=object).reshape(-1)
    news = np.asarray(news_ids, dtype=object).reshape(-1)
    names = list(feature_names)
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape != (news.size, len(names)):
        raise ValueError(f"features must have shape ({news.size}, {len(names)}) (rows, feature_names), got {x.shape}")
    if triggers.size != news.size:
        raise ValueError(f"trigger_ids has {triggers.size} entries for {news.size} news_ids")
    if len(set(names)) != len(names) or set(names) & set(KEY_COLUMNS):
        raise ValueError(f"feature_names must be unique and differ from {KEY_COLUMNS}: {names}")
    frame = pd.DataFrame({"trigger_id": triggers.astype(str), "news_id": news.astype(str)})
    dup = frame.duplicated(list(KEY_COLUMNS))
    if dup.any():
        row = frame[dup].iloc[0]
        raise ValueError(f"(trigger_id, news_id) pairs must be unique: ({row.trigger_id}, {row.news_id}) repeats")
    features_frame = pd.DataFrame(x, columns=names)
    return pd.concat([frame, features_frame], axis=1)


def log_ranker(ranker: Ranker, related: pd.DataFrame, out_dir: str | Path,
               store_version: str | None = None) -> dict[str, str]:
    """Save ``ranker`` and the ``related`` rows (``related_frame``'s columns; others are dropped) under
    ``out_dir``; returns the pyfunc's artefacts dict. A ``store_version`` (the candidate store version the rows
    come from) goes into the saved ranker's meta, where ``RankerPyfunc.store_version`` reads it."""
    missing = [c for c in (*KEY_COLUMNS, *ranker.stage2_features) if c not in related.columns]
    if missing:
        raise ValueError(f"related lacks column(s) {missing}")
    dup = related.duplicated(list(KEY_COLUMNS))
    if dup.any():
        row = related[dup].iloc[0]
        raise ValueError(f"related: (trigger_id, news_id) pairs must be unique: ({row['trigger_id']}, "
                         f"{row['news_id']}) repeats")
    out = Path(out_dir)
    if store_version is not None:
        ranker = dataclasses.replace(ranker, meta={**ranker.meta, "store_version": str(store_version)})
    ranker_dir = ranker.save(out / "ranker")
    related_path = out / "related.parquet"
    table = related[[*KEY_COLUMNS, *ranker.stage2_features]].reset_index(drop=True)
    table = table.astype({c: np.float32 for c in ranker.stage2_features})
    table[STAGE2_SCORE] = ranker.score_stage2(table[ranker.stage2_features].to_numpy(np.float32))
    table.to_parquet(related_path, index=False)
    return {"ranker": str(ranker_dir), "related": str(related_path)}


def ranker_signature() -> ModelSignature:
    """An MLflow signature declaring only the optional ``lambda`` param (default: the model's λ). Without a
    params schema MLflow drops ``params`` before ``predict``; the input columns are left unchecked."""
    from mlflow.models import ModelSignature
    from mlflow.types import ParamSchema, ParamSpec

    return ModelSignature(inputs=None, outputs=None, params=ParamSchema([ParamSpec("lambda", "double", None)]))


def _check_k(k: object) -> int:
    """``k`` as an int, or ``ValueError`` (bools, floats and strings are not counts)."""
    try:
        if isinstance(k, bool) or not isinstance(k, SupportsIndex):
            raise TypeError
        k = operator.index(k)
    except TypeError:
        raise ValueError(f"k must be an integer >= 1, got {k!r}") from None
    if k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k}")
    return k


class RankerPyfunc(PythonModel):
    """A registered ranker version: the two stages plus the candidate rows of every known trigger."""

    def load_context(self, context: PythonModelContext) -> None:
        self.load(context.artifacts["ranker"], context.artifacts["related"])

    def load(self, ranker_dir: str | Path, related_path: str | Path) -> RankerPyfunc:
        """Load the artefacts directly (what ``load_context`` does); returns self."""
        from training.ltr.stages import Ranker, check_lambda

        self._check_lambda = check_lambda
        self.ranker = Ranker.load(ranker_dir)
        names = self.ranker.stage2_features
        frame = pd.read_parquet(related_path)
        missing = [c for c in (*KEY_COLUMNS, *names) if c not in frame.columns]
        if missing:
            raise ValueError(f"related artefact {related_path} lacks column(s) {missing}")
        triggers = frame["trigger_id"].to_numpy(dtype=object)
        order = np.argsort(pd.factorize(triggers)[0], kind="stable")  # each trigger's rows together, in order
        triggers = triggers[order]
        news = frame["news_id"].to_numpy(dtype=object)[order]
        x = np.ascontiguousarray(frame[names].to_numpy(dtype=np.float32)[order])
        click = self._stage2_scores(frame, order, x, related_path)
        quality = np.ascontiguousarray(x[:, self.ranker.quality_column])
        mu, sigma = self.ranker.mu, self.ranker.sigma
        z_click = (click.astype(np.float64) - mu["stage2"]) / sigma["stage2"]
        z_quality = np.nan_to_num((quality.astype(np.float64) - mu["quality"]) / sigma["quality"], nan=0.0)
        self._stage1_columns = [names.index(c) for c in self.ranker.stage1_features]
        self._by_trigger: dict[str, _Candidates] = {}
        if triggers.size:
            starts = np.flatnonzero(np.r_[True, triggers[1:] != triggers[:-1]])
            for start, end in zip(starts, np.r_[starts[1:], triggers.size]):
                span = slice(int(start), int(end))
                self._by_trigger[str(triggers[start])] = _Candidates(
                    news[span], x[span], quality[span], click[span], z_click[span], z_quality[span])
        self._triggers = frozenset(self._by_trigger)
        return self

    def _stage2_scores(self, frame: pd.DataFrame, order: np.ndarray, x: np.ndarray, path: str | Path) -> np.ndarray:
        """The stored stage-2 scores (checked on a sample against the booster), else scored here."""
        if STAGE2_SCORE not in frame.columns or not len(x):
            return self.ranker.score_stage2(x) if len(x) else np.empty(0)
        stored = frame[STAGE2_SCORE].to_numpy(np.float64)[order]
        sample = np.linspace(0, len(x) - 1, num=min(SCORE_CHECK_ROWS, len(x))).astype(np.int64)
        fresh = self.ranker.score_stage2(x[sample])
        if not np.allclose(stored[sample], fresh, rtol=0.0, atol=1e-9):
            raise ValueError(f"related artefact {path}: stored {STAGE2_SCORE} does not match the stage-2 booster "
                             f"(max difference {np.max(np.abs(stored[sample] - fresh)):.3g}); "
                             "rebuild it with log_ranker")
        return stored

    @property
    def default_lambda(self) -> float:
        return self.ranker.lam

    @property
    def triggers(self) -> frozenset[str]:
        return self._triggers

    @property
    def store_version(self) -> str | None:
        """The candidate store version the related rows were built from (``meta["store_version"]``), if known."""
        version = self.ranker.meta.get("store_version")
        return str(version) if version else None

    def related(self, trigger_id: str, k: int = 5, lam: float | None = None) -> list[dict[str, Any]]:
        """The top ``k`` candidates of ``trigger_id`` by the final score ``(1 - λ)·z(click) + λ·z(quality)``
        (descending; ties keep the candidate order), each ``{"news_id", "score", "click", "quality"}``.
        ``KeyError(trigger_id)`` for an unknown trigger; ``ValueError`` for k < 1 or λ outside [0, 1]."""
        k = _check_k(k)
        lam = self.ranker.lam if lam is None else self._check_lambda(lam)
        entry = self._by_trigger.get(trigger_id)
        if entry is None:
            raise KeyError(trigger_id)
        score = (1.0 - lam) * entry.z_click + lam * entry.z_quality
        top = np.argsort(-score, kind="stable")[:k]
        news, click, quality = entry.news_ids, entry.click, entry.quality
        return [{"news_id": news[i], "score": float(score[i]), "click": float(click[i]),
                 "quality": float(quality[i])} for i in top.tolist()]

    def candidate_rows(self, trigger_id: str) -> pd.DataFrame:
        """``trigger_id``'s rows as ``predict`` takes them (``trigger_id, news_id`` and the stage-2 features)."""
        entry = self._by_trigger[trigger_id]
        return related_frame(np.full(entry.news_ids.size, trigger_id, dtype=object), entry.news_ids,
                             entry.features, self.ranker.stage2_features)

    def predict(self, context: PythonModelContext | None, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Offline scores of ``model_input`` rows (``trigger_id, news_id`` and the stage-2 feature columns):
        ``stage1``, ``stage2`` and ``score`` (the λ combination; ``params={"lambda": x}`` overrides λ)."""
        names = self.ranker.stage2_features
        missing = [c for c in (*KEY_COLUMNS, *names) if c not in model_input.columns]
        if missing:
            raise ValueError(f"input lacks column(s) {missing}")
        lam = (params or {}).get("lambda")
        lam = self.ranker.lam if lam is None else self._check_lambda(lam)
        x = model_input[names].to_numpy(dtype=np.float32)
        stage1 = self.ranker.score_stage1(x[:, self._stage1_columns])
        stage2 = self.ranker.score_stage2(x)
        score = self.ranker.combine(stage2, x[:, self.ranker.quality_column], lam)
        return pd.DataFrame({"stage1": stage1, "stage2": stage2, "score": score}, index=model_input.index)
