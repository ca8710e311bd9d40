"""News input shared by the PREC benchmarks: a prepared parquet, a MIND news.tsv, or synthetic news."""
from __future__ import annotations

import argparse

import _paths  # noqa: F401  (repository root and tests/ on sys.path)
import pandas as pd
from builders.prec import synthetic_news

from training.data.mind_reader import read_news


def load_news(args: argparse.Namespace) -> pd.DataFrame:
    """``--news-parquet`` or ``--news-tsv`` (read and validated like any MIND file), else ``--n-news`` synthetic."""
    if args.news_parquet:
        return pd.read_parquet(args.news_parquet)
    if args.news_tsv:
        news, validation = read_news(args.news_tsv)
        if validation.n_bad:
            raise SystemExit(f"{args.news_tsv}: {validation.n_bad} bad rows, e.g. {validation.issues[0]}")
        return news
    return synthetic_news(args.n_news, seed=0)
