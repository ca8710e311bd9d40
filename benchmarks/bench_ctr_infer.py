"""Inference throughput of a saved CTR artefact (candidates/s) at batch sizes 1, 100 and 10,000.

For each size it times ``CtrPredictor.score`` end to end on DataFrames of that many candidates
(featurisation + forward; the histories/news tables passed are the ones of those rows), and the model
alone on pre-built feature tensors (``score_features``).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ctr_infer.py [--model dcn] [--prec news+user]
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from functools import partial

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr import CtrConfig, CtrPredictor, FeatureSpace, build_model


def _rate(fn, candidates_per_call: int, min_seconds: float, min_calls: int = 3) -> float:
    fn()  # warm-up
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return calls * candidates_per_call / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcn")
    parser.add_argument("--prec", default="news+user")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum timing per measurement")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads; 0 = torch default (1 is steadier on shared cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)

    train, valid = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=5000, num_news=4000, num_categories=16,
                                                              impressions_per_day=3000))
    cfg = CtrConfig(model=args.model, prec=args.prec)
    space = FeatureSpace.fit(train, cfg)
    torch.manual_seed(0)
    model = build_model(cfg, space.field_sizes(), train.news_embeddings.dim, train.user_embeddings.dim)
    with tempfile.TemporaryDirectory() as tmp:
        CtrPredictor(model, space, cfg, train.news_embeddings, train.user_embeddings).save(tmp)
        predictor = CtrPredictor.load(tmp)
    print(f"model={args.model} prec={args.prec} threads={torch.get_num_threads()} load={os.getloadavg()[0]:.1f} "
          f"validation candidates available={len(valid.impressions):,}")
    print(f"{'batch':>7} | {'score() end to end':>20} | {'model only':>14}   (candidates/s)")
    for size in (1, 100, 10_000):
        imps = valid.impressions.iloc[:size]
        hist = valid.histories[valid.histories["impression_id"].isin(imps["impression_id"])]
        news = valid.news[valid.news["news_id"].isin(imps["news_id"])]
        end_to_end = _rate(partial(predictor.score, imps, hist, news, batch_size=size), size, args.seconds)
        feats = predictor.featurize(imps, hist, news)
        model_only = _rate(partial(predictor.score_features, feats, batch_size=size), size, args.seconds)
        print(f"{size:>7,} | {end_to_end:>20,.0f} | {model_only:>14,.0f}")


if __name__ == "__main__":
    main()
