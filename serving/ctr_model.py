"""MLflow pyfunc wrapper of a trained CTR model: scores flat candidate rows.

Input columns: ``impression_id`` (int), ``user_id``, ``time`` (ISO string or datetime, UTC), ``news_id``
and ``history`` (the user's clicked news ids, space-separated as in MIND). Rows of one impression are
contiguous, in candidate order. Output: click probabilities, one per row.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

INPUT_COLUMNS = ("impression_id", "user_id", "time", "news_id", "history")


def candidate_rows(impressions: pd.DataFrame, histories: pd.DataFrame) -> pd.DataFrame:
    """Flatten newsforge tables into the pyfunc's input rows."""
    hist = histories.set_index("impression_id")["history"].map(" ".join)
    out = impressions[["impression_id", "user_id", "time", "news_id"]].copy()
    out["time"] = out["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["history"] = out["impression_id"].map(hist).fillna("")
    return out.reset_index(drop=True)


def tables_from_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(impressions, histories) tables from pyfunc input rows."""
    missing = [c for c in INPUT_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"ctr_model input lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}")
    time = pd.to_datetime(rows["time"], utc=True)
    imps = pd.DataFrame({
        "impression_id": rows["impression_id"].astype(np.int64).to_numpy(),
        "user_id": rows["user_id"].astype(str).to_numpy(),
        "time": time.to_numpy(),
        "news_id": rows["news_id"].astype(str).to_numpy(),
    })
    imps["time"] = pd.to_datetime(imps["time"], utc=True)
    imps["day"] = imps["time"].dt.strftime("%Y-%m-%d")
    imps["position"] = imps.groupby("impression_id", sort=False).cumcount().astype(np.int32)
    first = rows.drop_duplicates("impression_id")
    hist = pd.DataFrame({
        "impression_id": first["impression_id"].astype(np.int64).to_numpy(),
        "user_id": first["user_id"].astype(str).to_numpy(),
        "time": pd.to_datetime(first["time"], utc=True).to_numpy(),
        "history": [str(h).split() for h in first["history"].fillna("")],
    })
    hist["time"] = pd.to_datetime(hist["time"], utc=True)
    hist["day"] = hist["time"].dt.strftime("%Y-%m-%d")
    return imps, hist


class CtrPyfunc(PythonModel):
    """A registered ``ctr_model`` version: the CtrPredictor artefact plus the news catalogue it knew."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.ctr import CtrPredictor

        self.predictor = CtrPredictor.load(context.artifacts["predictor"])
        self.news = pd.read_parquet(context.artifacts["news"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> np.ndarray:
        impressions, histories = tables_from_rows(model_input)
        return self.score_tables(impressions, histories)

    def score_tables(self, impressions: pd.DataFrame, histories: pd.DataFrame,
                     news: pd.DataFrame | None = None) -> np.ndarray:
        """Scores for newsforge tables; ``news`` adds to (and overrides) the catalogue the model knew."""
        catalogue = self.news if news is None else (
            pd.concat([self.news, news], ignore_index=True).drop_duplicates("news_id", keep="last"))
        return self.predictor.score(impressions, histories, catalogue)
