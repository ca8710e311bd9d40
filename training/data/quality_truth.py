"""The demo generator's true news quality (``news_quality.parquet``) and the true grade of article pairs.

Only golden sets, ceilings and the simulated judge read this truth, never a model. Real MIND data
has none, so :func:`load_quality_truth` returns None there.

The file does not hold the *visible* part of each news' grade latent (the clickbait marker it needs is not
a column): :func:`visible_quality` redraws it from the generator with the config in ``demo_report.json``
and checks the redrawn grades against the file's, so truth files of every generator version stay readable.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from training.data.demo.generator import NEWS_QUALITY_FILE, REPORT_FILE

QUALITY_COLUMNS = ("news_id", "quality", "clickbait", "spam", "duplicate_of")
#: Grade lost by a candidate whose category differs from the trigger's (off-topic for the reader).
OFF_TOPIC_PENALTY = 1


def load_quality_truth(raw_dir: str | Path) -> pd.DataFrame | None:
    """The truth table of a demo folder (columns ``QUALITY_COLUMNS``), or None when the file is absent."""
    path = Path(raw_dir) / NEWS_QUALITY_FILE
    if not path.is_file():
        return None
    truth = pd.read_parquet(path)
    missing = [c for c in QUALITY_COLUMNS if c not in truth.columns]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    return truth


def _positions(index: pd.Index, ids: np.ndarray, what: str) -> np.ndarray:
    pos = index.get_indexer(ids)
    if (pos < 0).any():
        unknown = list(dict.fromkeys(ids[pos < 0].tolist()))
        raise ValueError(f"{len(unknown)} unknown {what} id(s), e.g. {unknown[:5]}")
    return pos


def _pair_ids(trigger_ids: ArrayLike, candidate_ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    triggers = np.asarray(trigger_ids, dtype=object)
    candidates = np.asarray(candidate_ids, dtype=object)
    if triggers.shape != candidates.shape or triggers.ndim != 1:
        raise ValueError(f"trigger_ids and candidate_ids must be 1-D and of equal length, "
                         f"got shapes {triggers.shape} and {candidates.shape}")
    return triggers, candidates


def _off_topic(news: pd.DataFrame, triggers: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Whether each candidate's category differs from its trigger's."""
    news_index = pd.Index(news["news_id"])
    category = news["category"].to_numpy()
    trigger_category = category[_positions(news_index, triggers, "trigger")]
    return trigger_category != category[_positions(news_index, candidates, "candidate")]


def pair_quality(truth: pd.DataFrame, news: pd.DataFrame, trigger_ids: Sequence[str] | np.ndarray,
                 candidate_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """True 0-4 grade of each (trigger, candidate) pair: the candidate's grade, minus ``OFF_TOPIC_PENALTY``
    when its category differs from the trigger's, clipped to [0, 4] (int8).

    ``news`` is the MIND news table (``news_id``, ``category``, ...). Ids missing from ``news`` (either
    side) or from ``truth`` (candidates) raise ValueError naming the first few.
    """
    triggers, candidates = _pair_ids(trigger_ids, candidate_ids)
    off_topic = _off_topic(news, triggers, candidates)
    positions = _positions(pd.Index(truth["news_id"]), candidates, "candidate (no quality truth)")
    grade = truth["quality"].to_numpy()[positions]
    return np.clip(grade.astype(np.int64) - OFF_TOPIC_PENALTY * off_topic, 0, 4).astype(np.int8)


def visible_quality(raw_dir: str | Path, truth: pd.DataFrame) -> pd.Series | None:
    """The visible part of each news' grade latent (float, indexed by ``news_id``): what a judge reading the
    text, category and source could know (docs/demo_data.md; without visible quality, the generous
    ``-2 * clickbait - is_near_duplicate``). Redrawn from the generator's news and quality streams with the
    config of ``demo_report.json`` (no impressions are drawn); None when the folder has no report. Raises
    ValueError when the redrawn grades differ from ``truth``'s (a report of another dataset)."""
    from training.data.demo.config import DemoConfig
    from training.data.demo.generator import _spawn, _text_layout, make_news, make_quality

    path = Path(raw_dir) / REPORT_FILE
    if not path.is_file():
        return None
    config = DemoConfig.from_dict(json.loads(path.read_text(encoding="utf-8"))["config"])
    rngs = _spawn(config.seed)
    _, empty_abstract = _text_layout(config, rngs["text"])
    _, quality = make_quality(config, make_news(config, rngs["news"]), rngs["quality"], story_rng=rngs["stories"],
                              source_rng=rngs["sources"], empty_abstract=empty_abstract)
    ids = [f"N{i + 1}" for i in range(quality.grade.size)]
    redrawn = pd.Series(quality.grade.astype(np.int64), index=ids)
    given = truth.set_index("news_id")["quality"].astype(np.int64)
    if len(given) != len(redrawn) or not given.reindex(redrawn.index).eq(redrawn).all():
        raise ValueError(f"{path}: the generator's config there redraws grades that differ from {NEWS_QUALITY_FILE} "
                         "(report and truth of different datasets?)")
    return pd.Series(quality.visible, index=pd.Index(ids, name="news_id"), name="visible")


def perfect_text_scores(visible: pd.Series, truth: pd.DataFrame, news: pd.DataFrame,
                        trigger_ids: Sequence[str] | np.ndarray,
                        candidate_ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """Scores of the *perfect-text judge* for (trigger, candidate) pairs: it knows each candidate's visible
    latent (:func:`visible_quality`) exactly, bins it into grades as the generator bins the full latent
    (same shares, spam 0), takes :data:`OFF_TOPIC_PENALTY` off for a category other than the trigger's, as
    :func:`pair_quality` does, and breaks ties by the visible latent; spam scores below everything."""
    from training.data.demo.generator import _grades

    triggers, candidates = _pair_ids(trigger_ids, candidate_ids)
    ids = pd.Index(truth["news_id"])
    spam = truth["spam"].to_numpy(dtype=bool)
    latent = visible.reindex(ids).to_numpy(dtype=np.float64)
    if np.isnan(latent).any():
        raise ValueError(f"visible: no value for {int(np.isnan(latent).sum())} news of the truth")
    grade = _grades(latent, spam).astype(np.float64)
    rank = np.zeros(latent.size)
    graded = np.flatnonzero(~spam)
    rank[graded[np.argsort(latent[graded], kind="stable")]] = np.arange(graded.size) / max(graded.size, 1)
    off_topic = _off_topic(news, triggers, candidates)
    pos = _positions(ids, candidates, "candidate (no quality truth)")
    score = np.clip(grade[pos] - OFF_TOPIC_PENALTY * off_topic, 0, 4) + rank[pos]   # rank in [0, 1): ties only
    return np.where(spam[pos], -1.0, score)
