"""Day-based CTR experiments: the train/validation split of a partition and the PREC Table-2 grid."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.ctr.config import CtrConfig
from training.ctr.features import CtrData
from training.ctr.train import train_ctr_model
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable

VARIANT_LABELS = {"none": "base", "news": "+NP", "news+user": "+NP+UP"}
METRICS = {"auc": "auc", "mrr": "mrr", "ndcg@5": "ndcg5", "ndcg@10": "ndcg10"}


@dataclass(frozen=True)
class CtrSplit:
    train: BehaviorLog
    valid: BehaviorLog
    train_days: list[str]

    def train_data(self, news: pd.DataFrame, news_vectors: EmbeddingTable | None,
                   user_vectors: EmbeddingTable | None) -> CtrData:
        return CtrData(self.train.impressions, self.train.histories, news, news_vectors, user_vectors)

    def valid_data(self, news: pd.DataFrame, news_vectors: EmbeddingTable | None,
                   user_vectors: EmbeddingTable | None) -> CtrData:
        return CtrData(self.valid.impressions, self.valid.histories, news, news_vectors, user_vectors)


def split_for_day(log: BehaviorLog, day: str, window_days: int, split: str = "chronological",
                  seed: int = 0) -> CtrSplit:
    """Chronological: train on the ``window_days`` days before ``day``, validate on ``day``.
    Random: the same days plus ``day``, split 4:1 by impression (seeded)."""
    if window_days < 1:
        raise ValueError(f"window_days must be >= 1, got {window_days}")
    if day not in log.days:
        raise ValueError(f"no impressions on {day}; days present: {', '.join(log.days)}")
    before = log.before(day, window_days)
    if before.histories.empty:
        raise ValueError(f"no impressions before {day} to train on; days present: {', '.join(log.days)}")
    if split == "chronological":
        return CtrSplit(before, log.select_days([day]), before.days)
    if split != "random":
        raise ValueError(f"split must be 'chronological' or 'random', got {split!r}")
    pool = log.select_days(before.days + [day])
    ids = pool.histories["impression_id"].to_numpy()
    valid_ids = np.random.default_rng(seed).permutation(ids)[: max(1, len(ids) // 5)]
    is_valid_imp = pool.impressions["impression_id"].isin(valid_ids)
    is_valid_hist = pool.histories["impression_id"].isin(valid_ids)
    return CtrSplit(
        BehaviorLog(pool.impressions[~is_valid_imp].reset_index(drop=True), pool.histories[~is_valid_hist].reset_index(drop=True)),
        BehaviorLog(pool.impressions[is_valid_imp].reset_index(drop=True), pool.histories[is_valid_hist].reset_index(drop=True)),
        pool.days,
    )


def table2_grid(split: CtrSplit, news: pd.DataFrame, news_vectors: EmbeddingTable, user_vectors: EmbeddingTable,
                models: list[str], variants: list[str], seeds: list[int], base_params: dict,
                log: Callable[[str], None] = print) -> pd.DataFrame:
    """Train every (model, variant, seed) and return mean/std of the validation metrics per (model, variant)."""
    if not seeds:
        raise ValueError("at least one seed is required")
    rows = []
    for model in models:
        for variant in variants:
            runs = []
            for seed in seeds:
                config = CtrConfig.from_dict({**base_params, "model": model, "prec": variant, "seed": seed})
                with tempfile.TemporaryDirectory() as tmp:
                    result = train_ctr_model(split.train_data(news, news_vectors, user_vectors),
                                             split.valid_data(news, news_vectors, user_vectors), config, tmp)
                runs.append({name: result.metrics[key] for name, key in METRICS.items()})
                log(f"{model} {VARIANT_LABELS[variant]} seed {seed}: AUC {runs[-1]['auc']:.4f}")
            frame = pd.DataFrame(runs)
            row = {"model": model, "variant": variant, "variant_label": VARIANT_LABELS[variant], "n_seeds": len(seeds)}
            for name in METRICS:
                row[f"{name}_mean"] = float(frame[name].mean())
                row[f"{name}_std"] = float(frame[name].std(ddof=1)) if len(frame) > 1 else 0.0
            rows.append(row)
    return pd.DataFrame(rows)
