"""Fast per-request CTR scoring for the online service: every lookup is precomputed at load, so a call is
dict lookups, a few small numpy arrays and one model forward (no pandas).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from training.ctr.base_model import CtrModel
from training.ctr.features import FIELD_NAMES, table_index
from training.ctr.predict import CtrPredictor
from training.ctr.vocabulary import FIRST_KNOWN, OOV, PAD

if TYPE_CHECKING:
    from serving.ctr_model import CtrPyfunc

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
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


def _lookup_rows(universe: list) -> tuple[dict, np.ndarray]:
    """``id -> row`` over the unique ids of ``universe`` (first occurrence kept) and those ids as an array."""
    unique = pd.unique(pd.Series(universe, dtype=object).dropna())
    return {key: i for i, key in enumerate(unique)}, np.asarray(unique, dtype=object)


def _with_sentinel(values: np.ndarray, missing: float) -> np.ndarray:
    """``values`` plus a last row for ids absent from the lookup."""
    return np.append(values, np.asarray([missing], dtype=values.dtype))


def _own_model(predictor: CtrPredictor) -> CtrModel:
    """A model instance sharing the predictor's weights (no copy) with the stored frozen tables installed.

    Its own ``FrozenVectorProjection`` buffers mean later table swaps of ``predictor`` (``score`` with
    other tables) never reach this scorer.
    """
    source = predictor.model
    news_dim = source.news_vector.vector_dim if source.news_vector is not None else None
    user_dim = source.user_vector.vector_dim if source.user_vector is not None else None
    model = type(source)(predictor.config, predictor.features.field_sizes(), news_dim, user_dim)
    model.load_state_dict(source.state_dict(), assign=True)
    model.set_frozen_vectors(predictor.news_embeddings, predictor.user_embeddings)
    return model.to(predictor.device).eval()


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
        self._news_category = _with_sentinel(space.vocabularies["category"].encode(catalogue_column("category")), OOV)
        self._news_subcategory = _with_sentinel(
            space.vocabularies["subcategory"].encode(catalogue_column("subcategory")), OOV)
        self._news_first_seen = _with_sentinel(seen, np.nan)  # NaN: unseen in training
        self._news_vector_row = _with_sentinel(self._vector_rows(news_table, news_ids), -1)
        self._in_catalogue = frozenset(catalogue["news_id"].tolist())

        user_vocab = space.vocabularies["user_id"]
        user_table = predictor.user_embeddings if predictor.config.uses_user_vectors else None
        self._user_row, user_ids = _lookup_rows([*user_vocab.values, *([] if user_table is None else user_table.ids)])
        self._user_index = _with_sentinel(user_vocab.encode(user_ids), OOV)
        self._user_vector_row = _with_sentinel(self._vector_rows(user_table, user_ids), -1)

    @staticmethod
    def _vector_rows(table, ids: np.ndarray) -> np.ndarray:
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

    def _news_rows(self, ids: list[str]) -> np.ndarray:
        sentinel = len(self._news_index) - 1
        get = self._news_row.get
        return np.array([get(i, sentinel) for i in ids], dtype=np.int64)

    def model_inputs(self, user_id: str, history: list[str], candidates: list[str],
                     time: datetime.datetime | None) -> dict[str, torch.Tensor]:
        """The model batch of one request (``fields``, ``history``, ``news_vector_row``, ``user_vector_row``),
        equal to ``CtrPredictor.featurize(...).batch(...)`` of the same impression."""
        if isinstance(history, str) or isinstance(candidates, str):
            raise TypeError("history and candidates must be lists of news ids, not strings")
        n = len(candidates)
        when = _request_time(time)
        rows = self._news_rows(candidates)
        user = self._user_row.get(user_id, len(self._user_index) - 1)

        seen = self._news_first_seen[rows]
        seen = np.where(np.isnan(seen), when.seconds, seen)  # unseen in training: first seen now
        age_h = np.maximum(when.seconds - seen, 0.0) / 3600.0
        buckets = np.searchsorted(self._age_edges, np.nan_to_num(age_h), side="right")
        columns = {
            "user_id": np.full(n, self._user_index[user], dtype=np.int64),
            "news_id": self._news_index[rows],
            "category": self._news_category[rows],
            "subcategory": self._news_subcategory[rows],
            "hour": np.full(n, when.hour, dtype=np.int64),
            "weekday": np.full(n, when.weekday, dtype=np.int64),
            "news_age": np.where(np.isnan(age_h), OOV, FIRST_KNOWN + buckets).astype(np.int64),
        }
        clicks = " ".join(history).split()[-self.history_length:]
        line = np.full(self.history_length, PAD, dtype=np.int64)
        line[:len(clicks)] = self._news_index[self._news_rows(clicks)]
        fields = np.stack([columns[name] for name in FIELD_NAMES], axis=1)
        return {
            "fields": torch.from_numpy(fields),
            "history": torch.from_numpy(np.tile(line, (n, 1))),
            "news_vector_row": torch.from_numpy(self._news_vector_row[rows]),
            "user_vector_row": torch.from_numpy(np.full(n, self._user_vector_row[user], dtype=np.int64)),
        }

    def score(self, user_id: str, history: list[str], candidates: list[str],
              time: datetime.datetime | None) -> tuple[np.ndarray, list[str]]:
        """Click probabilities (float32, candidate order) and the candidate ids missing from the catalogue
        (in candidate order, each once; they are scored with out-of-vocabulary features, never dropped)."""
        missing = list(dict.fromkeys(c for c in candidates if c not in self._in_catalogue))
        if not candidates:
            return np.empty(0, dtype=np.float32), missing
        batch = self.model_inputs(user_id, history, candidates, time)
        if self.device.type != "cpu":
            batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            logits = self.model(batch)
        return torch.sigmoid(logits).float().cpu().numpy(), missing
