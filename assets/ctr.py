"""CTR assets: ``ctr_model`` (gated into the registry by the blocking check ``beats_champion``) and
``ctr_evaluation`` (the PREC Table-2 grid: {DCN, DeepFM, PNN} x {base, +NP, +NP+UP} over several seeds).

Both split the days the same way (``training.ctr.experiment.split_for_day``): train on the window before
the partition minus its last day, early-stop on that last day, and measure on the partition day, which
neither training nor early stopping sees. The gate compares versions there, so it is not biased towards
the candidate by its own epoch selection.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, Config, MetadataValue, Output, asset
from mlflow.models import infer_signature

from assets.figures import training_curves_metadata
from orchestration.champion_gate import GateDecision, backfill_table, decide, gate_check_spec, gated_outputs, promote
from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.grid_schedules import schedule_note
from orchestration.io_manager import by_partition
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from orchestration.run_figures import log_training_curves
from serving.ctr_model import CtrPyfunc, candidate_rows
from training.baselines.popularity import popularity_metrics
from training.ctr.config import CtrConfig
from training.ctr.experiment import CtrSplit, gate_metrics, split_for_day, table2_grid, table2_markdown
from training.ctr.stream import CtrParquetData
from training.data.ceiling import demo_ceiling
from training.data.prepared import BehaviorLog
from training.distributed import check_in_process
from training.embedding_table import EmbeddingTable
from training.registry import CHAMPION, RegisteredModel, alias_version, load_version, log_and_register
from training.settings import model_dir


@derived_from(CtrConfig, overrides={
    "prec": Override("news+user", "the registered model scores with the frozen PREC news and user vectors "
                                  "(docs/prec-ctr.md); none | news are ctr_evaluation's base and +NP rows"),
    "max_epochs": Override(3, "the demo's short schedule (early stopping on the window's last day keeps the "
                              "best epoch)"),
})
class CtrModelConfig(Config):
    """The registered CTR model of a partition: training.ctr.CtrConfig's knobs and these."""

    window_days: int = 4            # days before the partition: the last early-stops, the others train
    split: str = "chronological"    # chronological: early-stop on the window's last day | random: 4:1 by impression
    force_promote: bool = False     # let this version replace a champion that can no longer be loaded or scored
    warm_start: bool = False        # start from ctr_model@champion's weights (ids mapped by vocabulary)


@derived_from(CtrConfig, overrides={
    "max_epochs": Override(3, "the grid's schedule: 9 models a seed; early stopping keeps the best epoch"),
}, exclude={
    "model": "the grid's models", "prec": "the grid's variants", "seed": "the grid's seeds",
    "progress_bar": "off: the grid logs one line a run",
    "strategy": "the grid trains in process", "devices": "the grid trains in process",
    "num_nodes": "the grid trains in process",
    "data_loading": "the grid shares one in-memory split", "stream_read_rows": "data_loading stream only",
    "shuffle_buffer_rows": "data_loading stream only",
})
class CtrEvaluationConfig(Config):
    """The PREC Table-2 grid: training.ctr.CtrConfig's knobs (but the grid's axes) and these."""

    models: list[str] = ["dcn", "deepfm", "pnn"]
    variants: list[str] = ["none", "news", "news+user"]
    seeds: list[int] = [1]          # the demo's; orchestration/reproduce.yaml holds the full grid
    window_days: int = 4


def _ctr_params(config: CtrModelConfig) -> dict:
    check_in_process(config.strategy, "ctr_model config")
    return to_training(config).to_dict()


def _grid_params(config: CtrEvaluationConfig) -> dict:
    """The grid's shared CtrConfig values (each run sets its model, variant and seed)."""
    return to_training(config, progress_bar=False).to_dict()


def _score_version(name: str, version: str, split: CtrSplit) -> dict:
    """MIND metrics of a registered version on the gate slice, loaded back from the registry."""
    model = load_version(name, version)
    return gate_metrics(split, model.predict(candidate_rows(split.test.impressions, split.test.histories)),
                        name, version)


