"""Counts of a partition's ``PairLogs``: what ``pair_logs`` logs and ``distillation_set`` compares against."""
from __future__ import annotations

import pandas as pd

from training.data.pairs import PairLogs


def distinct_fit_pairs(logs: PairLogs) -> int:
    """Distinct (trigger, candidate) pairs of the fit days: the unlabelled set before its cap."""
    return len(logs.role("fit")[["trigger_id", "candidate_id"]].drop_duplicates())


def repeated_triplet_share(triplets: pd.DataFrame) -> float:
    """Share of click triplets logged more than once (``frequency`` > 1); 0.0 without triplets."""
    return float((triplets["frequency"] > 1).mean()) if len(triplets) else 0.0


def pair_log_stats(logs: PairLogs) -> dict[str, int | float]:
    """Pairs of each part, triplets (kept and before sampling), unlabelled pairs (kept and before the cap) and
    what building them left out."""
    return {"n_train_pairs": len(logs.part("train")), "n_test_pairs": len(logs.part("test")),
            "n_triplets": len(logs.triplets), "n_triplets_total": logs.n_triplets_total,
            "n_early_stopping_triplets": len(logs.early_stopping_triplets),
            "n_unlabelled": len(logs.unlabelled), "n_unlabelled_total": distinct_fit_pairs(logs),
            "n_without_trigger": logs.n_without_trigger, "n_outside_catalogue": logs.n_outside_catalogue,
            "repeated_triplet_share": repeated_triplet_share(logs.triplets)}
