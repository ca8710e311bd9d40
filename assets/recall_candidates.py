"""``recall_candidates``: the coclick, embedding and Q' recall paths and their union, written to the key-value
store serving reads (``training.retrieval.day_candidates``)."""
import mlflow
import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset

from orchestration.executors import CRITICAL_PATH_TAGS
from orchestration.partitions import daily_partitions
from orchestration.resources import MlflowTracking
from training.data.pairs import PairLogs
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.prec import load_news_encoder
from training.registry import CHAMPION, RegisteredModel, alias_version, load_python_model
from training.retrieval.live_news import LIVE_DAYS, LiveWindow
from training.retrieval.news_index import NewsIndex
from training.retrieval.qprime import VECTOR_CACHE
from training.settings import cache_dir, candidate_store_path


class RecallCandidatesConfig(Config):
    live_days: float = LIVE_DAYS   # paths propose only news live on the day
                                   # (first shown <= N days before a moment of it)
    k: int = 100                   # candidates per trigger of the coclick and embedding paths
    per_query: int = 10            # Q': news retrieved per query
    keep: int = 30                 # Q': candidates kept per trigger after the quality ranking
    union_k: int = 30              # candidates per trigger the store serves (union of the paths)
    random_seed: int = 0           # the random-queries baseline (evaluated, never served)


def _student_ranker(ranking_student: RegisteredModel):
    """``rank(trigger_ids, news_ids)``: the quality head of ``ranking_student@champion`` (else the given version)."""
    version = alias_version("ranking_student", CHAMPION) or ranking_student.version
    student = load_python_model("ranking_student", version)

    def rank(triggers: list[str], news_ids: list[str]) -> np.ndarray:
        scored = student.score(pd.DataFrame({"trigger_id": triggers, "candidate_id": news_ids}))
        return scored["quality"].to_numpy(np.float64)
    return rank, version


@asset(group_name="recall", partitions_def=daily_partitions, kinds={"faiss", "sqlite"},
       op_tags=CRITICAL_PATH_TAGS)
def recall_candidates(context: AssetExecutionContext, config: RecallCandidatesConfig, news_index: str,
                      news_embeddings: EmbeddingTable, generated_queries: pd.DataFrame, pair_logs: PairLogs,
                      mind_behaviors: BehaviorLog, mind_news: pd.DataFrame, news_encoder: RegisteredModel,
                      ranking_student: RegisteredModel, mlflow_tracking: MlflowTracking) -> Output[pd.DataFrame]:
    """Candidates for every catalogue news as a trigger: ``coclick`` (co-occurrence in the users' latest
    histories and the window's clicks, before the partition day), ``embedding`` (nearest news vectors),
    ``qprime`` (the generated queries' top ``per_query`` news, united, ranked by the ranking student's quality
    head, top ``keep``) and their ``union``; written as one version (this MLflow run) of the key-value store.
    Every path retrieves among the news live on the day. Beside them, never served: the random-queries
    baseline (``random_queries``: as many queries per Q' trigger, titles of random live news, retrieved and
    ranked as Q')."""
    from training.retrieval.candidate_store import CandidateStore
    from training.retrieval.day_candidates import day_candidates

    day = context.partition_key
    window = LiveWindow.from_impressions(mind_behaviors.impressions, config.live_days)
    with mlflow_tracking.asset_run(context, params={**config.model_dump(),
                                                    "n_live_news": len(window.day_news(day))}) as run:
        rank, student_version = _student_ranker(ranking_student)
        found = day_candidates(day, mind_news, mind_behaviors, pair_logs.part("train"), news_embeddings,
                               NewsIndex.load(news_index), load_news_encoder(news_encoder.local_dir, "cpu"),
                               generated_queries, rank, window, k=config.k, per_query=config.per_query,
                               keep=config.keep, union_k=config.union_k, random_seed=config.random_seed,
                               vector_cache=cache_dir(VECTOR_CACHE))
        store_path = candidate_store_path()
        store = CandidateStore(store_path)
        try:
            written = store.write(run.info.run_id, found.served, meta={
                "partition": day, "mlflow_run_id": run.info.run_id, "ranking_student_version": student_version})
        finally:
            store.close()
        mlflow.log_metrics({**found.timings, **found.coverage, "store_rows": written})
        mlflow.set_tags({"store.path": str(store_path), "store.version": run.info.run_id,
                         "ranking_student.version": student_version})
    return Output(found.candidates, metadata={**found.coverage, **{k: round(v, 2) for k, v in found.timings.items()},
                                              "store": str(store_path), "store_version": run.info.run_id,
                                              "ranking_student_version": student_version})