@dataclass(frozen=True)
class _GatedDay:
    model: RegisteredModel
    decision: GateDecision
    metadata: dict


def _champion_predictor(out: Path) -> tuple[str, Path] | None:
    """(version, predictor folder) of the current ``ctr_model@champion``, downloaded into ``out``; None
    when there is no champion yet."""
    version = alias_version("ctr_model", CHAMPION)
    if version is None:
        return None
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/ctr_model/{version}", dst_path=str(out))
    return version, Path(local) / "artifacts" / "predictor"


def _train_and_decide(context: AssetExecutionContext, config: CtrModelConfig, day: str, mind_news: pd.DataFrame,
                      mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable,
                      user_embeddings: EmbeddingTable, popularity_baseline: pd.DataFrame,
                      mlflow_tracking: MlflowTracking, ranged: bool, prepared_dir: Path) -> _GatedDay:
    """One day: train, register (no alias yet) and take the gate decision, in that day's MLflow run."""
    from training.ctr import CtrConfig, train_ctr_model
    from training.ctr.warm_start import check_compatible

    split = split_for_day(mind_behaviors, day, config.window_days, config.split, config.seed)
    params = CtrConfig.from_dict(_ctr_params(config))
    with mlflow_tracking.asset_run(context, partition=day if ranged else None, params={
            **params.to_dict(), "window_days": config.window_days, "split": config.split,
            "train_days": ",".join(split.train_days), "early_stopping_days": ",".join(split.valid_days),
            "gate_day": day, "force_promote": config.force_promote, "warm_start": config.warm_start}) as run:
        out = model_dir("ctr_model", day, context.run.run_id)
        previous = _champion_predictor(out / "warm_start") if config.warm_start else None
        if previous is not None:
            try:  # a champion of another architecture (model, prec, sizes) cannot seed this one
                check_compatible(CtrConfig.load(previous[1] / "config.json"), params)
            except ValueError as err:
                context.log.warning(f"{day}: cold start, ctr_model@{CHAMPION} v{previous[0]} does not fit: {err}")
                mlflow.set_tags({"warm_start.skipped": str(err)[:500]})
                previous = None
        if previous is not None:
            mlflow.set_tags({"warm_start.version": previous[0]})
            context.log.info(f"{day}: warm start from ctr_model@{CHAMPION} (version {previous[0]})")
        if config.data_loading == "stream" and config.split != "chronological":
            raise ValueError("data_loading='stream' needs split='chronological' (it reads whole days)")
        train = (CtrParquetData(prepared_dir, tuple(split.train_days), mind_news, news_embeddings, user_embeddings)
                 if config.data_loading == "stream"  # the training days stay on disk, read in record batches
                 else split.data("train", mind_news, news_embeddings, user_embeddings))
        result = train_ctr_model(train,
                                 split.data("valid", mind_news, news_embeddings, user_embeddings),
                                 params, out / "predictor", loggers=[mlflow_tracking.lightning_logger(run)],
                                 init_from=previous[1] if previous else None)
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
                          popularity_metrics(popularity_baseline, split.test.histories["impression_id"]),
                          force_promote=config.force_promote)
        decision.log_to_mlflow(day=day)
        mlflow.log_metrics({f"early_stopping_{k}": float(v) for k, v in result.metrics.items()})
        curves = log_training_curves(run.info.run_id, out, prefix="epoch_", x_label="epoch")
    metadata = {
        "registered_version": model.version, "champion_version": decision.new_champion or "",
        **{k: float(v) for k, v in decision.candidate_metrics.items()},
        "train_days": ", ".join(split.train_days), "early_stopping_days": ", ".join(split.valid_days),
        "best_epoch": result.best_epoch, "train_seconds": round(result.train_seconds, 1),
        "warm_start_version": previous[0] if previous else "",
        "gate": MetadataValue.md(decision.metrics_table()),
    }
    metadata.update(training_curves_metadata(curves, "ctr_model"))
    return _GatedDay(model, decision, metadata)


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"},
       check_specs=[gate_check_spec("ctr_model")], backfill_policy=BackfillPolicy.single_run(),
       op_tags=CRITICAL_PATH_TAGS)
