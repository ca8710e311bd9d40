"""Quality-aware ranking metrics of one ranker on the evaluation impressions, and the report tables.

Groups are impressions (one trigger each); ``quality`` is the pair's grade on 0-4 (the generator's truth on
demo data, the judge's score otherwise). Figures are on the 0-1 scale; tables show them x100 like the paper.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.metrics.quality import click_ndcg, quality_filtered_click_ndcg, reco_dcg

#: The one spelling of these metrics (dict keys, MLflow metric names, table columns).
QUALITY_METRIC_KEYS = ("reco_dcg1", "reco_dcg3", "reco_dcg5", "click_ndcg5", "qf_click_ndcg5")
QUALITY_METRIC_LABELS = {"reco_dcg1": "RecoDCG@1", "reco_dcg3": "RecoDCG@3", "reco_dcg5": "RecoDCG@5",
                         "click_ndcg5": "ClickNDCG@5", "qf_click_ndcg5": "QF-ClickNDCG@5"}
EVAL_COLUMNS = ("impression_id", "trigger_id", "candidate_id", "clicked", "quality")


def sample_impressions(pairs: pd.DataFrame, n_impressions: int, seed: int = 0) -> pd.DataFrame:
    """The pairs of at most ``n_impressions`` impressions (seeded; 0 keeps all), in log order."""
    ids = pairs["impression_id"].unique()
    if 0 < n_impressions < ids.size:
        ids = np.random.default_rng(seed).choice(ids, size=n_impressions, replace=False)
        pairs = pairs[pairs["impression_id"].isin(ids)]
    return pairs.reset_index(drop=True)


def quality_ranking_metrics(pairs: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """RecoDCG@1/3/5, ClickNDCG@5 and quality-filtered ClickNDCG@5 of ranking each impression by ``scores``."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(pairs),):
        raise ValueError(f"expected {len(pairs)} scores, got shape {scores.shape}")
    groups, clicks, quality = pairs["impression_id"], pairs["clicked"], pairs["quality"]
    out = {f"reco_dcg{k}": reco_dcg(groups, quality, scores, k) for k in (1, 3, 5)}
    out["click_ndcg5"] = click_ndcg(groups, clicks, scores, 5)
    try:
        out["qf_click_ndcg5"] = quality_filtered_click_ndcg(groups, clicks, quality, scores, 5)
    except ValueError:  # every impression's click is low quality: nothing left to measure
        out["qf_click_ndcg5"] = float("nan")
    return out


def summarise(rows: list[dict]) -> pd.DataFrame:
    """Mean and std over seeds per ranker: rows ``{"ranker", "seed", <metric keys>}`` -> one row per ranker
    (in first-seen order) with ``<key>_mean``, ``<key>_std`` (NaN std for a single seed) and ``n_seeds``."""
    frame = pd.DataFrame(rows)
    order = list(dict.fromkeys(frame["ranker"]))
    grouped = frame.groupby("ranker", sort=False)
    out = pd.DataFrame({"ranker": order})
    for key in QUALITY_METRIC_KEYS:
        out[f"{key}_mean"] = grouped[key].mean().reindex(order).to_numpy()
        out[f"{key}_std"] = grouped[key].std(ddof=1).reindex(order).to_numpy()
    out["n_seeds"] = grouped.size().reindex(order).to_numpy()
    return out


def _cell(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{100 * mean:.2f}" if np.isnan(std) else f"{100 * mean:.2f} ± {100 * std:.2f}"


def metrics_markdown(summary: pd.DataFrame, baseline: str | None = None) -> str:
    """Markdown table (x100, mean ± std over seeds); ``baseline`` adds a ΔRecoDCG@5 column against that row."""
    headers = [QUALITY_METRIC_LABELS[k] for k in QUALITY_METRIC_KEYS] + ["seeds"]
    if baseline is not None:
        headers.append(f"ΔRecoDCG@5 vs {baseline}")
        base = summary.set_index("ranker").loc[baseline, "reco_dcg5_mean"]
    lines = ["| ranker | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for row in summary.itertuples(index=False):
        r = row._asdict()
        cells = [_cell(r[f"{k}_mean"], r[f"{k}_std"]) for k in QUALITY_METRIC_KEYS] + [str(r["n_seeds"])]
        if baseline is not None:
            cells.append(f"{100 * (r['reco_dcg5_mean'] - base):+.2f}")
        lines.append(f"| {r['ranker']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def judge_markdown(table: pd.DataFrame) -> str:
    """Table 1: one row per judge (columns judge, pairs, pairwise_accuracy, pairs_per_second, paper_pa, note)."""
    lines = ["| judge | golden pairs | pairwise accuracy | pairs/s | paper PA | note |", "|---|---:|---:|---:|---:|---|"]
    for r in table.itertuples(index=False):
        pa = "n/a" if np.isnan(r.pairwise_accuracy) else f"{r.pairwise_accuracy:.3f}"
        paper = "" if np.isnan(r.paper_pa) else f"{r.paper_pa:.2f}"
        lines.append(f"| {r.judge} | {r.pairs} | {pa} | {r.pairs_per_second:,.1f} | {paper} | {r.note} |")
    return "\n".join(lines) + "\n"


def metric_row(name: str, metrics: Mapping[str, float]) -> dict:
    return {"ranker": name, "seed": 0, **{k: float(metrics[k]) for k in QUALITY_METRIC_KEYS}}
