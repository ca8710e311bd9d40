"""Pre-training speed (optimizer steps/s, samples/s) of both PREC pre-trainers at their default configs.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_prec_train.py [--steps 30]
        [--n-news 3000] [--n-users 3000] [--news-parquet PATH | --news-tsv PATH] [--threads N] [--pretrained]

Runs ``train_news_encoder`` and ``train_user_encoder`` (real Lightning loop, collation included) for
``--steps`` optimizer steps; the first ``--warmup`` steps are excluded from the timing. Users come from a
synthetic history generator over the news' ids; the user pre-trainer uses the news vectors of the freshly
trained news encoder.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _paths  # noqa: F401  (repository root and tests/ on sys.path)

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from bench_data import load_news  # noqa: E402
from builders.prec import synthetic_histories, synthetic_profiles  # noqa: E402

from training.prec.config import NewsPretrainConfig, UserPretrainConfig  # noqa: E402
from training.prec.encode_cache import encode_news  # noqa: E402
from training.prec.news_pretrainer import train_news_encoder  # noqa: E402
from training.prec.user_pretrainer import train_user_encoder  # noqa: E402


class StepTimer(L.Callback):
    """Wall time between the end of step ``warmup`` and the last training step."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self.samples = warmup, [], 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.times.append(time.perf_counter())
        if len(self.times) > self.warmup + 1:
            self.samples += int(batch["index"].shape[0])

    def rate(self) -> tuple[float, float]:
        timed = self.times[self.warmup:]
        seconds = timed[-1] - timed[0]
        return (len(timed) - 1) / seconds, self.samples / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news-parquet")
    parser.add_argument("--news-tsv")
    parser.add_argument("--n-news", type=int, default=3000)
    parser.add_argument("--n-users", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--pretrained", action="store_true", help="MiniLM-initialised news encoder")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    news = load_news(args)
    histories = synthetic_histories(news, args.n_users, history_len=(5, 60), seed=0)
    profiles = synthetic_profiles(args.n_users, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        news_config = NewsPretrainConfig(max_steps=args.steps, progress_bar=False, pretrained=args.pretrained)
        timer = StepTimer(args.warmup)
        result = train_news_encoder(news, news_config, Path(tmp) / "news", callbacks=[timer])
        news_steps, news_samples = timer.rate()
        vectors, _ = encode_news(result.encoder_dir, news, Path(tmp) / "cache", progress=False)

        user_config = UserPretrainConfig(max_steps=args.steps, progress_bar=False)
        timer = StepTimer(args.warmup)
        train_user_encoder(histories, vectors, user_config, Path(tmp) / "user", user_profiles=profiles,
                           callbacks=[timer])
        user_steps, user_samples = timer.rate()
    print(f"threads: {torch.get_num_threads()}  news: {len(news)}  users: {args.n_users}  steps timed: "
          f"{args.steps - args.warmup - 1}")
    print(f"news pre-trainer ({'MiniLM' if args.pretrained else 'scratch'}, batch {news_config.batch_size}, "
          f"max_len {news_config.max_len}, tasks {','.join(result.tasks)}): "
          f"{news_steps:6.2f} steps/s  {news_samples:8.1f} news/s")
    print(f"user pre-trainer (batch {user_config.batch_size}, max_history {user_config.max_history}, "
          f"{user_config.num_negatives} negatives): {user_steps:6.2f} steps/s  {user_samples:8.1f} users/s")


if __name__ == "__main__":
    main()