def ctr_model(context: AssetExecutionContext, config: CtrModelConfig, mind_news: pd.DataFrame,
              mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable,
              user_embeddings: Any,      # EmbeddingTable, or {day: EmbeddingTable} over a range
              popularity_baseline: Any,  # pd.DataFrame, or {day: pd.DataFrame} over a range
              dvc_data: DvcData, mlflow_tracking: MlflowTracking):
    """Train on the window before the partition (early stopping on its last day), register a ``ctr_model``
    version and gate it on the partition day against the champion and the popularity floor.

    Over a partition range (a backfill: ``--partition-range``, or the UI's backfill) the days run in date
    order, each with its own MLflow run, registered version and gate, so day D is gated against (and, with
    ``warm_start``, starts from) the champion that day D - 1 left. Every day but the last moves its aliases
    as soon as its decision is logged; the check reports every day: ERROR if any day's candidate is below the
    floor, else WARN if any day kept its champion (see ``orchestration.champion_gate``)."""
    days = sorted(context.partition_keys)
    ranged = len(days) > 1
    users, floors = by_partition(user_embeddings, days), by_partition(popularity_baseline, days)
    gated: dict[str, _GatedDay] = {}
    for day in days:
        gated[day] = _train_and_decide(context, config, day, mind_news, mind_behaviors, news_embeddings,
                                       users[day], floors[day], mlflow_tracking, ranged,
                                       dvc_data.prepared_path)
        context.log.info(f"{day}: {gated[day].decision.reason}")
        if day != days[-1]:
            promote(gated[day].decision)  # day D+1 is gated against (and warm-starts from) what day D left
    if not ranged:
        only = gated[days[0]]
        yield from gated_outputs(Output(only.model, metadata=only.metadata), only.decision)
        return
    last = gated[days[-1]]
    decisions = {day: g.decision for day, g in gated.items()}
    yield from gated_outputs(Output({day: g.model for day, g in gated.items()}, metadata={
        **last.metadata, "days": len(days), "backfill": MetadataValue.md(backfill_table(decisions)),
    }), last.decision, by_day=decisions)


def reference_rows(popularity_baseline: pd.DataFrame, split: CtrSplit, dvc_data: DvcData,
                   day: str) -> dict[str, dict]:
    """The rows printed beside a CTR grid: the popularity floor on the test impressions and, on demo data, the
    generator's Bayes-optimal ceiling."""
    rows = {"popularity_baseline": popularity_metrics(popularity_baseline, split.test.histories["impression_id"])}
    ceiling = demo_ceiling(dvc_data.prepare_report()["raw_dir"], day)
    if ceiling:
        rows["demo ceiling (Bayes-optimal)"] = ceiling
    return rows


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"mlflow"})
def ctr_evaluation(context: AssetExecutionContext, config: CtrEvaluationConfig, mind_news: pd.DataFrame,
                   mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, user_embeddings: EmbeddingTable,
                   popularity_baseline: pd.DataFrame, dvc_data: DvcData,
                   mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """PREC Table 2 on the partition day: mean ± std over seeds, beside the popularity floor and the ceiling."""
    day = context.partition_key
    split = split_for_day(mind_behaviors, day, config.window_days, "chronological", 0)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        base = _grid_params(config)
        table = table2_grid(split, mind_news, news_embeddings, user_embeddings, config.models, config.variants,
                            config.seeds, base, log=context.log.info)
        rows = reference_rows(popularity_baseline, split, dvc_data, day)
        markdown = table2_markdown(table, rows) + "\n" + schedule_note("ctr_evaluation", config) + "\n"
        mlflow.log_text(markdown, "table2.md")
        mlflow.log_text(table.to_csv(index=False), "table2.csv")
        for r in table.itertuples():
            mlflow.log_metric(f"{r.model}_{r.variant.replace('+', '_')}_auc_mean", r.auc_mean)
    context.log.info(f"PREC Table 2 on {day}:\n{markdown}")
    return Output(table, metadata={"table2": MetadataValue.md(markdown), "seeds": len(config.seeds)})
