"""The code location in process: Definitions load, jobs select exactly their assets and checks, schedule and
sensor ticks. The automation chain and champion_age are exercised in test_automation.py."""
from datetime import UTC, datetime

import yaml
from dagster import AssetSelection, Definitions, build_schedule_context, build_sensor_context
from dagster._config import validate_config

from orchestration.definitions import defs
from orchestration.resources import DvcData

NEWS_SIDE = {"mind_news", "mind_behaviors", "news_encoder", "news_embeddings", "golden_set", "judge_evaluation",
             "news_index"}
DAILY_CHAIN = {"impressions", "popularity_baseline", "user_encoder", "user_embeddings", "ctr_model",
               "ctr_evaluation", "pair_logs", "quality_labels", "click_teacher", "quality_teacher", "distillation_set",
               "ranking_student", "ranking_evaluation", "query_targets", "query_generator", "generated_queries",
               "recall_candidates", "recall_evaluation", "ltr_features", "ranker", "ltr_tradeoff", "punr_ablation",
               "query_list_policy", "query_list_student", "interest_queries", "query_list_evaluation",
               "interest_ranking"}


GATED = {"ctr_model", "ranking_student", "query_generator", "ranker", "query_list_policy", "query_list_student"}
GATE_CHECKS = {(model, "beats_champion") for model in GATED}
AGE_CHECKS = {(model, "champion_age") for model in GATED}


def _selected(job_name: str) -> set[str]:
    job = defs.resolve_job_def(job_name)
    return {key.to_user_string() for key in job.asset_layer.selected_asset_keys}


def _checks(job_name: str) -> set[tuple[str, str]]:
    job = defs.resolve_job_def(job_name)
    return {(key.asset_key.to_user_string(), key.name) for key in job.asset_layer.asset_graph.asset_check_keys}


def test_definitions_load_and_validate():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == NEWS_SIDE | DAILY_CHAIN
    assert {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys} == GATE_CHECKS | AGE_CHECKS


def test_jobs_select_exactly_their_stage():
    assert _selected("daily_job") == DAILY_CHAIN  # the news side is not retrained every day
    assert _selected("data_job") == NEWS_SIDE     # a new data version refreshes the news side
    assert _checks("daily_job") == GATE_CHECKS    # the gates, not champion_age (its own schedule runs it)
    assert _checks("data_job") == set()
    assert _selected("champion_age_job") == set() and _checks("champion_age_job") == AGE_CHECKS
    assert _selected("reproduce_job") == NEWS_SIDE | DAILY_CHAIN and _checks("reproduce_job") == GATE_CHECKS


def test_reproduce_config_is_valid_and_widens_every_demo_grid():
    """reproduce.yaml is a valid run config of the whole graph, and for every grid it names it runs more than
    the demo's defaults (which the report then calls the demo schedule)."""
    from orchestration.grid_schedules import is_full_grid, reproduce_run_config, schedule_note

    run_config = reproduce_run_config()
    schema = defs.resolve_job_def("reproduce_job").run_config_schema
    assert validate_config(schema.config_type, run_config).success
    grids = {node.name: node.definition for node in defs.resolve_job_def("reproduce_job").graph.nodes}
    for asset, block in run_config["ops"].items():
        config_type = grids[asset].config_schema.config_type   # the asset's Dagster Config class, as a schema
        assert set(block["config"]) <= set(config_type.fields), asset
        demo = _demo_config(asset)
        assert schedule_note(asset, demo).startswith("_Demo schedule") and not is_full_grid(asset, demo), asset
        full = type(demo)(**block["config"])
        assert schedule_note(asset, full).startswith("_Full grid") and is_full_grid(asset, full), asset


