"""Thin Dagster asset definitions: read inputs, call ``training/``, log to MLflow."""
from dagster import load_assets_from_modules

from assets import (
    baselines,
    cross_encoder,
    ctr,
    data,
    ltr,
    news_index,
    prec,
    punr,
    quality,
    query_generator,
    query_lists,
    recall_candidates,
    recall_evaluation,
)

#: Every asset of the code location, in graph order of their modules.
ALL_ASSETS = load_assets_from_modules([data, baselines, prec, ctr, punr, quality, cross_encoder, news_index,
                                       query_generator, recall_candidates, recall_evaluation, ltr, query_lists])
