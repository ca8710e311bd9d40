"""The model scores that ``ltr_features`` puts in each row, as the plain callables ``training.ltr.rows``
takes: the ranking student's two heads (``student_scorer``) and the CTR model's click probability of a logged
pair (``ctr_scorer``). Each wraps an already loaded registered model; which version to load is the caller's."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.data.prepared import BehaviorLog
from training.ltr.rows import CtrScorer, StudentScorer


def student_scorer(student: Any, threads: int) -> StudentScorer:
    """``(trigger_ids, candidate_ids) -> (click logit, quality)`` float32 of a loaded ``ranking_student``
    (``.score(pairs)`` with columns ``click_logit`` and ``quality``), run on ``threads`` torch threads."""
    from training.torch_threads import torch_threads

    def score(triggers: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch_threads(threads):
            scored = student.score(pd.DataFrame({"trigger_id": triggers, "candidate_id": candidates}))
        return scored["click_logit"].to_numpy(np.float32), scored["quality"].to_numpy(np.float32)
    return score


def ctr_scorer(model: Any, behaviors: BehaviorLog) -> CtrScorer:
    """``pairs (impression_id, position) -> click probability`` (float32) of a loaded ``ctr_model``
    (``.score_tables`` and ``.predictor.features.vocabularies["user_id"]``) for logged pairs; NaN where the
    model does not know the user. ``ValueError`` when a pair has no impression row in ``behaviors``."""
    from training.ctr.vocabulary import FIRST_KNOWN

    def score(pairs: pd.DataFrame) -> np.ndarray:
        keys = pairs[["impression_id", "position"]]
        ids = keys["impression_id"].unique()
        logged = behaviors.impressions[behaviors.impressions["impression_id"].isin(ids)]  # not the whole log's join
        imps = keys.merge(logged, on=["impression_id", "position"], how="left", validate="1:1")
        del logged
        if imps["news_id"].isna().any():
            raise ValueError("some pairs have no impression row in mind_behaviors")
        hist = behaviors.histories[behaviors.histories["impression_id"].isin(ids)]
        scores = np.asarray(model.score_tables(imps, hist), dtype=np.float32)
        known = model.predictor.features.vocabularies["user_id"].encode(imps["user_id"].to_numpy(dtype=object))
        return np.where(known >= FIRST_KNOWN, scores, np.nan).astype(np.float32)
    return score
