"""CTR training from one in-memory frame (``data_loading="memory"``) vs parquet record batches (``"stream"``).

Writes synthetic prepared tables (``impressions.parquet/`` and ``histories.parquet/``, one file per day, the
layout ``newsforge data prepare`` writes) at each size, then trains one epoch of the same small DCN on them
in a fresh child process per (size, mode) and prints rows/s (candidate rows over the whole call: loading,
feature fitting and the epoch) and the child's peak RSS (``os.wait4``), side by side. Memory grows with
the rows; stream stays flat (its buffers are bounded by ``stream_read_rows`` and ``shuffle_buffer_rows``).

    .venv/bin/python benchmarks/bench_ctr_stream.py [--rows 1000000 4000000] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root on sys.path)

DAYS = ("2019-11-09", "2019-11-10", "2019-11-11", "2019-11-12")
NUM_USERS, NUM_NEWS, NUM_CATEGORIES, MEAN_CANDIDATES, HISTORY = 50_000, 20_000, 12, 20, 20


def generate(out: Path, rows: int, seed: int = 0) -> None:
    """Clicks follow user x category affinity (two liked categories per user); vectorised with Arrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from training.data.schema import HISTORIES_FILE, IMPRESSIONS_FILE, NEWS_FILE, NEWS_SCHEMA

    rng = np.random.default_rng(seed)
    news_cat = rng.integers(NUM_CATEGORIES, size=NUM_NEWS)
    liked = rng.integers(NUM_CATEGORIES, size=(NUM_USERS, 2))
    user_history = rng.integers(NUM_NEWS, size=(NUM_USERS, HISTORY))

    def ids(prefix: str, numbers) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")

    for name in (IMPRESSIONS_FILE, HISTORIES_FILE):
        (out / name).mkdir(parents=True)
    news = {"news_id": ids("N", np.arange(NUM_NEWS)), "category": ids("c", news_cat),
            "subcategory": ids("s", news_cat * 3 + rng.integers(3, size=NUM_NEWS))}
    news.update({c: pa.array([""] * NUM_NEWS) for c in NEWS_SCHEMA.names if c not in news})
    pq.write_table(pa.table(news, schema=NEWS_SCHEMA), out / NEWS_FILE)
    per_day, first_id = rows // len(DAYS), 1
    for d, day in enumerate(DAYS):
        sizes = rng.integers(2, 2 * MEAN_CANDIDATES - 1, size=per_day // MEAN_CANDIDATES + 1)
        sizes = sizes[np.cumsum(sizes) <= per_day]
        n_imp, imp = len(sizes), np.repeat(np.arange(len(sizes)), sizes)
        user = rng.integers(NUM_USERS, size=n_imp)
        seconds = np.sort(rng.integers(0, 86_400, size=n_imp)) + (1573257600 + d * 86_400)
        cand = rng.integers(NUM_NEWS, size=len(imp))
        like = (liked[user[imp]] == news_cat[cand][:, None]).any(axis=1)
        time_s = pa.array(seconds, pa.int64()).cast(pa.timestamp("s", tz="UTC"))
        starts = np.cumsum(sizes) - sizes
        pq.write_table(pa.table({
            "impression_id": pa.array(first_id + imp, pa.int64()), "user_id": ids("U", user[imp]),
            "time": time_s.take(pa.array(imp)), "day": pa.array([day] * len(imp)),
            "position": pa.array(np.arange(len(imp)) - np.repeat(starts, sizes), pa.int32()),
            "news_id": ids("N", cand),
            "label": pa.array(rng.random(len(imp)) < np.where(like, 0.3, 0.03)).cast(pa.int8()),
            "in_catalogue": pa.array(np.ones(len(imp), bool)),
        }), out / IMPRESSIONS_FILE / f"{day}.parquet", row_group_size=200_000)
        history = pa.ListArray.from_arrays(pa.array(np.arange(n_imp + 1) * HISTORY, pa.int32()),
                                           ids("N", user_history[user].reshape(-1)))
        pq.write_table(pa.table({
            "impression_id": pa.array(first_id + np.arange(n_imp), pa.int64()), "user_id": ids("U", user),
            "time": time_s, "day": pa.array([day] * n_imp), "history": history,
        }), out / HISTORIES_FILE / f"{day}.parquet", row_group_size=20_000)
        first_id += n_imp


def train(data: Path, mode: str) -> dict:
    """One epoch on all days (no validation split); wall seconds and rows."""
    from training.ctr import CtrConfig, CtrData, train_ctr_model
    from training.ctr.stream import CtrParquetData
    from training.data.prepared import load_behaviors, load_news

    started = time.perf_counter()
    config = CtrConfig(model="dcn", embedding_dim=16, mlp_hidden=(64, 32), batch_size=4096, max_epochs=1,
                       progress_bar=False, data_loading=mode)
    news = load_news(data)
    if mode == "memory":
        log = load_behaviors(data, list(DAYS))
        split = CtrData(log.impressions, log.histories, news)
    else:
        split = CtrParquetData(data, DAYS, news)
    with tempfile.TemporaryDirectory() as out:
        result = train_ctr_model(split, None, config, out)
    return {"seconds": time.perf_counter() - started, "rows": result.num_train_rows}


def run_child(args: list[str]) -> tuple[dict | None, float]:
    """(the child's JSON line, its peak RSS in MiB)."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            err.seek(0)
            raise RuntimeError(f"child {args} failed with status {status}:\n{err.read()[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), usage.ru_maxrss / 1024  # Linux: kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["generate", "memory", "stream"])
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        if args.child == "generate":
            generate(args.data, args.rows[0])
        else:
            print(json.dumps(train(args.data, args.child)))
        return
    print(f"{'candidate rows':>14} {'mode':>7} {'rows/s':>9} {'seconds':>8} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            data = Path(tmp) / str(rows)
            run_child(["--child", "generate", "--data", str(data), "--rows", str(rows)])
            for mode in ("memory", "stream"):
                result, rss = run_child(["--child", mode, "--data", str(data), "--threads", str(args.threads)])
                print(f"{result['rows']:>14,} {mode:>7} {result['rows'] / result['seconds']:>9,.0f} "
                      f"{result['seconds']:>8.1f} {rss:>13,.0f}", flush=True)


if __name__ == "__main__":
    main()
