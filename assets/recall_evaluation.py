"""``recall_evaluation``: recall of the news clicked next on the partition day per recall path, the union and
the random-queries baseline, and the comparison of query generators (``training.retrieval.evaluation``,
``training.retrieval.generator_comparison``)."""
import json
from pathlib import Path

import mlflow
import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from assets.query_generator import GenerationSettings, generation_config, registered_generator
from orchestration.grid_schedules import schedule_note
from orchestration.partitions import daily_partitions
from orchestration.resources import DvcData, MlflowTracking
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.prec import load_news_encoder
from training.registry import RegisteredModel
from training.retrieval.live_news import LIVE_DAYS, LiveWindow
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import VECTOR_CACHE
from training.retrieval.recall_paths import UNION_PATHS
from training.settings import cache_dir


class RecallEvaluationConfig(Config):
    ks: list[int] = [10, 30, 100]
    live_days: float = LIVE_DAYS        # a click's candidates count when live at its impression's time
    compare: bool = True                # base vs LoRA SFT vs LoRA SFT on click-refined targets, on the gate triggers
    other_targets: bool = False         # also train the registered generator's seed on the other targets (one
                                        # LoRA training, ~2 min on 2 cores; the demo's: False)
    compare_seeds: list[int] = []       # seeds trained besides the registered generator's own (each: 2 trainings;
                                        # the demo's; orchestration/reproduce.yaml holds the full grid)


def _comparison(config: RecallEvaluationConfig, query_generator: RegisteredModel, heldout: pd.DataFrame,
                query_targets: pd.DataFrame, pair_logs: PairLogs, behaviors: BehaviorLog, news: pd.DataFrame,
                news_index: str, news_encoder: RegisteredModel, log) -> list[dict]:
    """The generator comparison on the registered generator's own gate triggers, with its settings."""
    from serving.query_generator import resolve_base_model
    from training.retrieval.generator_comparison import compare_generators
    from training.retrieval.generator_gate import gate_triggers
    from training.slm.lora_sft import LoraSftConfig

    settings = json.loads((Path(query_generator.local_dir).parent / "settings.json").read_text())
    generation = generation_config(GenerationSettings(**{k: v for k, v in settings["generation"].items()
                                                         if k in GenerationSettings.model_fields}))
    gate = settings["gate"]
    window = LiveWindow.from_impressions(behaviors.impressions, gate["live_days"])
    triggers = gate_triggers(heldout, news, load_news_encoder(news_encoder.local_dir, "cpu"),
                             NewsIndex.load(news_index), window, pair_logs.test_day, n_triggers=gate["triggers"],
                             seed=gate["seed"], per_query=gate["per_query"], vector_cache=cache_dir(VECTOR_CACHE))
    return compare_generators(triggers, str(resolve_base_model(settings["base_model"])), generation,
                              LoraSftConfig.from_dict(settings["lora"]), settings["targets"],
                              lambda: registered_generator(query_generator.version), query_targets, news,
                              other_targets=config.other_targets, compare_seeds=config.compare_seeds,
                              cache=cache_dir("generated_queries"), log=log)


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"mlflow"})
def recall_evaluation(context: AssetExecutionContext, config: RecallEvaluationConfig,
                      recall_candidates: pd.DataFrame, query_targets: pd.DataFrame, query_generator: RegisteredModel,
                      pair_logs: PairLogs, mind_behaviors: BehaviorLog, mind_news: pd.DataFrame, news_index: str,
                      news_encoder: RegisteredModel, dvc_data: DvcData,
                      mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Recall@10/30/100 of the news clicked next on the partition day (among the news live at each click), per
    path, for the union and for random queries at Q''s coverage (with the paired interval of Q' minus it); the share
    found only by Q'; recall of fresh news (first shown less than a day before the impression); RecoDCG@5 of
    each path's top 5; and base vs LoRA SFT vs LoRA SFT on click-refined targets (mean ± std over seeds)."""
    from training.data.quality_truth import load_quality_truth
    from training.retrieval.evaluation import (
        comparison_markdown,
        heldout_targets,
        path_reco_dcg,
        recall_markdown,
        recall_report,
    )

    targets = heldout_targets(pair_logs, mind_behaviors)
    with mlflow_tracking.asset_run(context, params=config.model_dump()):
        window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
        report = recall_report(recall_candidates, targets, ks=tuple(config.ks), paths=UNION_PATHS, window=window)
        truth = load_quality_truth(dvc_data.raw_path())
        quality = path_reco_dcg(recall_candidates, targets["trigger_id"].unique(), mind_news, truth, paths=UNION_PATHS)
        table = report.table.merge(quality, on="path", how="left")
        for row in table.itertuples(index=False):
            mlflow.log_metric(f"recall_at_30_{row.path}", float(row.recall_at_30))
        mlflow.log_metrics({"only_qprime_share_at_30": report.only_qprime, "n_targets": len(targets),
                            "n_fresh_targets": int(targets["fresh"].sum()),
                            "qprime_trigger_coverage": report.qprime_trigger_coverage})
        if report.qprime_vs_random is not None:
            diff = report.qprime_vs_random
            mlflow.log_metrics({"qprime_minus_random_at_30": diff.estimate, "qprime_minus_random_low": diff.low,
                                "qprime_minus_random_high": diff.high, "n_paired_triggers": report.n_paired_triggers})
            mlflow.set_tag("qprime_vs_random", diff.verdict())
        markdown = {"recall.md": recall_markdown(table, report)}
        if config.compare:
            rows = _comparison(config, query_generator, targets, query_targets, pair_logs, mind_behaviors, mind_news,
                               news_index, news_encoder, context.log.info)
            markdown["generators.md"] = (comparison_markdown(rows) + "\n"
                                         + schedule_note("recall_evaluation", config) + "\n")
            mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "generators_per_seed.csv")
        for name, text in markdown.items():
            mlflow.log_text(text, name)
        mlflow.log_text(table.to_csv(index=False), "recall.csv")
    context.log.info("recall on " + context.partition_key + ":\n" + "\n".join(markdown.values()))
    return Output(table, metadata={"only_qprime_share_at_30": round(report.only_qprime, 4),
                                   "qprime_vs_random": report.decision(),
                                   "n_targets": len(targets), "n_fresh_targets": int(targets["fresh"].sum()),
                                   **{k.removesuffix(".md"): MetadataValue.md(v) for k, v in markdown.items()}})
