"""Benchmark vectorised ``mind_metrics`` against a plain per-impression loop (official formulas + sklearn AUC).

    PYTHONPATH=. python benchmarks/bench_metrics.py --candidates 1000000 --seed 0

Builds MIND-like impressions (2..300 candidates, mean ~38, ~4% clicks, at least one click each),
times both on the same data, checks they agree to 1e-9 and prints candidates/s and the speed ratio.
The loop can be timed on a prefix of the impressions (``--loop-candidates``); its rate is per candidate.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _timing import best_of
from sklearn.metrics import roc_auc_score

from training.metrics.mind import METRIC_KEYS, METRIC_LABELS, impression_metrics, mind_metrics


def make_impressions(n_candidates: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(impression_ids, labels, scores) with at least ``n_candidates`` rows."""
    rng = np.random.default_rng(seed)
    sizes = np.empty(0, dtype=np.int64)
    while sizes.sum() < n_candidates:
        more = np.clip(np.rint(rng.lognormal(np.log(26.0), 0.85, 50_000)), 2, 300).astype(np.int64)
        sizes = np.concatenate((sizes, more))
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_candidates)) + 1]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ids = np.repeat(np.arange(1, sizes.size + 1, dtype=np.int64), sizes)
    n = ids.size
    labels = (rng.random(n) < 0.014).astype(np.int8)
    labels[starts + rng.integers(0, sizes)] = 1  # one guaranteed click, as in MIND train/dev
    scores = (rng.normal(size=n) + 0.7 * labels).astype(np.float32)
    return ids, labels, scores


def _reference_order(y_score: np.ndarray) -> np.ndarray:
    return np.argsort(-y_score, kind="stable")  # score descending, ties by candidate order


def loop_metrics(ids: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-impression ``METRIC_KEYS`` rows (auc, mrr, ndcg5, ndcg10) with the official evaluate.py formulas."""
    def dcg(y_true, y_score, k):
        y = np.take(y_true, _reference_order(y_score)[:k])
        return np.sum((2 ** y - 1) / np.log2(np.arange(len(y)) + 2))

    bounds = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        y, s = labels[a:b].astype(np.int64), scores[a:b]
        ranked = np.take(y, _reference_order(s))
        clicks = y.sum()
        auc = roc_auc_score(y, s) if 0 < clicks < len(y) else math.nan
        mrr = np.sum(ranked / (np.arange(len(ranked)) + 1)) / clicks if clicks else math.nan
        nd5 = dcg(y, s, 5) / dcg(y, y, 5) if clicks else math.nan
        nd10 = dcg(y, s, 10) / dcg(y, y, 10) if clicks else math.nan
        rows.append((auc, mrr, nd5, nd10))
    return np.array(rows, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop-candidates", type=int, default=0,
                        help="time the loop on the first impressions holding this many candidates (0: all)")
    parser.add_argument("--repeats", type=int, default=5, help="vectorised timing: best of N runs")
    args = parser.parse_args()

    ids, labels, scores = make_impressions(args.candidates, args.seed)
    n_imp = int(ids[-1])
    print(f"data: {ids.size:,} candidates in {n_imp:,} impressions "
          f"(mean {ids.size / n_imp:.1f}, clicks {labels.mean():.2%}), seed {args.seed}")

    vec_s, vec = best_of(lambda: mind_metrics(ids, labels, scores), args.repeats)

    cut = ids.size
    if 0 < args.loop_candidates < ids.size:  # extend to the end of the impression holding the cut
        cut = int(np.searchsorted(ids, ids[args.loop_candidates - 1], side="right"))
    sub = (ids[:cut], labels[:cut], scores[:cut])
    t0 = time.perf_counter()
    ref = loop_metrics(*sub)
    loop_s = time.perf_counter() - t0

    got = impression_metrics(*sub)[list(METRIC_KEYS)].to_numpy()
    max_diff = float(np.nanmax(np.abs(got - ref)))
    agree = np.array_equal(np.isnan(got), np.isnan(ref)) and max_diff <= 1e-9
    if cut == ids.size:
        means = np.nanmean(ref, axis=0)
        mean_diff = float(np.max(np.abs(means - [getattr(vec, key) for key in METRIC_KEYS])))
        agree = agree and mean_diff <= 1e-9
    else:
        mean_diff = math.nan

    vec_rate, loop_rate = ids.size / vec_s, cut / loop_s
    loop_label = "all" if cut == ids.size else f"subset, first {cut:,}"
    print()
    print("| method | candidates timed | seconds | candidates/s |")
    print("|---|---:|---:|---:|")
    print(f"| mind_metrics (vectorised, best of {args.repeats}) | {ids.size:,} | {vec_s:.3f} | {vec_rate:,.0f} |")
    print(f"| per-impression loop + sklearn AUC ({loop_label}) | {cut:,} | {loop_s:.3f} | {loop_rate:,.0f} |")
    print()
    print(f"speed ratio (candidates/s, vectorised / loop): {vec_rate / loop_rate:,.1f}x")
    print(f"agreement on {cut:,} candidates: max |per-impression diff| = {max_diff:.2e}, "
          f"max |mean diff| = {'n/a (subset)' if math.isnan(mean_diff) else f'{mean_diff:.2e}'} -> "
          f"{'OK' if agree else 'MISMATCH'}")
    print("metrics: " + "  ".join(f"{METRIC_LABELS[key]} {getattr(vec, key):.4f}" for key in METRIC_KEYS))
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
