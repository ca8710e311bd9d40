"""Fast per-request CTR scoring for the online service: every lookup is precomputed at load, so a call is
dict lookups, a few small numpy arrays and one model forward (no pandas). A request's history is pooled once,
not once per candidate (``SharedHistory``), and several requests can share one forward (``probabilities``).

It reproduces ``CtrPyfunc.predict`` on the rows of one impression (``serving/ctr_model.py``:
``tables_from_rows`` → ``CtrPredictor.score`` → ``FeatureSpace.transform``) with the stored frozen tables
and the catalogue the registered model knew:

* user, news, category, subcategory: vocabulary index, ``OOV`` when unknown (category and subcategory
  come from the first catalogue row of the news; ``OOV`` for news missing from the catalogue);
* hour, weekday: from the request time in UTC (a naive time is read as UTC); ``OOV`` without a time;
* news age: bucket of the hours since the news was first seen in training; news unseen in training
  count as first seen at the request time (their earliest time in the scored tables), so bucket 0;
  ``OOV`` without a time;
* history: ``" ".join(history).split()`` as the pyfunc rows carry it, the last ``history_length`` items
  in order, PAD-filled at the end;
* frozen vector rows: row of the id in the stored news/user table, ``-1`` when absent.
"""
from __future__ import annotations

import datetime
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from training.ctr.base_model import CtrModel
from training.ctr.features import FIELD_NAMES, table_index
from training.ctr.predict import CtrPredictor
from training.ctr.vocabulary import FIRST_KNOWN, OOV, PAD

if TYPE_CHECKING:
    from serving.ctr_model import CtrPyfunc
    from training.ctr.layers import FrozenVectorProjection
    from training.embedding_table import EmbeddingTable

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_NEWS_FIELDS = ("news_id", "category", "subcategory")  # the fields a news row determines
_COLUMN = {name: i for i, name in enumerate(FIELD_NAMES)}
_NEWS_COLUMNS = [_COLUMN[name] for name in _NEWS_FIELDS]
_MICROSECOND = datetime.timedelta(microseconds=1)


@dataclass(frozen=True)
class _RequestTime:
    """Epoch seconds (NaN when missing) and the hour/weekday field indices of a request time."""

    seconds: float
    hour: int
    weekday: int