def _demo_config(asset: str):
    from assets.cross_encoder import RankingEvaluationConfig
    from assets.ctr import CtrEvaluationConfig
    from assets.ltr import LtrTradeoffConfig
    from assets.punr import PunrAblationConfig
    from assets.quality import JudgeEvaluationConfig, PairLogsConfig
    from assets.query_lists import (
        InterestQueriesConfig,
        InterestRankingConfig,
        QueryListEvaluationConfig,
        QueryListPolicyConfig,
        QueryListStudentConfig,
    )
    from assets.recall_evaluation import RecallEvaluationConfig

    return {"ctr_evaluation": CtrEvaluationConfig, "judge_evaluation": JudgeEvaluationConfig,
            "pair_logs": PairLogsConfig, "ranking_evaluation": RankingEvaluationConfig,
            "recall_evaluation": RecallEvaluationConfig, "ltr_tradeoff": LtrTradeoffConfig,
            "punr_ablation": PunrAblationConfig, "query_list_policy": QueryListPolicyConfig,
            "query_list_student": QueryListStudentConfig, "query_list_evaluation": QueryListEvaluationConfig,
            "interest_queries": InterestQueriesConfig, "interest_ranking": InterestRankingConfig}[asset]()


def test_champion_age_comes_with_a_gated_model_and_needs_no_config():
    graph = defs.resolve_asset_graph()
    # `dagster asset materialize --select ctr_model` runs the model's checks, champion_age included ...
    assert {k.name for k in AssetSelection.from_string("ctr_model").resolve_checks(graph)} == {"beats_champion",
                                                                                              "champion_age"}
    # ... which needs no run config (max_age_days has a default).
    assert validate_config(defs.resolve_job_def("champion_age_job").run_config_schema.config_type, {}).success


def test_schedule_tick_requests_the_day_that_ended():
    schedule = defs.resolve_schedule_def("daily_job_schedule")
    assert schedule.cron_schedule == "0 3 * * *" and schedule.job_name == "daily_job"
    context = build_schedule_context(scheduled_execution_time=datetime(2019, 11, 15, 3, 0, tzinfo=UTC))
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2019-11-14"]


def test_champion_age_schedule_runs_the_checks_after_the_daily_chain():
    schedule = defs.resolve_schedule_def("champion_age_schedule")
    assert schedule.cron_schedule == "0 6 * * *" and schedule.job_name == "champion_age_job"
    assert schedule.execution_timezone == "UTC"


def _write_lock(root, md5: str) -> None:
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "newsforge data prepare", "outs": [
        {"path": "data/prepared", "md5": f"{md5}.dir", "size": 1, "nfiles": 1}]}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def test_sensor_fires_once_per_data_version(tmp_path):
    sensor = defs.resolve_sensor_def("data_version_sensor")
    dvc_data = DvcData(repo_root=str(tmp_path), prepared_dir=str(tmp_path / "data" / "prepared"))

    def tick(cursor):
        context = build_sensor_context(cursor=cursor, resources={"dvc_data": dvc_data}, definitions=defs)
        result = sensor.evaluate_tick(context)
        return result, result.cursor

    result, cursor = tick(None)
    assert not result.run_requests and "dvc.lock" in result.skip_message  # no data yet
    _write_lock(tmp_path, "aaa")
    result, cursor = tick(cursor)
    assert [r.run_key for r in result.run_requests] == ["aaa"] and cursor == "aaa"
    assert result.run_requests[0].job_name in (None, "data_job")
    result, cursor = tick(cursor)
    assert not result.run_requests and "already" in result.skip_message
    _write_lock(tmp_path, "bbb")
    result, cursor = tick(cursor)
    assert [r.run_key for r in result.run_requests] == ["bbb"] and cursor == "bbb"
    assert sensor.job_name == "data_job"


def test_a_share_of_nothing_is_undefined_not_huge():
    """The distillation table's shares (student / teacher): NaN where the teacher has none, not x / 1e-12."""
    import math

    from assets.query_lists import ratio_of

    assert ratio_of(0.05, 0.1) == 0.5 and ratio_of(0.0, 0.1) == 0.0
    assert math.isnan(ratio_of(0.05, 0.0)) and math.isnan(ratio_of(0.0, 0.0))
