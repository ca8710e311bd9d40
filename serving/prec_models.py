"""MLflow pyfunc wrappers of the PREC encoders, so registered versions can be loaded and served."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class NewsEncoderPyfunc(PythonModel):
    """Input: news rows (news_id, title, abstract, title_entities, ...); output: one vector per row."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.prec import load_news_encoder

        self.encoder = load_news_encoder(context.artifacts["encoder_dir"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> np.ndarray:
        from training.prec import news_vectors

        return news_vectors(self.encoder, model_input, progress=False)


class UserEncoderPyfunc(PythonModel):
    """Input: histories rows (user_id, day, history); output: one vector per user from the latest history
    (the frozen news-vector table it was trained with is bundled as the ``news_vectors`` artifact)."""

    def load_context(self, context: PythonModelContext) -> None:
        from training.embedding_table import EmbeddingTable

        self.encoder_dir = context.artifacts["encoder_dir"]
        self.news = EmbeddingTable.load(context.artifacts["news_vectors"])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        from training.prec import encode_users

        table = encode_users(self.encoder_dir, model_input, self.news, as_of_day=str(model_input["day"].max()),
                             progress=False)
        return pd.DataFrame({"user_id": table.ids, "vector": list(table.vectors)})