def _request_time(time: datetime.datetime | None) -> _RequestTime:
    """Time features as ``FeatureSpace.transform`` computes them from a pandas UTC column."""
    if time is None or time is pd.NaT:
        return _RequestTime(float("nan"), OOV, OOV)
    if not isinstance(time, datetime.datetime):
        raise TypeError(f"time must be a datetime.datetime or None, got {type(time).__name__}")
    utc = time.replace(tzinfo=datetime.UTC) if time.tzinfo is None else time.astimezone(datetime.UTC)
    # pandas subtracts Timestamp(0) in nanoseconds and divides by 1e9: the same float operations here
    seconds = float(((utc - _EPOCH) // _MICROSECOND) * 1000) / 1e9
    return _RequestTime(seconds, FIRST_KNOWN + utc.hour, FIRST_KNOWN + utc.weekday())


def _lookup_rows(universe: list[Any]) -> tuple[dict[Any, int], np.ndarray]:
    """``id -> row`` over the unique ids of ``universe`` (first occurrence kept) and those ids as an array."""
    unique = pd.unique(pd.Series(universe, dtype=object).dropna())
    return {key: i for i, key in enumerate(unique)}, np.asarray(unique, dtype=object)


def _with_sentinel(values: np.ndarray, missing: float) -> np.ndarray:
    """``values`` plus a last row for ids absent from the lookup."""
    return np.append(values, np.asarray([missing], dtype=values.dtype))


class RequestInputs(NamedTuple):
    """One request's model inputs before they are repeated per candidate: ``fields`` (n, fields), the
    ``history`` line (history_length,), ``news_vector_row`` (n,) and the user's ``user_vector_row``."""

    fields: np.ndarray
    history: np.ndarray
    news_vector_row: np.ndarray
    user_vector_row: int


class SharedHistory(NamedTuple):
    """The ``history`` input of a batch of requests: each request's line once, and the request of each row."""

    lines: torch.Tensor  # (requests, history_length)
    rows: torch.Tensor   # (candidates,) index into ``lines``


class _SharedHistoryPooling(nn.Module):
    """The model's history pooling, run once per request line for a ``SharedHistory`` (the same numbers
    as pooling the line repeated per candidate); a plain ``(B, L)`` tensor is pooled as before."""

    def __init__(self, pooling: nn.Module) -> None:
        super().__init__()
        self.pooling = pooling

    def forward(self, history: torch.Tensor | SharedHistory) -> torch.Tensor:
        if isinstance(history, SharedHistory):
            return self.pooling(history.lines).index_select(0, history.rows)
        return self.pooling(history)


class _ProjectedVectors(nn.Module):
    """A ``FrozenVectorProjection`` whose projection is applied to its whole frozen table once, at load: a
    row's output is one gather, and row ``-1`` ("no vector") gathers the ``missing`` embedding, appended last."""

    table: torch.Tensor  # a buffer

    def __init__(self, layer: FrozenVectorProjection) -> None:
        super().__init__()
        with torch.no_grad():
            projected = layer.project(layer.vectors)
            self.register_buffer("table", torch.cat([projected, layer.missing[None]]), persistent=False)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.table[rows]


def _own_model(predictor: CtrPredictor) -> CtrModel:
    """A model instance sharing the predictor's weights (no copy) with the stored frozen tables installed,
    projected once (``_ProjectedVectors``), and a history pooling that takes a ``SharedHistory``.

    Its own ``FrozenVectorProjection`` buffers mean later table swaps of ``predictor`` (``score`` with
    other tables) never reach this scorer.
    """
    source = predictor.model
    news_dim = source.news_vector.vector_dim if source.news_vector is not None else None
    user_dim = source.user_vector.vector_dim if source.user_vector is not None else None
    model = type(source)(predictor.config, predictor.features.field_sizes(), news_dim, user_dim)
    model.load_state_dict(source.state_dict(), assign=True)
    model.set_frozen_vectors(predictor.news_embeddings, predictor.user_embeddings)
    model.history_pooling = _SharedHistoryPooling(model.history_pooling)
    for name in ("news_vector", "user_vector"):
        if getattr(model, name) is not None:
            setattr(model, name, _ProjectedVectors(getattr(model, name)))
    return model.to(predictor.device).eval()


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    if device.type == "cpu":
        return batch
    return {key: SharedHistory(*(t.to(device) for t in value)) if isinstance(value, SharedHistory)
            else value.to(device) for key, value in batch.items()}


class CtrRequestScorer:
    """Scores one request's candidates with lookups precomputed at load: no pandas per call.

    Thread-safe: ``score`` only reads what the constructor built and never changes torch's global
    settings (thread counts are the caller's).
    """

    def __init__(self, predictor: CtrPredictor, news: pd.DataFrame) -> None:
        missing = [c for c in ("news_id", "category", "subcategory") if c not in news.columns]
        if missing:
            raise ValueError(f"news catalogue lacks column(s) {missing}")
        space = predictor.features
        self.history_length = space.history_length
        self.device = predictor.device
        self._age_edges = np.asarray(space.age_bucket_hours, dtype=np.float64)
        self.model = _own_model(predictor)

        news_vocab = space.vocabularies["news_id"]
        catalogue = news.drop_duplicates("news_id")
        news_table = predictor.news_embeddings if predictor.config.uses_news_vectors else None
        self._news_row, news_ids = _lookup_rows([
            *news_vocab.values, *catalogue["news_id"].tolist(), *space.first_seen.index.tolist(),
            *([] if news_table is None else news_table.ids)])
        cat_pos = pd.Index(catalogue["news_id"].to_numpy(dtype=object)).get_indexer(pd.Index(news_ids, dtype=object))
        in_cat = cat_pos >= 0

        def catalogue_column(name: str) -> np.ndarray:
            out = np.full(len(news_ids), None, dtype=object)
            out[in_cat] = catalogue[name].to_numpy(dtype=object)[cat_pos[in_cat]]
            return out

        seen = np.array(space.first_seen.reindex(pd.Index(news_ids, dtype=object)), dtype=np.float64)
        self._news_index = _with_sentinel(news_vocab.encode(news_ids), OOV)
        # each news row's ``fields`` row with its news-dependent columns filled: one gather per request
        self._news_fields = np.zeros((len(news_ids) + 1, len(FIELD_NAMES)), dtype=np.int64)
        self._news_fields[:, _NEWS_COLUMNS] = np.stack([self._news_index, *(
            _with_sentinel(space.vocabularies[name].encode(catalogue_column(name)), OOV)
            for name in _NEWS_FIELDS[1:])], axis=1)
        self._news_first_seen = _with_sentinel(seen, np.nan)  # NaN: unseen in training
        self._news_vector_row = _with_sentinel(self._vector_rows(news_table, news_ids), -1)
        self._in_catalogue = frozenset(catalogue["news_id"].tolist())

        user_vocab = space.vocabularies["user_id"]
        user_table = predictor.user_embeddings if predictor.config.uses_user_vectors else None
        self._user_row, user_ids = _lookup_rows([*user_vocab.values, *([] if user_table is None else user_table.ids)])
        self._user_index = _with_sentinel(user_vocab.encode(user_ids), OOV)
        self._user_vector_row = _with_sentinel(self._vector_rows(user_table, user_ids), -1)

    @staticmethod
    def _vector_rows(table: EmbeddingTable | None, ids: np.ndarray) -> np.ndarray:
        index = table_index(table)
        if index is None:
            return np.full(len(ids), -1, dtype=np.int64)
        return index.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64)

    @classmethod
    def from_pyfunc(cls, model: CtrPyfunc) -> CtrRequestScorer:
        """From a loaded ``ctr_model`` pyfunc (its ``predictor`` and ``news`` catalogue)."""
        for name in ("predictor", "news"):
            if getattr(model, name, None) is None:
                raise ValueError(f"ctr_model pyfunc has no {name!r}; was load_context run?")
        return cls(model.predictor, model.news)

    def known_news(self, news_id: str) -> bool:
        """Whether ``news_id`` has a row in the catalogue the model was registered with."""
        return news_id in self._in_catalogue

    def unknown_news(self, candidates: list[str]) -> list[str]:
        """The candidates missing from the catalogue, in candidate order, each once."""
        return list(dict.fromkeys(c for c in candidates if c not in self._in_catalogue))

    def _news_rows(self, ids: list[str]) -> np.ndarray:
        sentinel = itertools.repeat(len(self._news_index) - 1)
        return np.fromiter(map(self._news_row.get, ids, sentinel), dtype=np.int64, count=len(ids))

    def request_inputs(self, user_id: str, history: list[str], candidates: list[str],
                       time: datetime.datetime | None) -> RequestInputs:
        """One request's inputs (lookups only); ``model_inputs`` repeats them per candidate."""
        if isinstance(history, str) or isinstance(candidates, str):
            raise TypeError("history and candidates must be lists of news ids, not strings")
        when = _request_time(time)
        rows = self._news_rows(candidates)
        user = self._user_row.get(user_id, len(self._user_index) - 1)

        fields = self._news_fields.take(rows, axis=0)
        fields[:, _COLUMN["user_id"]] = self._user_index[user]
        fields[:, _COLUMN["hour"]] = when.hour
        fields[:, _COLUMN["weekday"]] = when.weekday
        if np.isnan(when.seconds):
            fields[:, _COLUMN["news_age"]] = OOV
        else:  # news unseen in training (NaN) count as first seen now: age 0
            age_h = np.fmax(when.seconds - self._news_first_seen[rows], 0.0) / 3600.0
            fields[:, _COLUMN["news_age"]] = FIRST_KNOWN + np.searchsorted(self._age_edges, age_h, side="right")
        clicks = " ".join(history).split()[-self.history_length:]
        line = np.full(self.history_length, PAD, dtype=np.int64)
        line[:len(clicks)] = self._news_index[self._news_rows(clicks)]
        return RequestInputs(fields, line, self._news_vector_row[rows], int(self._user_vector_row[user]))

    def model_inputs(self, user_id: str, history: list[str], candidates: list[str],
                     time: datetime.datetime | None) -> dict[str, torch.Tensor]:
        """The model batch of one request (``fields``, ``history``, ``news_vector_row``, ``user_vector_row``),
        equal to ``CtrPredictor.featurize(...).batch(...)`` of the same impression."""
        inputs = self.request_inputs(user_id, history, candidates, time)
        n = len(candidates)
        return {
            "fields": torch.from_numpy(inputs.fields),
            "history": torch.from_numpy(np.tile(inputs.history, (n, 1))),
            "news_vector_row": torch.from_numpy(inputs.news_vector_row),
            "user_vector_row": torch.from_numpy(np.full(n, inputs.user_vector_row, dtype=np.int64)),
        }

    def probabilities(self, requests: Sequence[RequestInputs]) -> np.ndarray:
        """Click probabilities (float32) of the candidates of ``requests``, concatenated, in one forward."""
        sizes = np.array([len(r.fields) for r in requests], dtype=np.int64)
        batch = {
            "fields": torch.from_numpy(np.concatenate([r.fields for r in requests])),
            "history": SharedHistory(torch.from_numpy(np.stack([r.history for r in requests])),
                                     torch.from_numpy(np.repeat(np.arange(len(requests)), sizes))),
            "news_vector_row": torch.from_numpy(np.concatenate([r.news_vector_row for r in requests])),
            "user_vector_row": torch.from_numpy(np.repeat(
                np.array([r.user_vector_row for r in requests], dtype=np.int64), sizes)),
        }
        with torch.inference_mode():
            logits = self.model(_to_device(batch, self.device))
        return torch.sigmoid(logits).float().cpu().numpy()

    def score(self, user_id: str, history: list[str], candidates: list[str],
              time: datetime.datetime | None) -> tuple[np.ndarray, list[str]]:
        """Click probabilities (float32, candidate order) and the candidate ids missing from the catalogue
        (in candidate order, each once; they are scored with out-of-vocabulary features, never dropped)."""
        missing = self.unknown_news(candidates)
        if not candidates:
            return np.empty(0, dtype=np.float32), missing
        return self.probabilities([self.request_inputs(user_id, history, candidates, time)]), missing
