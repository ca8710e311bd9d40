"""Pictures of news vectors: 2-D t-SNE coloured by category (matplotlib Agg, PNG)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

from training.embedding_table import EmbeddingTable  # noqa: E402
from training.plots.save import save_png  # noqa: E402


def plot_news_tsne(vectors: EmbeddingTable, news: pd.DataFrame, path: str | Path, max_points: int = 2000,
                   seed: int = 0, title: str | None = None) -> Path:
    """Save a t-SNE scatter of (a seeded sample of) ``vectors`` coloured by the news' category."""
    category = news.set_index(news["news_id"].astype(str))["category"].fillna("").astype(str)
    ids = [i for i in vectors.ids if i in category.index]
    if len(ids) < 3:
        raise ValueError("t-SNE needs at least 3 news with a category")
    rng = np.random.default_rng(seed)
    if len(ids) > max_points:
        ids = [ids[i] for i in np.sort(rng.choice(len(ids), size=max_points, replace=False))]
    matrix, _ = vectors.lookup(ids)
    perplexity = float(min(30.0, max(2.0, (len(ids) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(matrix)
    labels = category.loc[ids].to_numpy()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=110)
    cmap = plt.get_cmap("tab20")
    for k, name in enumerate(sorted(set(labels))):
        sel = labels == name
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.7, color=cmap(k % 20), label=name or "(none)")
    ax.set_title(title or f"t-SNE of {len(ids)} news vectors")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False, ncol=2)
    return save_png(fig, path)
