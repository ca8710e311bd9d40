"""CTR assets: ``ctr_model`` (gated into the registry by the blocking check ``beats_champion``) and
``ctr_evaluation`` (the PREC Table-2 grid: {DCN, DeepFM, PNN} x {base, +NP, +NP+UP} over several seeds).

Both split the days the same way (``training.ctr.experiment.split_for_day``): train on the window before
the partition minus its last day, early-stop on that last day, and measure on the partition day, which
neither training nor early stopping sees. The gate compares versions there, so it is not biased towards
the candidate by its own epoch selection.
"""
import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset
from mlflow.models import infer_signature

from orchestration.champion_gate import decide, gate_check_spec, gated_outputs
from orchestration.model_registry import log_and_register
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.settings import model_dir
from serving.ctr_model import CtrPyfunc, candidate_rows
from training.ctr.experiment import CtrSplit, split_for_day, table2_grid, table2_markdown
from training.data.ceiling import demo_ceiling
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.metrics.ranking import mind_metrics


class CtrModelConfig(Config):
    """The registered CTR model of a partition (see training.ctr.CtrConfig for the full set)."""

    model: str = "dcn"              # dcn | deepfm | pnn
    prec: str = "news+user"         # none | news | news+user  (base, +NP, +NP+UP)
    window_days: int = 4            # days before the partition: the last early-stops, the others train
    split: str = "chronological"    # chronological: early-stop on the window's last day | random: 4:1 by impression
    embedding_dim: int = 16
    max_epochs: int = 3
    batch_size: int = 4096
    negative_ratio: int = 0         # K of 1:K negative sampling; 0: all candidates
    seed: int = 42
    force_promote: bool = False     # let this version replace a champion that can no longer be loaded or scored


class CtrEvaluationConfig(Config):
    models: list[str] = ["dcn", "deepfm", "pnn"]
    variants: list[str] = ["none", "news", "news+user"]
    seeds: list[int] = [1, 2]
    window_days: int = 4
    embedding_dim: int = 16
    max_epochs: int = 3
    batch_size: int = 4096


def _ctr_params(config: CtrModelConfig) -> dict:
    return {"model": config.model, "prec": config.prec, "embedding_dim": config.embedding_dim,
            "max_epochs": config.max_epochs, "batch_size": config.batch_size,
            "negative_ratio": config.negative_ratio, "seed": config.seed, "progress_bar": True}


def _score_version(name: str, version: str, split: CtrSplit) -> dict:
    """MIND metrics of a registered version on the gate slice, loaded back from the registry."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    scores = np.asarray(model.predict(candidate_rows(split.test.impressions, split.test.histories)), dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError(f"{name} version {version} returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    t = split.test.impressions
    return mind_metrics(t["impression_id"], t["label"], scores).as_dict()


def _floor(popularity_baseline: pd.DataFrame, split: CtrSplit) -> dict:
    """The popularity baseline's MIND metrics on the gate slice (it scores exactly the partition day)."""
    pop = popularity_baseline
    if set(pop["impression_id"]) != set(split.test.histories["impression_id"]):
        raise ValueError("popularity_baseline does not score the partition day's impressions; materialise it again")
    return mind_metrics(pop["impression_id"], pop["label"], pop["score"]).as_dict()


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[gate_check_spec("ctr_model")])
def ctr_model(context: AssetExecutionContext, config: CtrModelConfig, mind_news: pd.DataFrame,
              mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, user_embeddings: EmbeddingTable,
              popularity_baseline: pd.DataFrame, mlflow_tracking: MlflowTracking):
    """Train on the window before the partition (early stopping on its last day), register a ``ctr_model``
    version and gate it on the partition day against the champion and the popularity floor."""
    from training.ctr import CtrConfig, train_ctr_model

    day = context.partition_key
    split = split_for_day(mind_behaviors, day, config.window_days, config.split, config.seed)
    params = CtrConfig.from_dict(_ctr_params(config))
    with mlflow_tracking.asset_run(context, params={
            **params.to_dict(), "window_days": config.window_days, "split": config.split,
            "train_days": ",".join(split.train_days), "early_stopping_days": ",".join(split.valid_days),
            "gate_day": day, "force_promote": config.force_promote}) as run:
        out = model_dir("ctr_model", day, context.run.run_id)
        result = train_ctr_model(split.data("train", mind_news, news_embeddings, user_embeddings),
                                 split.data("valid", mind_news, news_embeddings, user_embeddings),
                                 params, out / "predictor", loggers=[mlflow_tracking.lightning_logger(run)])
        for row in result.history:
            mlflow.log_metrics({f"epoch_{k}": v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        mind_news.to_parquet(out / "news.parquet", index=False)
        example = candidate_rows(split.test.impressions.head(20), split.test.histories)
        model = log_and_register("ctr_model", CtrPyfunc(),
                                 {"predictor": str(result.artefact_dir), "news": str(out / "news.parquet")},
                                 local_dir=out, content_version=context.run.run_id,
                                 signature=infer_signature(example, np.zeros(len(example), dtype=np.float32)),
                                 input_example=example, candidate_alias=False)
        # the gate: both versions loaded back from the registry and scored the same way on the partition day
        decision = decide("ctr_model", model.version, lambda version: _score_version("ctr_model", version, split),
                          _floor(popularity_baseline, split), force_promote=config.force_promote)
        candidate, champion = decision.candidate_metrics, decision.champion_metrics
        mlflow.log_metrics({k: float(v) for k, v in candidate.items()})
        mlflow.log_metrics({f"early_stopping_{k}": float(v) for k, v in result.metrics.items()})
        mlflow.log_metric("floor_auc", decision.floor_metrics["auc"])
        if champion:
            mlflow.log_metric("champion_auc", champion["auc"])
        mlflow.set_tags({"gate.passed": str(decision.passed).lower(), "gate.champion_before": decision.champion_version or "",
                         "gate.champion_after": decision.new_champion or "", "gate.reason": decision.reason})
    yield from gated_outputs(Output(model, metadata={
        "registered_version": model.version, "champion_version": decision.new_champion or "",
        **{k: float(v) for k, v in candidate.items()},
        "train_days": ", ".join(split.train_days), "early_stopping_days": ", ".join(split.valid_days),
        "best_epoch": result.best_epoch, "train_seconds": round(result.train_seconds, 1),
        "gate": MetadataValue.md(decision.metrics_table()),
    }), decision)


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"mlflow"})
def ctr_evaluation(context: AssetExecutionContext, config: CtrEvaluationConfig, mind_news: pd.DataFrame,
                   mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, user_embeddings: EmbeddingTable,
                   popularity_baseline: pd.DataFrame, dvc_data: DvcData,
                   mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """PREC Table 2 on the partition day: mean ± std over seeds, beside the popularity floor and the ceiling."""
    day = context.partition_key
    split = split_for_day(mind_behaviors, day, config.window_days, "chronological", 0)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        base = {"embedding_dim": config.embedding_dim, "max_epochs": config.max_epochs,
                "batch_size": config.batch_size, "progress_bar": False}
        table = table2_grid(split, mind_news, news_embeddings, user_embeddings, config.models, config.variants,
                            config.seeds, base, log=context.log.info)
        extra = {"popularity_baseline": _floor(popularity_baseline, split)}
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
