"""CTR assets: ``ctr_model`` (gated into the registry by a blocking check) and ``ctr_evaluation``
(the PREC Table-2 grid: {DCN, DeepFM, PNN} x {base, +NP, +NP+UP} over several seeds)."""
import mlflow
import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, Config, MetadataValue, Output,
    asset,
)
from mlflow.models import infer_signature

from orchestration.model_registry import gate_champion, log_and_register
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.settings import model_dir
from serving.ctr_model import CtrModel, candidate_rows
from training.ctr.experiment import CtrSplit, split_for_day, table2_grid
from training.data.ceiling import demo_ceiling
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.metrics.ranking import format_metrics_table, mind_metrics

CHECK = "beats_champion"


class CtrModelConfig(Config):
    """The registered CTR model of a partition (see training.ctr.CtrConfig for the full set)."""

    model: str = "dcn"              # dcn | deepfm | pnn
    prec: str = "news+user"         # none | news | news+user  (base, +NP, +NP+UP)
    window_days: int = 3            # train on this many days before the partition
    split: str = "chronological"    # chronological: validate on the partition day | random: 4:1 by impression
    embedding_dim: int = 16
    max_epochs: int = 3
    batch_size: int = 4096
    negative_ratio: int = 0         # K of 1:K negative sampling; 0: all candidates
    seed: int = 42


class CtrEvaluationConfig(Config):
    models: list[str] = ["dcn", "deepfm", "pnn"]
    variants: list[str] = ["none", "news", "news+user"]
    seeds: list[int] = [1, 2]
    window_days: int = 3
    embedding_dim: int = 16
    max_epochs: int = 3
    batch_size: int = 4096


def _metric_key(name: str) -> str:
    return name.replace("@", "_at_")


def _ctr_params(config: CtrModelConfig) -> dict:
    return {"model": config.model, "prec": config.prec, "embedding_dim": config.embedding_dim,
            "max_epochs": config.max_epochs, "batch_size": config.batch_size,
            "negative_ratio": config.negative_ratio, "seed": config.seed, "progress_bar": True}


def _score_version(name: str, version: str, split: CtrSplit) -> dict:
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    scores = model.predict(candidate_rows(split.valid.impressions, split.valid.histories))
    v = split.valid.impressions
    return mind_metrics(v["impression_id"], v["label"], np.asarray(scores)).as_dict()


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[AssetCheckSpec(CHECK, asset="ctr_model", blocking=True,
                                   description="The new version beats the champion on the partition day; "
                                               "only then does alias 'champion' move to it.")])
