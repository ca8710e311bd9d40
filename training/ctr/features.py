"""Vectorised feature building: MIND tables (pandas) → in-memory index tensors for the CTR models.

Every categorical field uses index 0 for padding and 1 (``OOV``) for anything unseen in training:
cold users and news, categories of news missing from the catalogue, missing timestamps. Nothing is
dropped; rows come out aligned with the input impressions rows.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from training.ctr.config import CtrConfig
from training.ctr.vocabulary import FIRST_KNOWN, OOV, PAD, Vocabulary, value_counts
from training.embedding_table import EmbeddingTable

log = logging.getLogger(__name__)

#: Columns of ``CtrFeatures.fields``, in order.
FIELD_NAMES = ("user_id", "news_id", "category", "subcategory", "hour", "weekday", "news_age")
#: Fields whose vocabulary is learned from training data (the others are fixed ranges).
VOCAB_FIELDS = ("user_id", "news_id", "category", "subcategory")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CtrData:
    """Input tables of one split: ``impressions`` rows (IMPRESSIONS_SCHEMA) are what gets scored.

    ``histories`` (HISTORIES_SCHEMA) and ``news`` (NEWS_SCHEMA) may cover more than this split; they are
    joined by ``impression_id`` and ``news_id`` (no histories row, or ``histories=None``: empty history).
    ``label`` may be absent from impressions at scoring time.
    """

    impressions: pd.DataFrame
    histories: pd.DataFrame | None
    news: pd.DataFrame
    news_embeddings: EmbeddingTable | None = None
    user_embeddings: EmbeddingTable | None = None


@dataclass(frozen=True)
class CtrFeatures:
    """Index tensors of one split, one row per candidate (aligned with the impressions rows)."""

    fields: torch.Tensor           # (N, len(FIELD_NAMES)) int64
    history: torch.Tensor          # (H, history_length) int64 news_id indices, PAD-filled, per impression
    history_row: torch.Tensor      # (N,) int64 row of ``history`` for each candidate
    news_vector_row: torch.Tensor  # (N,) int64 row in the news EmbeddingTable, -1 when missing
    user_vector_row: torch.Tensor  # (N,) int64 row in the user EmbeddingTable, -1 when missing
    label: torch.Tensor            # (N,) float32 (zeros when the impressions carry no label)
    impression_id: torch.Tensor    # (N,) int64

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def batch(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather the model inputs of ``rows`` (a LongTensor of row indices)."""
        return {
            "fields": self.fields[rows],
            "history": self.history[self.history_row[rows]],
            "news_vector_row": self.news_vector_row[rows],
            "user_vector_row": self.user_vector_row[rows],
            "label": self.label[rows],
            "impression_id": self.impression_id[rows],
        }


