"""The days of impressions the pipeline has loaded, read from ``mind_behaviors``' materialisation.

``mind_behaviors`` records the days it loaded in its materialisation metadata (``days``) and the DVC data
version as the materialisation's data version. Reading them from Dagster's event log ties the answer to
the run that loaded the data: a later ``dvc.lock``, a re-prepared folder or another run overwriting the
stored value cannot change what a finished run loaded (the stored value under
``$NEWSFORGE_HOME/assets/mind_behaviors/all`` and the prepare report in the prepared folder both can), and
it costs one event-log query instead of reading parquet.
"""
from dataclasses import dataclass

from dagster import AssetKey, DagsterEventType, DagsterInstance, EventLogEntry

BEHAVIORS = AssetKey("mind_behaviors")
DATA_VERSION_TAG = "dagster/data_version"  # where Dagster records ``Output(data_version=...)``


@dataclass(frozen=True)
class LoadedData:
    """What one materialisation of ``mind_behaviors`` loaded."""

    days: tuple[str, ...]       # sorted UTC days (YYYY-MM-DD)
    data_version: str | None    # the DVC data version (md5 in dvc.lock)
    run_id: str                 # the Dagster run that loaded it

    @property
    def newest_day(self) -> str | None:
        return self.days[-1] if self.days else None


def _loaded(entry: EventLogEntry) -> LoadedData:
    materialization = entry.asset_materialization
    days = materialization.metadata.get("days")
    text = str(days.value) if days is not None else ""
    return LoadedData(tuple(sorted(d.strip() for d in text.split(",") if d.strip())),
                      (materialization.tags or {}).get(DATA_VERSION_TAG), entry.run_id)


def loaded_in_run(instance: DagsterInstance, run_id: str) -> LoadedData | None:
    """What run ``run_id`` loaded into ``mind_behaviors``; None if that run did not materialise it."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        if entry.asset_materialization is not None and entry.asset_materialization.asset_key == BEHAVIORS:
            return _loaded(entry)
    return None


def latest_loaded(instance: DagsterInstance) -> LoadedData | None:
    """What the latest materialisation of ``mind_behaviors`` in this instance loaded; None if there is none."""
    entry = instance.get_latest_materialization_event(BEHAVIORS)
    return _loaded(entry) if entry is not None and entry.asset_materialization is not None else None
