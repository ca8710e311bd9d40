"""Incremental news-vector refresh: wall time after adding 5 % new news vs a cold refresh (empty cache).

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_prec_refresh.py [--n-news 10000]
        [--news-parquet PATH | --news-tsv PATH] [--new-fraction 0.05] [--encoder-dir DIR] [--threads N]

Cold: ``encode_news`` over the catalogue with an empty cache. Incremental: the same catalogue plus
``new_fraction`` new news, against the cache the cold run left. Target: incremental / cold <= 0.15.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from bench_data import load_news  # noqa: E402

from training.prec.config import NewsPretrainConfig  # noqa: E402
from training.prec.encode_cache import encode_news  # noqa: E402
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder  # noqa: E402
from training.prec.news_model import build_news_encoder  # noqa: E402
from training.prec.news_pretrainer import build_tokenizer  # noqa: E402
from training.prec.news_views import view_texts  # noqa: E402


def split_new(news: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(existing catalogue, new arrivals): a seeded ``fraction`` of the rows is held back as 'new'."""
    new = news.sample(frac=fraction, random_state=seed)
    return news.drop(new.index), new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news-parquet")
    parser.add_argument("--news-tsv")
    parser.add_argument("--n-news", type=int, default=10000)
    parser.add_argument("--new-fraction", type=float, default=0.05)
    parser.add_argument("--encoder-dir")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    news = load_news(args)
    old, new = split_new(news, args.new_fraction / (1 + args.new_fraction), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.encoder_dir:
            encoder_dir = Path(args.encoder_dir)
        else:
            config = NewsPretrainConfig()
            torch.manual_seed(config.seed)
            tokenizer = build_tokenizer(config, view_texts(old, config.views))
            encoder_dir = Path(tmp) / "encoder"
            save_news_encoder(build_news_encoder(config, tokenizer), tokenizer, config, encoder_dir)
        encoder = load_news_encoder(encoder_dir)
        encode_news(encoder, old.head(256), Path(tmp) / "warmup", progress=False)
        cold, incremental, unchanged = [], [], []
        for r in range(args.repeats):
            cache = Path(tmp) / f"cache{r}"
            _, c = encode_news(encoder, old, cache, args.batch_size, progress=False)
            _, i = encode_news(encoder, pd.concat([old, new]), cache, args.batch_size, progress=False)
            _, u = encode_news(encoder, pd.concat([old, new]), cache, args.batch_size, progress=False)
            assert (c.n_encoded, i.n_encoded, u.n_encoded) == (c.n_total - c.n_duplicates, len(new) - i.n_duplicates, 0)
            cold.append(c.seconds)
            incremental.append(i.seconds)
            unchanged.append(u.seconds)
    print(f"catalogue: {len(old)} news, +{len(new)} new ({len(new) / len(old):.1%})  threads: "
          f"{torch.get_num_threads()}  model {encoder.model_version}")
    print(f"cold refresh (empty cache)        {min(cold):7.2f} s")
    print(f"incremental refresh (+new news)   {min(incremental):7.2f} s  ({i.n_encoded} encoded, {i.n_cached} cached)")
    print(f"unchanged refresh (all cached)    {min(unchanged):7.2f} s")
    print(f"ratio incremental / cold: {min(incremental) / min(cold):.3f}  (target <= 0.15)")


if __name__ == "__main__":
    main()