def _flatten_lists(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Flattened items (object array of str/None) and per-row lengths of a list-of-strings column."""
    arr = pa.array(values, type=pa.list_(pa.string()), from_pandas=True)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy().astype(np.int64)
    flat = pc.list_flatten(arr).to_numpy(zero_copy_only=False)
    return flat, lengths


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    """Float seconds since the Unix epoch (NaN for missing); naive times are read as UTC."""
    ts = pd.to_datetime(times, utc=True)
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


def _first_seen(candidate_ids: np.ndarray, candidate_s: np.ndarray, history_ids: np.ndarray,
                history_s: np.ndarray) -> pd.Series:
    """Earliest time (epoch seconds) each news id appears as a candidate or in a history."""
    frame = pd.DataFrame({"news_id": np.concatenate([candidate_ids, history_ids]),
                          "t": np.concatenate([candidate_s, history_s])})
    return frame.dropna().groupby("news_id", sort=True)["t"].min()


def table_index(table: EmbeddingTable | None) -> pd.Index | None:
    """Id index of a frozen table, for ``FeatureSpace.transform`` (None passes through)."""
    return None if table is None else pd.Index(table.ids, dtype=object)


@dataclass
class _Joined:
    """Impressions joined to their histories (only the referenced history rows)."""

    history_items: np.ndarray   # flattened news ids of the referenced histories
    history_lengths: np.ndarray  # per referenced history row
    history_s: np.ndarray        # impression time of each referenced history row
    history_row: np.ndarray      # per candidate: referenced-history row, or -1 when absent


def _join_histories(impressions: pd.DataFrame, histories: pd.DataFrame | None) -> _Joined:
    imp_ids = impressions["impression_id"].to_numpy(dtype=np.int64)
    empty = _Joined(np.empty(0, dtype=object), np.empty(0, dtype=np.int64), np.empty(0), np.full(len(imp_ids), -1))
    if histories is None or len(histories) == 0 or len(imp_ids) == 0:
        return empty
    hist_index = pd.Index(histories["impression_id"].to_numpy(dtype=np.int64))
    if not hist_index.is_unique:
        raise ValueError("histories has more than one row for some impression_id")
    unique_imps, inverse = np.unique(imp_ids, return_inverse=True)
    pos = hist_index.get_indexer(unique_imps)
    found = pos >= 0
    if not found.all():
        log.info("%d impressions have no histories row; they get an empty history", int((~found).sum()))
    rows = histories.iloc[pos[found]]
    items, lengths = _flatten_lists(rows["history"])
    local = np.full(len(unique_imps), -1, dtype=np.int64)
    local[found] = np.arange(int(found.sum()))
    return _Joined(items, lengths, _epoch_seconds(rows["time"]), local[inverse.reshape(-1)])


@dataclass(frozen=True)
class FitCounts:
    """What ``FeatureSpace.fit`` learns from: user counts (per impression), news counts (candidate rows plus
    history mentions) and first-seen times. Counts of disjoint chunks of whole impressions ``merge`` into
    the counts of their union, so a stream of record batches fits the same space as one frame."""

    users: pd.Series       # user_id -> impressions
    news: pd.Series        # news_id -> mentions
    first_seen: pd.Series  # news_id -> epoch seconds, sorted by id
    rows: int              # candidate rows counted

    @classmethod
    def of(cls, impressions: pd.DataFrame, histories: pd.DataFrame | None) -> FitCounts:
        joined = _join_histories(impressions, histories)
        candidates = impressions["news_id"].to_numpy(dtype=object)
        users = impressions.drop_duplicates("impression_id")["user_id"]
        first_seen = _first_seen(candidates, _epoch_seconds(impressions["time"]), joined.history_items,
                                 np.repeat(joined.history_s, joined.history_lengths))
        return cls(value_counts(users), value_counts(np.concatenate([candidates, joined.history_items])),
                   first_seen, len(impressions))

    @classmethod
    def merge(cls, parts: list[FitCounts]) -> FitCounts:
        if len(parts) == 1:
            return parts[0]
        def total(series: list[pd.Series]) -> pd.Series:
            return pd.concat(series).groupby(level=0, sort=False).sum()
        first_seen = pd.concat([p.first_seen for p in parts]).groupby(level=0, sort=True).min()
        first_seen.index.name = "news_id"
        return cls(total([p.users for p in parts]), total([p.news for p in parts]), first_seen,
                   sum(p.rows for p in parts))


class FeatureSpace:
    """Vocabularies, first-seen times and bucket edges learned from the training split."""

    def __init__(self, vocabularies: dict[str, Vocabulary], first_seen: pd.Series, history_length: int,
                 age_bucket_hours: tuple[float, ...]) -> None:
        missing = set(VOCAB_FIELDS) - set(vocabularies)
        if missing:
            raise ValueError(f"missing vocabularies: {sorted(missing)}")
        self.vocabularies = vocabularies
        self.first_seen = first_seen  # news_id -> epoch seconds
        self.history_length = history_length
        self.age_bucket_hours = tuple(float(e) for e in age_bucket_hours)

    @classmethod
    def fit(cls, train: CtrData, config: CtrConfig) -> FeatureSpace:
        """Learn vocabularies from training rows only.

        Users are counted by impressions, news by candidate rows plus history mentions; values seen
        fewer than ``config.min_count`` times map to OOV, so the OOV embeddings get trained.
        Categories come from the catalogue rows of the training news (min count 1).
        """
        return cls.from_counts(FitCounts.of(train.impressions, train.histories), train.news, config)

    @classmethod
    def from_counts(cls, counts: FitCounts, news: pd.DataFrame, config: CtrConfig) -> FeatureSpace:
        """The space ``fit`` learns, from the training rows' ``FitCounts`` (summed over chunks by a stream)."""
        catalogue = news.drop_duplicates("news_id")
        known = catalogue[catalogue["news_id"].isin(counts.news.index)]
        return cls(
            {"user_id": Vocabulary.from_counts(counts.users, config.min_count),
             "news_id": Vocabulary.from_counts(counts.news, config.min_count),
             "category": Vocabulary.fit(known["category"]), "subcategory": Vocabulary.fit(known["subcategory"])},
            counts.first_seen, config.history_length, config.age_bucket_hours)

    def field_sizes(self) -> dict[str, int]:
        """Embedding rows per field (PAD and OOV included)."""
        sizes = {name: len(v) for name, v in self.vocabularies.items()}
        sizes.update(hour=FIRST_KNOWN + 24, weekday=FIRST_KNOWN + 7,
                     news_age=FIRST_KNOWN + len(self.age_bucket_hours) + 1)
        return {name: sizes[name] for name in FIELD_NAMES}

    def _news_age(self, news_ids: np.ndarray, now_s: np.ndarray, joined: _Joined) -> np.ndarray:
        """Age bucket of each candidate; news unseen in training fall back to their earliest time in the
        scored tables (always <= the impression time, so no look-ahead)."""
        seen = np.array(self.first_seen.reindex(pd.Index(news_ids, dtype=object)), dtype=np.float64)
        unknown = np.isnan(seen)
        if unknown.any():
            local = _first_seen(news_ids, now_s, joined.history_items,
                                np.repeat(joined.history_s, joined.history_lengths))
            seen[unknown] = local.reindex(pd.Index(news_ids[unknown], dtype=object)).to_numpy(dtype=np.float64)
        age_h = np.maximum(now_s - seen, 0.0) / 3600.0
        buckets = np.searchsorted(np.asarray(self.age_bucket_hours), np.nan_to_num(age_h), side="right")
        return np.where(np.isnan(age_h), OOV, FIRST_KNOWN + buckets).astype(np.int64)

    def _history_matrix(self, joined: _Joined) -> np.ndarray:
        """(referenced histories + 1, L) news indices of the last L clicks; the extra last row is empty."""
        length = self.history_length
        n = len(joined.history_lengths)
        encoded = np.append(self.vocabularies["news_id"].encode(joined.history_items), PAD)
        ends = np.cumsum(joined.history_lengths)
        starts = ends - joined.history_lengths
        begin = np.maximum(ends - length, starts)
        pos = begin[:, None] + np.arange(length)[None, :]
        valid = pos < ends[:, None]
        matrix = np.where(valid, encoded[np.where(valid, pos, len(encoded) - 1)], PAD)
        return np.vstack([matrix.reshape(n, length), np.full((1, length), PAD)]).astype(np.int64)

    def transform(self, data: CtrData, news_index: pd.Index | None = None,
                  user_index: pd.Index | None = None) -> CtrFeatures:
        """Index tensors for ``data.impressions`` rows (order kept, nothing dropped).

        ``news_index``/``user_index`` are the id indexes of the frozen EmbeddingTables (default: built
        from ``data.news_embeddings``/``data.user_embeddings``); rows not found there get -1.
        """
        imps = data.impressions
        news_index = table_index(data.news_embeddings) if news_index is None else news_index
        user_index = table_index(data.user_embeddings) if user_index is None else user_index
        news_ids = imps["news_id"].to_numpy(dtype=object)
        user_ids = imps["user_id"].to_numpy(dtype=object)
        now_s = _epoch_seconds(imps["time"])
        joined = _join_histories(imps, data.histories)

        catalogue = data.news.drop_duplicates("news_id")
        cat_pos = pd.Index(catalogue["news_id"].to_numpy(dtype=object)).get_indexer(pd.Index(news_ids))
        in_cat = cat_pos >= 0

        def catalogue_column(name: str) -> np.ndarray:
            out = np.full(len(news_ids), None, dtype=object)
            out[in_cat] = catalogue[name].to_numpy(dtype=object)[cat_pos[in_cat]]
            return out

        hour = pd.to_datetime(imps["time"], utc=True).dt.hour.to_numpy(dtype=np.float64, na_value=np.nan)
        weekday = pd.to_datetime(imps["time"], utc=True).dt.dayofweek.to_numpy(dtype=np.float64, na_value=np.nan)
        columns = {
            "user_id": self.vocabularies["user_id"].encode(user_ids),
            "news_id": self.vocabularies["news_id"].encode(news_ids),
            "category": self.vocabularies["category"].encode(catalogue_column("category")),
            "subcategory": self.vocabularies["subcategory"].encode(catalogue_column("subcategory")),
            "hour": np.where(np.isnan(hour), OOV, FIRST_KNOWN + np.nan_to_num(hour)).astype(np.int64),
            "weekday": np.where(np.isnan(weekday), OOV, FIRST_KNOWN + np.nan_to_num(weekday)).astype(np.int64),
            "news_age": self._news_age(news_ids, now_s, joined),
        }
        history = self._history_matrix(joined)
        history_row = np.where(joined.history_row >= 0, joined.history_row, len(history) - 1)

        def vector_rows(index: pd.Index | None, ids: np.ndarray) -> np.ndarray:
            if index is None:
                return np.full(len(ids), -1, dtype=np.int64)
            return index.get_indexer(pd.Index(ids, dtype=object)).astype(np.int64)

        label = np.array(imps["label"], dtype=np.float32) if "label" in imps else np.zeros(len(imps), np.float32)
        return CtrFeatures(
            fields=torch.from_numpy(np.stack([columns[n] for n in FIELD_NAMES], axis=1).reshape(len(imps), -1)),
            history=torch.from_numpy(history),
            history_row=torch.from_numpy(history_row.astype(np.int64)),
            news_vector_row=torch.from_numpy(vector_rows(news_index, news_ids)),
            user_vector_row=torch.from_numpy(vector_rows(user_index, user_ids)),
            label=torch.from_numpy(label),
            impression_id=torch.from_numpy(np.array(imps["impression_id"], dtype=np.int64)),
        )

    def save(self, directory: str | Path) -> None:
        """``vocab/<field>.parquet`` (id, index), ``first_seen.parquet`` and ``features.json``."""
        directory = Path(directory)
        (directory / "vocab").mkdir(parents=True, exist_ok=True)
        for name, vocab in self.vocabularies.items():
            vocab.save(directory / "vocab" / f"{name}.parquet")
        seconds = self.first_seen.to_numpy(dtype=np.float64).astype(np.int64)
        pq.write_table(pa.table({
            "news_id": pa.array(self.first_seen.index.astype(str).tolist(), pa.string()),
            "first_seen": pa.array(seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        }), directory / "first_seen.parquet")
        meta = {"format_version": FORMAT_VERSION, "fields": list(FIELD_NAMES), "field_sizes": self.field_sizes(),
                "history_length": self.history_length, "age_bucket_hours": list(self.age_bucket_hours),
                "pad_index": PAD, "oov_index": OOV}
        (directory / "features.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> FeatureSpace:
        directory = Path(directory)
        meta = json.loads((directory / "features.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: unsupported features format {meta.get('format_version')}")
        vocabs = {name: Vocabulary.load(directory / "vocab" / f"{name}.parquet") for name in VOCAB_FIELDS}
        seen = pq.read_table(directory / "first_seen.parquet").to_pandas()
        first_seen = pd.Series(_epoch_seconds(seen["first_seen"]), index=pd.Index(seen["news_id"], dtype=object))
        space = cls(vocabs, first_seen, meta["history_length"], tuple(meta["age_bucket_hours"]))
        if space.field_sizes() != meta["field_sizes"]:
            raise ValueError(f"{directory}: field sizes do not match the stored vocabularies")
        return space
