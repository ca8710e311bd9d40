"""Per-request CTR scoring latency: ``CtrPyfunc.predict`` (pandas featurisation) vs ``CtrRequestScorer.score``.

One tiny model is trained (1 epoch on synthetic data) and saved/loaded as the registered artefact would be.
Each call scores one request of ``--candidates`` candidates (a few outside the catalogue) with a history of
up to 30 clicks; the pyfunc gets the request's input rows prebuilt (building them is not timed). Prints
p50/p99 over ``--calls`` calls of each path, measured side by side, their ratio, and the largest score
difference between the two paths.

    .venv/bin/python benchmarks/bench_ctr_request.py [--model dcn] [--prec news+user] [--calls 2000]
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import tempfile
import time
import warnings

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import numpy as np
import pandas as pd
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from serving.ctr_model import CtrPyfunc
from serving.ctr_request import CtrRequestScorer
from training.ctr import CtrConfig, CtrPredictor, train_ctr_model


def _requests(valid, news_ids: np.ndarray, count: int, candidates: int, seed: int = 0) -> list[tuple]:
    """(user_id, history, candidates, time) of ``count`` validation impressions, candidates topped up from the
    catalogue, two of them unknown ids."""
    rng = np.random.default_rng(seed)
    firsts = valid.histories.set_index("impression_id")
    imps = valid.impressions.drop_duplicates("impression_id").sample(count, random_state=seed)
    out = []
    for k, imp in enumerate(imps.itertuples()):
        row = firsts.loc[imp.impression_id]
        cands = list(rng.choice(news_ids, size=candidates - 2, replace=False)) + [f"N_new_{k}", f"N_new_{k}b"]
        out.append((imp.user_id, list(row["history"]), cands, imp.time.to_pydatetime()))
    return out


def _rows(user_id: str, history: list[str], candidates: list[str], when: datetime.datetime) -> pd.DataFrame:
    return pd.DataFrame({"impression_id": 1, "user_id": user_id, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "news_id": candidates, "history": " ".join(history)})


def _latencies_ms(fn, inputs: list, calls: int, warmup: int = 50) -> np.ndarray:
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    out = np.empty(calls)
    for i in range(calls):
        arg = inputs[i % len(inputs)]
        start = time.perf_counter()
        fn(arg)
        out[i] = time.perf_counter() - start
    return out * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcn")
    parser.add_argument("--prec", default="news+user")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)

    train, valid = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=2000, num_news=3000, num_categories=16,
                                                              impressions_per_day=1000))
    cfg = CtrConfig(model=args.model, prec=args.prec, max_epochs=1, progress_bar=False)
    with tempfile.TemporaryDirectory() as tmp:
        train_ctr_model(train, valid, cfg, tmp)
        pyfunc = CtrPyfunc()
        pyfunc.predictor, pyfunc.news = CtrPredictor.load(tmp), train.news
    started = time.perf_counter()
    scorer = CtrRequestScorer.from_pyfunc(pyfunc)
    build_ms = (time.perf_counter() - started) * 1e3

    requests = _requests(valid, train.news["news_id"].to_numpy(dtype=object), 50, args.candidates)
    rows = [_rows(*r) for r in requests]
    diff = max(float(np.abs(scorer.score(*r)[0] - pyfunc.predict(None, x)).max()) for r, x in zip(requests, rows))
    batches = [scorer.model_inputs(*r) for r in requests]

    def forward(batch: dict[str, torch.Tensor]) -> None:
        with torch.inference_mode():
            torch.sigmoid(scorer.model(batch))

    timings = {
        "CtrPyfunc.predict (pandas)": _latencies_ms(lambda x: pyfunc.predict(None, x), rows, args.calls),
        "CtrRequestScorer.score": _latencies_ms(lambda r: scorer.score(*r), requests, args.calls),
        "  of which model forward": _latencies_ms(forward, batches, args.calls),
    }
    print(f"model={args.model} prec={args.prec} candidates/request={args.candidates} calls={args.calls} "
          f"threads={torch.get_num_threads()} load={os.getloadavg()[0]:.1f} scorer build={build_ms:.0f} ms "
          f"max |score diff|={diff:.1e}")
    print(f"{'path':<28} | {'p50 ms':>8} | {'p99 ms':>8}")
    for name, ms in timings.items():
        print(f"{name:<28} | {np.percentile(ms, 50):>8.3f} | {np.percentile(ms, 99):>8.3f}")
    old, new = timings["CtrPyfunc.predict (pandas)"], timings["CtrRequestScorer.score"]
    print(f"speed-up (pandas / scorer): p50 {np.percentile(old, 50) / np.percentile(new, 50):.1f}x, "
          f"p99 {np.percentile(old, 99) / np.percentile(new, 99):.1f}x")


if __name__ == "__main__":
    main()
