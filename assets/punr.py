"""The PUNR ablation asset ``punr_ablation``: PREC Table 2's CTR grid over the user vectors of four user
pre-trainings (user modelling, + behaviour masking, + behaviour generation, + both), with paired intervals
against user modelling (``training.ctr.punr_ablation``; docs/query_lists_protocol.md, comparison 6).

Same split as ``ctr_evaluation`` (train on the window before the partition minus its last day, early-stop on
that day, measure on the partition day); the user encoders train on the histories before the partition, as
the ``user_encoder`` asset's do.
"""
import re

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from assets.ctr import CtrEvaluationConfig, reference_rows
from assets.prec import UserEncoderConfig
from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from orchestration.run_config import Override, derived_from, to_training
from training.ctr.experiment import split_for_day
from training.ctr.punr_ablation import PUNR_VARIANTS, punr_markdown
from training.ctr.punr_ablation import punr_ablation as run_punr_ablation
from training.data.prepared import BehaviorLog, load_user_profiles
from training.distributed import check_in_process
from training.embedding_table import EmbeddingTable


@derived_from(overrides={
    "max_epochs": Override(1, "the demo's: 4 encoders a seed beside other steps on 2 cores (15-23 s each on the "
                              "demo data); orchestration/reproduce.yaml runs the user_encoder asset's 4"),
    "progress_bar": Override(False, "off: the ablation logs one line an encoder"),
})
class PunrUserEncoderConfig(UserEncoderConfig):
    """The ablation's base user pre-training: the ``user_encoder`` asset's knobs and defaults but these. Each
    encoder's ``seed`` is one of the ablation's seeds, and ``masking`` and ``weight_generation`` are its
    variant's (``training.ctr.punr_ablation.PUNR_VARIANTS``), whatever this config holds."""


@derived_from(overrides={
    "max_epochs": Override(2, "the demo's: 4 variants a model and seed, ctr_evaluation's 3 in make reproduce; "
                              "early stopping keeps the better epoch"),
})
class PunrAblationConfig(CtrEvaluationConfig):
    """The PUNR ablation: ``ctr_evaluation``'s knobs (training.ctr.CtrConfig's but the grid's axes; the plug-in
    is always ``news+user``), ``variants`` as labels of ``PUNR_VARIANTS`` (the first is the reference), and the
    user encoders' ``user_encoder``."""

    models: list[str] = ["dcn"]     # the demo's; orchestration/reproduce.yaml holds the full grid
    variants: list[str] = list(PUNR_VARIANTS)
    user_encoder: PunrUserEncoderConfig = PunrUserEncoderConfig()
    torch_threads: int = 0          # 0: the step's default (orchestration/executors.py: 1 a step side by side)


def _variants(labels: list[str]) -> dict[str, dict]:
    """The ``PUNR_VARIANTS`` overrides of ``labels``, in their order; ``ValueError`` naming the field."""
    unknown = [label for label in labels if label not in PUNR_VARIANTS]
    if unknown or len(set(labels)) != len(labels):
        raise ValueError(f"punr_ablation config variants={labels}: each a distinct label of "
                         f"{list(PUNR_VARIANTS)}" + (f"; unknown {unknown}" if unknown else ""))
    return {label: PUNR_VARIANTS[label] for label in labels}


def _metric_name(model: str, label: str, key: str) -> str:
    return f"{model}_{re.sub(r'[^a-z0-9]+', '_', label.lower()).strip('_')}_{key}"


def _params(config: PunrAblationConfig) -> dict:
    """The run config as MLflow params, the user encoder's flattened (``user_encoder.<field>``)."""
    values = config.model_dump()
    user = values.pop("user_encoder")
    return {**values, **{f"user_encoder.{k}": v for k, v in user.items()}}


@asset(group_name="ctr", partitions_def=daily_partitions, kinds={"pytorch", "mlflow"})
def punr_ablation(context: AssetExecutionContext, config: PunrAblationConfig, mind_news: pd.DataFrame,
                  mind_behaviors: BehaviorLog, news_embeddings: EmbeddingTable, popularity_baseline: pd.DataFrame,
                  dvc_data: DvcData, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """The PUNR ablation on the partition day: per (variant, seed) a user encoder on the histories before it,
    then each CTR model with the ``news+user`` plug-in over its vectors; mean ± std over seeds and each variant
    minus the reference with 95 % paired bootstrap intervals, beside the popularity floor and the ceiling."""
    day = context.partition_key
    variants = _variants(config.variants)
    check_in_process(config.user_encoder.strategy, "punr_ablation config user_encoder")
    split = split_for_day(mind_behaviors, day, config.window_days, "chronological", 0)
    with mlflow_tracking.asset_run(context, params=_params(config)):
        ablation = run_punr_ablation(
            mind_behaviors, split, mind_news, news_embeddings, to_training(config, progress_bar=False).to_dict(),
            to_training(config.user_encoder), config.models, config.seeds, variants,
            user_profiles=load_user_profiles(dvc_data.prepared_path), threads=config.torch_threads or None,
            log=context.log.info)
        rows = reference_rows(popularity_baseline, split, dvc_data, day)
        markdown = punr_markdown(ablation, rows) + "\n" + schedule_note("punr_ablation", config) + "\n"
        mlflow.log_text(markdown, "punr.md")
        mlflow.log_text(ablation.table.to_csv(index=False), "punr.csv")
        mlflow.log_text(ablation.differences.to_csv(index=False), "punr_differences.csv")
        for r in ablation.table.itertuples():
            mlflow.log_metric(_metric_name(r.model, r.variant, "auc_mean"), r.auc_mean)
            if r.variant != ablation.reference:
                mlflow.log_metric(_metric_name(r.model, r.variant, "auc_diff"), r.auc_diff)
    context.log.info(f"PUNR ablation on {day}:\n{markdown}")
    return Output(ablation.table, metadata={"punr": MetadataValue.md(markdown), "seeds": len(config.seeds),
                                            "reference": ablation.reference})
