"""Table 1: each judge's pairwise accuracy on the golden set, with its 95 % bootstrap interval over golden pairs,
and its throughput; one row per judge (``JUDGE_COLUMNS``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from training.quality.golden_set import pairwise_accuracy_interval

JUDGE_COLUMNS = ("judge", "pairs", "pairwise_accuracy", "pa_low", "pa_high", "pairs_per_second", "paper_pa", "note")


def judge_row(judge: str, labels: np.ndarray, scores: np.ndarray, pairs_per_second: float, paper_pa: float,
              note: str, seed: int = 0) -> dict[str, Any]:
    """One judge's row: its PA on golden ``labels`` from its ``scores``, with the interval (``seed``: the
    bootstrap's)."""
    interval = pairwise_accuracy_interval(labels, scores, seed=seed)
    return {"judge": judge, "pairs": len(scores), "pairwise_accuracy": interval.estimate, "pa_low": interval.low,
            "pa_high": interval.high, "pairs_per_second": pairs_per_second, "paper_pa": paper_pa, "note": note}


def judge_markdown(table: pd.DataFrame) -> str:
    """The table in markdown: PA with its interval; NaN cells print as "–"."""
    def number(value: float, spec: str) -> str:
        return "–" if value is None or np.isnan(value) else format(value, spec)

    lines = ["| judge | golden pairs | pairwise accuracy [95 % CI] | pairs/s | paper PA | note |",
             "|---|---:|---:|---:|---:|---|"]
    for r in table.to_dict("records"):
        pa = number(r["pairwise_accuracy"], ".3f")
        low, high = r.get("pa_low", np.nan), r.get("pa_high", np.nan)
        if pa != "–" and not (np.isnan(low) or np.isnan(high)):
            pa += f" [{low:.3f}, {high:.3f}]"
        lines.append(f"| {r['judge']} | {r['pairs']} | {pa} | {number(r['pairs_per_second'], ',.1f')} | "
                     f"{number(r['paper_pa'], '.2f')} | {r['note']} |")
    return "\n".join(lines) + "\n"


def judge_metrics(row: Mapping[str, Any]) -> dict[str, float]:
    """The MLflow metrics of one row: ``pa_<key>``, ``pa_low_<key>``, ``pa_high_<key>`` and, where measured,
    ``pairs_per_second_<key>``; ``<key>`` is the judge's name before " (", spaces and dashes as underscores
    (``llm B (SmolLM2)`` -> ``llm_B``)."""
    key = row["judge"].split(" (")[0].replace(" ", "_").replace("-", "_")
    metrics = {f"pa_{key}": row["pairwise_accuracy"], f"pa_low_{key}": row["pa_low"], f"pa_high_{key}": row["pa_high"]}
    if not np.isnan(row["pairs_per_second"]):
        metrics[f"pairs_per_second_{key}"] = row["pairs_per_second"]
    return {k: float(v) for k, v in metrics.items()}
