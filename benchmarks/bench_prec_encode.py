"""News encoding throughput: ``encode_news`` (cold cache) vs a bare ``model(**batch)`` loop, same news, same run.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_prec_encode.py [--n-news 5000]
        [--news-parquet PATH | --news-tsv PATH] [--pretrained] [--encoder-dir DIR] [--batch-size 128] [--threads N]

Without ``--encoder-dir`` a default-config encoder (untrained; throughput does not depend on the weights) is
built and saved to a temporary directory. Two bare loops are timed: "model only" runs ``model(**batch)`` over
pre-tokenised batches (identical to encode_news' batches); "naive" tokenises each batch in input order and
pads to the batch maximum, as a plain loop would. Target: encode_news / model-only >= 0.9.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from bench_data import load_news  # noqa: E402

from training.prec.config import NewsPretrainConfig  # noqa: E402
from training.prec.encode_cache import assemble_news, encode_news, length_bucketed_batches  # noqa: E402
from training.prec.news_encoder_store import load_news_encoder, save_news_encoder  # noqa: E402
from training.prec.news_model import build_news_encoder  # noqa: E402
from training.prec.news_pretrainer import build_tokenizer  # noqa: E402
from training.prec.news_views import view_texts  # noqa: E402
from training.prec.tokenization import pad_batch  # noqa: E402


def build_encoder_dir(news: pd.DataFrame, pretrained: bool, directory: Path) -> Path:
    config = NewsPretrainConfig(pretrained=pretrained)
    torch.manual_seed(config.seed)
    tokenizer = build_tokenizer(config, view_texts(news, config.views))
    save_news_encoder(build_news_encoder(config, tokenizer), tokenizer, config, directory)
    return directory


def bare_model_only(encoder, batches: list[dict[str, torch.Tensor]]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            encoder.model(**batch)
    return time.perf_counter() - start


def bare_naive(encoder, news: pd.DataFrame, batch_size: int) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(news), batch_size):
            sequences = assemble_news(encoder, view_texts(news.iloc[i: i + batch_size], encoder.views))
            batch = {k: torch.from_numpy(v) for k, v in pad_batch(sequences, encoder.tokenizer.pad_id).items()}
            encoder.model(**batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news-parquet")
    parser.add_argument("--news-tsv")
    parser.add_argument("--n-news", type=int, default=5000)
    parser.add_argument("--encoder-dir")
    parser.add_argument("--pretrained", action="store_true", help="MiniLM-initialised encoder")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="best of N for each side")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    news = load_news(args)
    with tempfile.TemporaryDirectory() as tmp:
        encoder_dir = Path(args.encoder_dir) if args.encoder_dir else build_encoder_dir(
            news, args.pretrained, Path(tmp) / "encoder")
        encoder = load_news_encoder(encoder_dir)
        sequences = assemble_news(encoder, view_texts(news, encoder.views))
        tokens = sum(len(ids) for ids, _ in sequences)
        batches = [{k: torch.from_numpy(v) for k, v in pad_batch([sequences[r] for r in rows],
                                                                 encoder.tokenizer.pad_id).items()}
                   for rows in length_bucketed_batches([len(s[0]) for s in sequences], args.batch_size)]
        bare_model_only(encoder, batches[:2])  # warm-up
        cold, model_only, naive = [], [], []
        for r in range(args.repeats):
            model_only.append(bare_model_only(encoder, batches))
            _, stats = encode_news(encoder, news, Path(tmp) / f"cache{r}", batch_size=args.batch_size,
                                   progress=False)
            cold.append(stats.seconds)
            naive.append(bare_naive(encoder, news, args.batch_size))
    n = len(news)
    print(f"news: {n}  tokens: {tokens} (mean {tokens / n:.1f}/news)  threads: {torch.get_num_threads()}  "
          f"model: {'MiniLM' if encoder.config.pretrained else 'scratch'} hidden {encoder.dim}  "
          f"batch {args.batch_size}  version {encoder.model_version}")
    for name, secs in (("encode_news (cold cache)", min(cold)), ("bare model(**batch), same batches", min(model_only)),
                       ("bare naive loop (tokenise + pad per batch)", min(naive))):
        print(f"{name:45s} {secs:8.2f} s  {n / secs:9.1f} news/s  {tokens / secs:10.0f} tokens/s")
    print(f"ratio encode_news / bare model-only: {min(model_only) / min(cold):.3f}  (target >= 0.9)")
    print(f"ratio encode_news / bare naive loop: {min(naive) / min(cold):.3f}")


if __name__ == "__main__":
    main()
