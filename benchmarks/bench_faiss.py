"""Faiss index kinds for news retrieval: build time, recall@10 against exact search and queries/s.

    .venv/bin/python benchmarks/bench_faiss.py [--sizes 10000,100000,1000000] [--dim 128] [--quick]
        [--build-threads 2] [--queries 1000]

Indexes are built by ``training.retrieval.news_index.make_faiss_index`` with the default ``IndexConfig``,
so the numbers are those of the shipped defaults. Builds use ``--build-threads`` (2) threads; queries run
on ONE thread (``faiss.omp_set_num_threads(1)``), all 1,000 queries in one batched call (exact search
gets its BLAS path). Recall@10 is the share of exact search's top 10 that the index returns in its top 10.

Synthetic vectors look like text embeddings rather than iid gaussian noise (which no ANN index handles
and no text encoder produces): a mixture of a few thousand gaussian clusters in a 32-dimensional subspace,
randomly rotated into ``dim`` dimensions, plus isotropic noise, then L2-normalised. The queries are 1,000
fresh draws from the same mixture, not rows of the base set.

Target: at 1M vectors the default approximate kind reaches recall@10 >= 0.95 at >= 20x exact search's
queries/s on one thread. ``--quick`` runs 10k and 100k only.
"""
from __future__ import annotations

import argparse
import time

import _paths  # noqa: F401  (repository root on sys.path)
import faiss
import numpy as np

from training.retrieval.news_index import IndexConfig, ivf_nlist, make_faiss_index

KINDS = ("flat", "hnsw", "ivf")
TARGET_RECALL, TARGET_SPEEDUP = 0.95, 20.0


class Mixture:
    """Clustered embedding-like vectors: gaussian clusters in a low-dimensional subspace plus noise."""

    def __init__(self, dim: int, n_clusters: int = 3000, latent: int = 32, spread: float = 0.6,
                 noise: float = 0.15, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((n_clusters, latent)).astype(np.float32)
        self.weights = rng.dirichlet(np.full(n_clusters, 2.0))  # uneven cluster sizes, like news topics
        self.rotation = np.linalg.qr(rng.standard_normal((dim, latent)))[0].T.astype(np.float32)
        self.latent, self.dim, self.spread, self.noise = latent, dim, spread, noise

    def sample(self, n: int, seed: int, chunk: int = 200_000) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            cluster = rng.choice(len(self.centres), size=m, p=self.weights)
            z = self.centres[cluster] + self.spread * rng.standard_normal((m, self.latent), dtype=np.float32)
            x = z @ self.rotation + self.noise * rng.standard_normal((m, self.dim), dtype=np.float32)
            out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def queries_per_second(index: faiss.Index, queries: np.ndarray, k: int, repeats: int = 2) -> tuple[float, np.ndarray]:
    """Single-thread throughput of one batched search (best of ``repeats``, the box may be shared) and its ids."""
    faiss.omp_set_num_threads(1)
    best, labels = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        _, labels = index.search(queries, k)
        best = min(best, time.perf_counter() - t0)
    return len(queries) / best, labels


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f).intersection(t)) for f, t in zip(found.tolist(), truth.tolist()))
    return hits / truth.size


SWEEP = {"hnsw": ("efSearch", (16, 32, 64, 128)), "ivf": ("nprobe", (4, 8, 16, 32))}


def sweep(kind: str, index: faiss.Index, queries: np.ndarray, truth: np.ndarray, exact_qps: float,
          k: int = 10) -> list[str]:
    """Recall and speed-up of ``index`` over its search knob (the build is reused)."""
    knob, values = SWEEP[kind]
    lines = []
    for value in values:
        if kind == "hnsw":
            index.hnsw.efSearch = value
        else:
            index.nprobe = value
        qps, labels = queries_per_second(index, queries, k)
        lines.append(f"  {kind} {knob}={value:<4} recall@10 {recall_at(labels, truth):.3f}  {qps:>8,.0f} q/s  "
                     f"{qps / exact_qps:>6.1f}x")
    return lines


def run_size(n: int, mixture: Mixture, queries: np.ndarray, config: IndexConfig, build_threads: int,
             k: int = 10, sweep_lines: list[str] | None = None) -> list[dict]:
    print(f"[{n:,}] sampling vectors ...", flush=True)
    base = mixture.sample(n, seed=n)
    rows, truth, exact_qps = [], None, None
    for kind in KINDS:
        faiss.omp_set_num_threads(build_threads)
        cfg = IndexConfig(**{**config.__dict__, "threads": build_threads})
        print(f"[{n:,}] building {kind} ...", flush=True)
        t0 = time.perf_counter()
        index = make_faiss_index(kind, base, cfg)
        build = time.perf_counter() - t0
        qps, labels = queries_per_second(index, queries, k)
        if kind == "flat":
            truth, exact_qps = labels, qps
        recall = recall_at(labels, truth)
        rows.append({"n": n, "kind": kind, "build_s": build, "recall": recall, "qps": qps,
                     "speedup": qps / exact_qps})
        print(f"[{n:,}] {kind}: build {build:.1f}s  recall@10 {recall:.3f}  {qps:,.0f} q/s", flush=True)
        if sweep_lines is not None and kind in SWEEP:
            sweep_lines += sweep(kind, index, queries, truth, exact_qps, k)
        del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated base-set sizes")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="only 10k and 100k")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--build-threads", type=int, default=2, help="threads for building (queries use 1)")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    config = IndexConfig()
    mixture = Mixture(args.dim)
    queries = mixture.sample(args.queries, seed=-1 % 2**32)
    print(f"defaults: hnsw M={config.hnsw_m} efConstruction={config.hnsw_ef_construction} "
          f"efSearch={config.hnsw_ef_search}; ivf nlist=~4*sqrt(n) nprobe={config.ivf_nprobe}; "
          f"build threads {args.build_threads}, query threads 1", flush=True)
    started = time.perf_counter()
    sweep_lines: list[str] = []
    rows = [row for n in sizes for row in run_size(n, mixture, queries, config, args.build_threads,
                                                   sweep_lines=sweep_lines if n == max(sizes) else None)]

    print(f"\n{'n':>10} {'kind':>5} {'build s':>8} {'recall@10':>9} {'q/s (1 thr)':>12} {'vs exact':>9}  note")
    for r in rows:
        note = f"nlist={ivf_nlist(r['n'], config)}" if r["kind"] == "ivf" else ""
        print(f"{r['n']:>10,} {r['kind']:>5} {r['build_s']:>8.1f} {r['recall']:>9.3f} {r['qps']:>12,.0f} "
              f"{r['speedup']:>8.1f}x  {note}")
    largest = max(sizes)
    print(f"\nsearch-knob sweep at {largest:,} (same builds, one query thread):")
    print("\n".join(sweep_lines))
    print(f"\ntarget at {largest:,}: recall@10 >= {TARGET_RECALL} at >= {TARGET_SPEEDUP:.0f}x exact, one query thread")
    for r in rows:
        if r["n"] == largest and r["kind"] in SWEEP:
            met = r["recall"] >= TARGET_RECALL and r["speedup"] >= TARGET_SPEEDUP
            default = " (default approximate kind)" if r["kind"] == config.approximate else ""
            print(f"  {r['kind']}{default}: {'MET' if met else 'NOT MET'} (recall {r['recall']:.3f}, "
                  f"{r['speedup']:.1f}x)")
    print(f"total {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