def ctr_model(context: AssetExecutionContext, config: CtrModelConfig, mind_news: pd.DataFrame,
              mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, user_embeddings: EmbeddingTable,
              dvc_data: DvcData, mlflow_tracking: MlflowTracking):
    """Train on the days before the partition, validate on it, register a ``ctr_model`` version
    (alias ``candidate``) and move ``champion`` only when it beats the current champion there."""
    from training.ctr import CtrConfig, train_ctr_model

    day = context.partition_key
    split = split_for_day(mind_behaviors, day, config.window_days, config.split, config.seed)
    params = CtrConfig.from_dict(_ctr_params(config))
    with mlflow_tracking.asset_run(context, data_version=dvc_data.data_version(verify=False),
                                   params={**params.to_dict(), "window_days": config.window_days,
                                           "split": config.split, "train_days": ",".join(split.train_days)}) as run:
        out = model_dir("ctr_model", day, context.run.run_id)
        result = train_ctr_model(split.train_data(mind_news, news_embeddings, user_embeddings),
                                 split.valid_data(mind_news, news_embeddings, user_embeddings),
                                 params, out / "predictor", loggers=[mlflow_tracking.lightning_logger(run)])
        for row in result.history:
            mlflow.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        mind_news.to_parquet(out / "news.parquet", index=False)
        example = candidate_rows(split.valid.impressions.head(20), split.valid.histories)
        model = log_and_register("ctr_model", CtrModel(),
                                 {"predictor": str(result.artefact_dir), "news": str(out / "news.parquet")},
                                 local_dir=out, content_version=context.run.run_id,
                                 signature=infer_signature(example, np.zeros(len(example), dtype=np.float32)),
                                 input_example=example)
        # the comparison: both versions loaded back from the registry and scored the same way
        decision = gate_champion("ctr_model", model.version, lambda version: _score_version("ctr_model", version, split))
        candidate, champion = decision.candidate_metrics, decision.champion_metrics
        mlflow.log_metrics({_metric_key(k): float(v) for k, v in candidate.items()})
        if champion:
            mlflow.log_metric("champion_auc", champion["auc"])
        mlflow.set_tag("ctr_model.champion", decision.new_champion)
    champion_version, passed = decision.champion_version, decision.passed
    rows = {f"candidate v{model.version}": candidate}
    if champion:
        rows[f"champion v{champion_version}"] = champion
    table = format_metrics_table(rows)
    yield Output(model, metadata={
        "registered_version": model.version, "champion_version": decision.new_champion,
        **{_metric_key(k): float(v) for k, v in candidate.items()},
        "train_days": ", ".join(split.train_days), "best_epoch": result.best_epoch,
        "train_seconds": round(result.train_seconds, 1), "metrics": MetadataValue.md(table),
    })
    yield AssetCheckResult(
        check_name=CHECK, passed=passed, severity=AssetCheckSeverity.WARN,
        description=(f"v{model.version} AUC {candidate['auc']:.4f} vs champion "
                     + (f"v{champion_version} {champion['auc']:.4f}" if champion else "none (first version)")
                     + (": champion moved" if passed else ": champion stays")),
        metadata={"candidate_version": model.version, "candidate_auc": float(candidate["auc"]),
                  "champion_version": champion_version or "", "champion_auc": float(champion["auc"]) if champion else float("nan"),
                  "comparison": MetadataValue.md(table)},
    )


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"mlflow"})
def ctr_evaluation(context: AssetExecutionContext, config: CtrEvaluationConfig, mind_news: pd.DataFrame,
                   mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, user_embeddings: EmbeddingTable,
                   popularity_baseline: pd.DataFrame, dvc_data: DvcData,
                   mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """PREC Table 2 on the partition day: mean ± std over seeds, beside the popularity floor and the ceiling."""
    day = context.partition_key
    split = split_for_day(mind_behaviors, day, config.window_days, "chronological", 0)
    with mlflow_tracking.asset_run(context, data_version=dvc_data.data_version(verify=False),
                                   params=config.model_dump()):
        base = {"embedding_dim": config.embedding_dim, "max_epochs": config.max_epochs,
                "batch_size": config.batch_size, "progress_bar": False}
        table = table2_grid(split, mind_news, news_embeddings, user_embeddings, config.models, config.variants,
                            config.seeds, base, log=context.log.info)
        pop = popularity_baseline
        floor = mind_metrics(pop["impression_id"], pop["label"], pop["score"]).as_dict()
        extra = {"popularity_baseline": floor}
        ceiling = demo_ceiling(dvc_data.prepare_report()["raw_dir"], day)
        if ceiling:
            extra["demo ceiling (Bayes-optimal)"] = ceiling
        markdown = table2_markdown(table, extra)
        mlflow.log_text(markdown, "table2.md")
        mlflow.log_text(table.to_csv(index=False), "table2.csv")
        for r in table.itertuples():
            mlflow.log_metric(f"{r.model}_{r.variant.replace('+', '_')}_auc_mean", r.auc_mean)
    context.log.info(f"PREC Table 2 on {day}:\n{markdown}")
    return Output(table, metadata={"table2": MetadataValue.md(markdown), "seeds": len(config.seeds)})


def table2_markdown(table: pd.DataFrame, extra: dict[str, dict]) -> str:
    """Markdown of the grid (mean ± std) followed by reference rows (single values)."""
    metrics = ["auc", "mrr", "ndcg@5", "ndcg@10"]
    lines = ["| model | variant | " + " | ".join(m.upper() if m in ("auc", "mrr") else m.replace("ndcg", "nDCG")
                                                 for m in metrics) + " |",
             "|---|---|" + "---:|" * len(metrics)]
    for r in table.to_dict("records"):
        cells = [f"{r[m + '_mean']:.4f} ± {r[m + '_std']:.4f}" for m in metrics]
        lines.append(f"| {r['model']} | {r['variant_label']} | " + " | ".join(cells) + " |")
    for name, row in extra.items():
        lines.append(f"| {name} | | " + " | ".join(f"{row[m]:.4f}" for m in metrics) + " |")
    return "\n".join(lines) + "\n"
