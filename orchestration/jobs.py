"""Jobs, the two stages of PREC's asynchronous update.

* ``data_job``: every unpartitioned asset — the DVC-versioned catalogue and behaviour log and the news side
  (``news_encoder``, ``news_embeddings``). Launched by ``data_version_sensor`` when ``dvc.lock`` records a
  new data version.
* ``daily_job``: every daily-partitioned asset — the day's slice, the baseline, the user side and the CTR
  model with its gate. Launched by ``daily_schedule`` for the day that just ended.
"""
from dagster import AssetSelection, define_asset_job

from assets import ALL_ASSETS
from orchestration.partitions import daily_partitions

DAILY_ASSETS = AssetSelection.assets(*(key for a in ALL_ASSETS if a.partitions_def is not None for key in a.keys))
DATA_ASSETS = AssetSelection.assets(*(key for a in ALL_ASSETS if a.partitions_def is None for key in a.keys))

daily_job = define_asset_job(
    "daily_job", selection=DAILY_ASSETS, partitions_def=daily_partitions,
    description="The partitioned chain for one day: slice, baseline, user side, CTR model and its gate.",
)

data_job = define_asset_job(
    "data_job", selection=DATA_ASSETS,
    description="Reload the DVC-versioned catalogue and behaviour log and refresh the news side.",
)
