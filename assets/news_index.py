"""``news_index``: faiss over the news vectors, refreshed with the catalogue; the embedding and Q' recall paths
and the query targets' "Enhanced" filter retrieve through it."""
import mlflow
from dagster import AssetExecutionContext, Config, Output, asset

from orchestration.resources import MlflowTracking
from orchestration.run_config import derived_from, to_training
from training.embedding_table import EmbeddingTable
from training.registry import RegisteredModel
from training.retrieval.news_index import IndexConfig
from training.settings import cache_dir, model_dir


@derived_from(IndexConfig)
class NewsIndexConfig(Config):
    """training.retrieval.news_index.IndexConfig's knobs: kind auto | flat | hnsw | ivf; auto is exact up to
    exact_max news and ``approximate`` (IVF, measured in benchmarks/bench_faiss.py) past it."""


@asset(group_name="recall", kinds={"faiss"})
def news_index(context: AssetExecutionContext, config: NewsIndexConfig, news_embeddings: EmbeddingTable,
               news_encoder: RegisteredModel, mlflow_tracking: MlflowTracking):
    """faiss over the news vectors: exact for small catalogues, HNSW or IVF past ``exact_max`` (chosen and
    recorded); a catalogue refresh adds only the new news when the encoder and the old vectors are unchanged."""
    from training.retrieval.news_index import NewsIndex, refresh_index

    current = cache_dir("news_index") / "current"
    params = to_training(config)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        previous = NewsIndex.load(current) if current.is_dir() else None
        index, stats = refresh_index(previous, news_embeddings, params, model_version=news_encoder.content_version)
        index.save(current)
        stored = index.save(model_dir("news_index", None, context.run.run_id) / "index")
        mlflow.log_metrics({"n_total": stats.n_total, "n_added": stats.n_added, "seconds": stats.seconds,
                            "rebuilt": int(stats.rebuilt)})
        mlflow.set_tags({"index.kind": stats.kind, "index.reason": stats.reason,
                         "news_encoder.version": news_encoder.version})
    context.log.info(f"news_index: {stats.kind}, {stats.n_total} news, {stats.n_added} added "
                     f"({'rebuilt: ' + stats.reason if stats.rebuilt else 'incremental'})")
    return Output(str(stored), metadata={"kind": stats.kind, "n_news": stats.n_total, "n_added": stats.n_added,
                                         "rebuilt": stats.rebuilt, "reason": stats.reason,
                                         "seconds": round(stats.seconds, 2)})
