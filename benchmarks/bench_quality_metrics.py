"""Benchmark the quality-aware ranking metrics (``training.metrics.quality``) on MIND-sized data.

    python benchmarks/bench_quality_metrics.py --items 1000000 --seed 0

Builds groups of ~30 items (1..60) with judge grades 0-4, ~4% clicks and float32 scores, times
reco_dcg@5, click_ndcg@5, quality_filtered_click_ndcg@5 and pairwise_accuracy (same number of items,
5 label levels) in one run, and prints items/s. For pairwise_accuracy it also times the plain O(n^2)
pair loop on ``--pa-loop-items`` items, checks that both agree there, and prints the speed ratio. The
target (>= 1 M items/s for RecoDCG and PA on 1 M items) is reported, not asserted.
"""
from __future__ import annotations

import argparse
import time

import _paths  # noqa: F401  (repository root on sys.path)
import numpy as np
from _timing import best_of

from training.metrics.quality import (
    click_ndcg,
    pairwise_accuracy,
    quality_filtered_click_ndcg,
    reco_dcg,
)

TARGET_ITEMS_PER_S = 1_000_000


def make_groups(n_items: int, seed: int) -> dict[str, np.ndarray]:
    """Exactly ``n_items`` rows in groups of 1..60 (mean ~30), ids shuffled; quality correlates with clicks."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 60, n_items // 15 + 2)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_items)) + 1]
    sizes[-1] -= int(sizes.sum()) - n_items
    ids = np.repeat(rng.permutation(sizes.size).astype(np.int64) * 7 + 3, sizes)  # unsorted, gappy ids
    quality = rng.integers(0, 5, n_items).astype(np.float64)
    clicks = (rng.random(n_items) < 0.01 + 0.015 * quality).astype(np.int8)
    scores = (rng.normal(size=n_items) + 0.3 * quality + 0.5 * clicks).astype(np.float32)
    return {"ids": ids, "quality": quality, "clicks": clicks, "scores": scores}


def make_pairs(n_items: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels on 5 levels and noisy float32 predictions."""
    rng = np.random.default_rng(seed + 1)
    labels = rng.integers(0, 5, n_items)
    return labels, (labels + 2.0 * rng.normal(size=n_items)).astype(np.float32)


def pairwise_loop(labels: list, preds: list) -> float:
    """The O(n^2) definition: every pair with different labels, ties in predictions count 1/2."""
    good = total = 0.0
    n = len(labels)
    for i in range(n):
        li, pi = labels[i], preds[i]
        for j in range(i + 1, n):
            lj = labels[j]
            if li == lj:
                continue
            total += 1
            pj = preds[j]
            good += 0.5 if pi == pj else float((li > lj) == (pi > pj))
    return good / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--pa-loop-items", type=int, default=3_000, help="items for the O(n^2) pair loop")
    parser.add_argument("--repeats", type=int, default=3, help="vectorised timing: best of N runs")
    args = parser.parse_args()

    d = make_groups(args.items, args.seed)
    labels, preds = make_pairs(args.items, args.seed)
    n_groups = int(np.count_nonzero(np.r_[True, d["ids"][1:] != d["ids"][:-1]]))
    print(f"data: {args.items:,} items in {n_groups:,} groups (mean {args.items / n_groups:.1f}), "
          f"clicks {d['clicks'].mean():.2%}, quality 0-4; PA labels 5 levels; seed {args.seed}, k {args.k}")

    k = args.k
    runs = [
        (f"reco_dcg@{k}", lambda: reco_dcg(d["ids"], d["quality"], d["scores"], k)),
        (f"click_ndcg@{k}", lambda: click_ndcg(d["ids"], d["clicks"], d["scores"], k)),
        (f"quality_filtered_click_ndcg@{k}",
         lambda: quality_filtered_click_ndcg(d["ids"], d["clicks"], d["quality"], d["scores"], k)),
        ("pairwise_accuracy", lambda: pairwise_accuracy(labels, preds)),
    ]
    rows = []
    for name, fn in runs:
        seconds, value = best_of(fn, args.repeats)
        rows.append((f"{name} (vectorised, best of {args.repeats})", args.items, seconds, value))

    m = min(args.pa_loop_items, args.items)
    small_labels, small_preds = labels[:m], preds[:m]
    t0 = time.perf_counter()
    loop_value = pairwise_loop(small_labels.tolist(), small_preds.astype(np.float64).tolist())
    loop_s = time.perf_counter() - t0
    rows.append(("pairwise_accuracy, O(n^2) pair loop", m, loop_s, loop_value))
    vec_small = pairwise_accuracy(small_labels, small_preds)

    print()
    print("| method | items | seconds | items/s | value |")
    print("|---|---:|---:|---:|---:|")
    for name, n, seconds, value in rows:
        print(f"| {name} | {n:,} | {seconds:.3f} | {n / seconds:,.0f} | {value:.6f} |")
    print()
    pa_rate, loop_rate = args.items / rows[3][2], m / loop_s
    print(f"pairwise_accuracy speed ratio (items/s, vectorised on {args.items:,} / loop on {m:,}): "
          f"{pa_rate / loop_rate:,.0f}x")
    diff = abs(vec_small - loop_value)
    print(f"pairwise_accuracy agreement on {m:,} items: |vectorised - loop| = {diff:.2e} -> "
          f"{'OK' if diff <= 1e-12 else 'MISMATCH'}")
    for name, _, seconds, _ in (rows[0], rows[3]):
        rate = args.items / seconds
        met = "met" if rate >= TARGET_ITEMS_PER_S else "NOT met"
        print(f"target >= {TARGET_ITEMS_PER_S:,} items/s for {name.split(' ')[0]} on {args.items:,} items: "
              f"{rate:,.0f} -> {met}")


if __name__ == "__main__":
    main()
