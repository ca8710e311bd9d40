"""Linear-probe category accuracy of PREC news vectors on the real MIND and Adressa sample rows.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/probe_real_news.py [--pretrained] [--max-epochs 20]
        [--shared ../shared/data] [--out .newsforge/probe_real]

For each sample found under ``--shared`` (MIND-small news, Adressa one-week news), pre-trains the news
encoder (from scratch, or from all-MiniLM-L6-v2 with ``--pretrained``), then prints the probe table:
pre-trained encoder vs the same encoder untrained vs TF-IDF, tested on the news held out from
pre-training. Writes a t-SNE PNG per dataset under ``--out``. Not part of CI (needs ../shared).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from training.data.mind_reader import read_news
from training.prec import NewsPretrainConfig, category_probe, encode_news, plot_news_tsne, train_news_encoder

SAMPLES = {"mind": "mind-small-sample/news.tsv", "adressa": "adressa-news-sample/news.tsv"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--out", default=".newsforge/probe_real")
    parser.add_argument("--pretrained", action="store_true", help="start from all-MiniLM-L6-v2 (wheel)")
    parser.add_argument("--max-epochs", type=int, default=20)
    args = parser.parse_args()
    for name, rel in SAMPLES.items():
        path = Path(args.shared) / rel
        if not path.is_file():
            print(f"{name}: {path} not found, skipped")
            continue
        news, validation = read_news(path)
        if validation.n_bad:
            raise SystemExit(f"{path}: {validation.n_bad} bad rows, e.g. {validation.issues[0]}")
        views = ("title", "abstract") if (news["abstract"] != "").mean() > 0.5 else ("title",)
        config = (NewsPretrainConfig(pretrained=True, views=views, max_epochs=min(args.max_epochs, 2), batch_size=16,
                                     learning_rate=5e-5, early_stopping_patience=1, progress_bar=False)
                  if args.pretrained else
                  NewsPretrainConfig(views=views, max_epochs=args.max_epochs, early_stopping_patience=3,
                                     progress_bar=False))
        out = Path(args.out) / f"{name}-{'minilm' if args.pretrained else 'scratch'}"
        started = time.perf_counter()
        result = train_news_encoder(news, config, out / "encoder")
        trained = time.perf_counter() - started
        table = category_probe(result.encoder_dir, news)
        vectors, _ = encode_news(result.encoder_dir, news, out / "cache")
        png = plot_news_tsne(vectors, news, out / "tsne.png", title=f"PREC news vectors on the {name} sample")
        print(f"\n{name}: {len(news)} news, {news['category'].nunique()} categories, views {views}, "
              f"{'MiniLM-initialised' if args.pretrained else 'from scratch'}, "
              f"{result.global_step} steps in {trained:.0f} s")
        print(table.to_markdown(index=False, floatfmt=".3f"))
        print(f"t-SNE: {png}")


if __name__ == "__main__":
    main()
