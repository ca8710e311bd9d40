"""Jobs: the daily chain for one partition, and the news-side refresh when the data version changes."""
from dagster import AssetSelection, define_asset_job

from orchestration.partitions import daily_partitions

#: Everything for one day: data slices, baselines and (as later issues land) models and evaluation.
daily_job = define_asset_job(
    "daily_job", selection=AssetSelection.all(), partitions_def=daily_partitions,
    description="Materialise the whole chain for one daily partition.",
)

#: Unpartitioned data assets; run by the data-version sensor when `dvc repro`/`dvc pull` changes the data.
data_job = define_asset_job(
    "data_job", selection=AssetSelection.groups("data") - AssetSelection.assets("impressions"),
    description="Reload the DVC-versioned catalogue and behaviour log.",
)
