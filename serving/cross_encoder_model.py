"""MLflow pyfunc wrapper of a (trigger, candidate) cross-encoder: the teachers and ``ranking_student``.

Input columns: ``trigger_id`` (the article being read) and ``candidate_id`` (an article that could be
recommended under it), both news ids of the catalogue the model was registered with; optional
``trigger_text``/``candidate_text`` columns are not needed. Output columns: ``click_logit`` (the click head),
``quality`` (the quality head's expected grade, 0-4) and ``score`` (what to rank by: the quality head).
``score_tables`` ranks MIND impressions (the trigger is the newest history item), so ``newsforge predict``
writes MIND submissions with a cross-encoder too.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

INPUT_COLUMNS = ("trigger_id", "candidate_id")


class CrossEncoderPyfunc(PythonModel):
    """A registered cross-encoder version: the saved model folder plus the news catalogue it knew."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.cross_encoder import load_cross_encoder

        self.model = load_cross_encoder(context.artifacts["model"])
        self.news = pd.read_parquet(context.artifacts["news"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.score(model_input)

    def score(self, pairs: pd.DataFrame, batch_size: int = 256) -> pd.DataFrame:
        from training.cross_encoder import score_pairs

        missing = [c for c in INPUT_COLUMNS if c not in pairs.columns]
        if missing:
            raise ValueError(f"input lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}")
        scored = score_pairs(self.model, self.news, pairs["trigger_id"].astype(str).tolist(),
                             pairs["candidate_id"].astype(str).tolist(), batch_size=batch_size)
        quality = np.asarray(scored.quality, dtype=np.float32)
        return pd.DataFrame({"click_logit": np.asarray(scored.click, dtype=np.float32), "quality": quality,
                             "score": quality})

    def score_tables(self, impressions: pd.DataFrame, histories: pd.DataFrame,
                     news: pd.DataFrame | None = None) -> np.ndarray:
        """A score per impression row: the quality head on (newest history item, candidate). Impressions whose
        history has no known news have no trigger: their candidates all score 0 (candidate order)."""
        from training.cross_encoder import score_pairs
        from training.data.pairs import impression_triggers

        catalogue = self.news if news is None else (
            pd.concat([self.news, news], ignore_index=True).drop_duplicates("news_id", keep="last"))
        known = set(catalogue["news_id"])
        triggers = impression_triggers(histories, known)
        trigger = impressions["impression_id"].map(triggers)
        rows = np.flatnonzero(trigger.notna().to_numpy() & impressions["news_id"].isin(known).to_numpy())
        scores = np.zeros(len(impressions), dtype=np.float32)
        if rows.size:
            scored = score_pairs(self.model, catalogue, trigger.iloc[rows].tolist(),
                                 impressions["news_id"].iloc[rows].tolist())
            scores[rows] = np.asarray(scored.quality, dtype=np.float32)
        return scores
