"""Jobs, the two stages of PREC's asynchronous update.

* ``data_job``: every unpartitioned asset — the DVC-versioned catalogue and behaviour log and the news side
  (``news_encoder``, ``news_embeddings``, ``news_index``, ``golden_set``, ``judge_evaluation``). Launched by
  ``data_version_sensor`` when ``dvc.lock`` records a new data version.
* ``daily_job``: every daily-partitioned asset — the day's slice, the popularity baseline, the user side, the
  CTR model, the quality labels, teachers and ranking student, the query generator and recall candidates,
  the ranker and its trade-off. Launched by ``daily_schedule`` for the day that just ended, and by
  ``daily_chain_sensor`` for the newest day of each new data version once ``data_job`` has loaded it.
  The blocking ``beats_champion`` checks of its four gated models (``ctr_model``, ``ranking_student``,
  ``query_generator``, ``ranker``) hold the assets downstream of a gated model in the run only when its
  candidate is not above the popularity floor (``failed``: the check fails with severity ERROR); a kept
  champion (the check fails with WARN) lets them run on the unchanged champion.
* ``reproduce_job``: every asset of a day with the comparison grids in full (``reproduce.yaml``, the run config
  of ``make reproduce``); the assets' defaults are the demo's short grids (``orchestration/grid_schedules.py``).
* ``champion_age_job``: only the ``champion_age`` checks of the gated models (no asset is materialised).
  Launched daily by ``champion_age_schedule``. (Selecting a gated model on the command line, e.g.
  ``dagster asset materialize --select ctr_model``, runs its ``champion_age`` check too: WARN only, no
  config needed.)
"""
from dagster import AssetSelection, define_asset_job

from assets import ALL_ASSETS
from orchestration.freshness import CHAMPION_AGE_CHECKS
from orchestration.grid_schedules import reproduce_run_config
from orchestration.partitions import daily_partitions

DAILY_ASSETS = AssetSelection.assets(*(key for a in ALL_ASSETS if a.partitions_def is not None for key in a.keys))
DATA_ASSETS = AssetSelection.assets(*(key for a in ALL_ASSETS if a.partitions_def is None for key in a.keys))

# Without champion_age: in a daily run it would run right after each gate (unless a candidate below the floor
# fails the gate with ERROR, which stops the steps downstream of its model, this check included), at the cost
# of one more step process per model; champion_age_schedule runs it on its own instead.
daily_job = define_asset_job(
    "daily_job", selection=DAILY_ASSETS - AssetSelection.checks(*CHAMPION_AGE_CHECKS),
    partitions_def=daily_partitions,
    description="The partitioned chain for one day: slice, baseline, user side, CTR model, quality labels, "
                "teachers and ranking student, query generator and recall, ranker and trade-off, and the "
                "beats_champion gates of ctr_model, ranking_student, query_generator and ranker.",
)

data_job = define_asset_job(
    "data_job", selection=DATA_ASSETS,
    description="Reload the DVC-versioned catalogue and behaviour log and refresh the news side.",
)

reproduce_job = define_asset_job(
    "reproduce_job", selection=AssetSelection.all() - AssetSelection.checks(*CHAMPION_AGE_CHECKS),
    partitions_def=daily_partitions, config=reproduce_run_config(),
    description="Every asset of a day with the comparison grids in full: several seeds, full schedules "
                "(orchestration/reproduce.yaml; `make reproduce`).",
)

champion_age_job = define_asset_job(
    "champion_age_job", selection=AssetSelection.checks(*CHAMPION_AGE_CHECKS),
    description="Warn when a gated model's champion is older than max_age_days behind the newest data day.",
)
