"""Training throughput of the CTR model: Lightning path vs a bare PyTorch loop on the same tensors.

Both paths train the same architecture (fresh copies of one initial state) with AdamW + BCE on the same
in-memory feature tensors and the same batch sampler, interleaved twice; throughput is taken from the
epochs after a warm-up epoch (best and median). Prints samples/s of each and the ratio Lightning / bare
(target >= 0.8). On a shared 2-core machine ``--threads 1`` gives far steadier timings.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ctr_train.py [--model dcn] [--prec news+user] [--rows 400000]
"""
from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import time
import warnings

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import lightning as L
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data
from torch.nn import functional as F

from training.ctr import CtrConfig, CtrLightningModule, FeatureSpace, build_model
from training.ctr.dataset import make_loader


class _EpochTimer(L.Callback):
    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._t)


def bare_loop(model: torch.nn.Module, loader, cfg: CtrConfig, epochs: int) -> list[float]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate,
                            weight_decay=cfg.weight_decay)
    model.train()
    seconds = []
    for _ in range(epochs):
        t = time.perf_counter()
        for batch in loader:
            loss = F.binary_cross_entropy_with_logits(model(batch), batch["label"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - t)
    return seconds


def lightning_fit(model: torch.nn.Module, loader, cfg: CtrConfig, epochs: int,
                  progress_bar: bool) -> tuple[list[float], float]:
    timer = _EpochTimer()
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, callbacks=[timer],
                        enable_checkpointing=False, enable_progress_bar=progress_bar, enable_model_summary=False,
                        num_sanity_val_steps=0, deterministic=True, log_every_n_steps=50)
    t = time.perf_counter()
    trainer.fit(CtrLightningModule(model, cfg), loader)
    return timer.seconds, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dcn")
    parser.add_argument("--prec", default="news+user")
    parser.add_argument("--impressions-per-day", type=int, default=8_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3, help="per path; the first is a warm-up")
    parser.add_argument("--no-progress-bar", action="store_true")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads; 0 = torch default (1 is steadier on shared cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    train, _ = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=5000, num_news=4000, num_categories=16,
                                                          impressions_per_day=args.impressions_per_day))
    cfg = CtrConfig(model=args.model, prec=args.prec, batch_size=args.batch_size, progress_bar=False)
    t = time.perf_counter()
    space = FeatureSpace.fit(train, cfg)
    features = space.transform(train)
    featurise_s = time.perf_counter() - t
    n = len(features)
    torch.manual_seed(0)
    initial = build_model(cfg, space.field_sizes(), train.news_embeddings.dim, train.user_embeddings.dim)
    initial.set_frozen_vectors(train.news_embeddings, train.user_embeddings)
    print(f"rows={n:,}  featurise={featurise_s:.2f}s ({n / featurise_s:,.0f} rows/s)  model={args.model} "
          f"prec={args.prec} batch={args.batch_size} threads={torch.get_num_threads()} load={os.getloadavg()[0]:.1f}")

    def loader():
        return make_loader(features, cfg.batch_size, shuffle=True, seed=0)

    bare_s, light_s, fit_s = [], [], []
    for _ in range(2):  # interleave the two paths to even out noise from other processes
        bare_s += bare_loop(copy.deepcopy(initial), loader(), cfg, args.epochs)[1:]
        epochs, wall = lightning_fit(copy.deepcopy(initial), loader(), cfg, args.epochs, not args.no_progress_bar)
        light_s += epochs[1:]
        fit_s.append(wall)
    # Best epoch = least disturbed by other processes on a shared machine; the median is printed too.
    bare, light = n / min(bare_s), n / min(light_s)
    print(f"bare PyTorch loop : {bare:,.0f} samples/s best epoch, {n / statistics.median(bare_s):,.0f} median  "
          f"(epochs {', '.join(f'{s:.2f}s' for s in bare_s)})")
    print(f"Lightning         : {light:,.0f} samples/s best epoch, {n / statistics.median(light_s):,.0f} median  "
          f"(epochs {', '.join(f'{s:.2f}s' for s in light_s)}; "
          f"whole fit incl. setup {', '.join(f'{s:.1f}s' for s in fit_s)} for {args.epochs} epochs)")
    print(f"ratio Lightning / bare = {light / bare:.3f} best epoch, "
          f"{statistics.median(bare_s) / statistics.median(light_s):.3f} median  (target >= 0.8)")


if __name__ == "__main__":
    main()
