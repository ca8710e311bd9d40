"""IO manager storing asset values under ``$NEWSFORGE_HOME/assets/<asset>/<partition>/``.

Layout: unpartitioned assets use the partition folder ``all``. A DataFrame is ``table.parquet``; a
:class:`BehaviorLog` is ``impressions.parquet`` + ``histories.parquet``; an :class:`EmbeddingTable` is
``vectors.npy`` + ``ids.parquet``; anything else is ``value.pickle``. Beside the value, ``lineage.json``
records the MLflow run and data version that wrote it (see :mod:`orchestration.lineage`). Value and sidecar
are written into a staging folder and swapped in together, so a crash mid-write leaves the previous value
and its lineage intact, and a reader never sees one without the other.

A step over a partition range (a single-run backfill) loads ``{partition: value}`` for a partitioned input
and returns one too; each partition is stored in its own folder with its own sidecar.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, DagsterInvariantViolationError, InputContext, OutputContext

from orchestration.lineage import Lineage, LineageError, announce_input, take_output
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.settings import newsforge_home
from training.staging import staged_dir

UNPARTITIONED = "all"


class NewsforgeIOManager(ConfigurableIOManager):
    base_dir: str = str(newsforge_home() / "assets")

    def value_dir(self, asset: str, partition: str | None) -> Path:
        """Where the value of ``asset`` for ``partition`` (None: unpartitioned) is stored."""
        return Path(self.base_dir, *asset.split("/"), partition or UNPARTITIONED)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        asset = context.asset_key.to_user_string()
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            self._handle_range(context, asset, obj)
            return
        partition = context.asset_partition_key if context.has_asset_partitions else None
        target = self._store(context.run_id, asset, partition, obj)
        context.add_output_metadata({"path": str(target)})

    def _handle_range(self, context: OutputContext, asset: str, obj: Any) -> None:
        """A single-run backfill returns ``{partition: value}`` for every partition of its range."""
        keys = list(context.asset_partition_keys)
        if not isinstance(obj, dict) or sorted(obj) != sorted(keys):
            raise TypeError(f"asset {asset} ran over partitions {keys[0]}...{keys[-1]} and must return a dict "
                            f"with one value per partition; got {type(obj).__name__}"
                            + (f" with keys {sorted(obj)}" if isinstance(obj, dict) else ""))
        for key in keys:
            self._store(context.run_id, asset, key, obj[key])
        context.add_output_metadata({"path": str(self.value_dir(asset, "{" + keys[0] + "..." + keys[-1] + "}"))})

    def _store(self, run_id: str, asset: str, partition: str | None, obj: Any) -> Path:
        lineage = take_output(run_id, asset, partition)
        if lineage is None:
            raise LineageError(f"asset {asset} returned a value for {partition or 'its only partition'} without "
                               f"opening its MLflow run (MlflowTracking.asset_run), so its lineage is unknown")
        target = self.value_dir(asset, partition)
        with staged_dir(target) as staging:
            _write(obj, staging)
            lineage.write(staging)
        return target

    def load_input(self, context: InputContext) -> Any:
        """The stored value; over a partition range (a single-run backfill), ``{partition: value}``. Outside a run
        (``Definitions.load_asset_value`` in a notebook or a script) there is no step to record the lineage for."""
        asset = context.asset_key.to_user_string()
        try:
            step = context.step_context
        except DagsterInvariantViolationError:
            step = None
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            return {key: self._load(step, asset, key) for key in sorted(context.asset_partition_keys)}
        return self._load(step, asset, context.asset_partition_key if context.has_asset_partitions else None)

    def _load(self, step, asset: str, partition: str | None) -> Any:
        source = self.value_dir(asset, partition)
        if not source.exists():
            raise FileNotFoundError(f"no stored value for asset {asset} at {source}: materialise it first")
        for _ in range(5):  # a concurrent run may swap the folder between the two reads: read again
            lineage = Lineage.read(source)
            value = _read(source)
            if Lineage.read(source) == lineage:
                break
        else:
            raise LineageError(f"{source} kept changing while it was read; try again")
        if step is not None:
            announce_input(step.run_id, step.step.key, lineage)
        return value


def by_partition(value: Any, partitions: list[str]) -> dict[str, Any]:
    """An input as ``{partition: value}``: a step over a range already gets that; a one-partition step gets
    the value itself."""
    if len(partitions) > 1:
        return value
    return {partitions[0]: value}


def _write(obj: Any, directory: Path) -> None:
    if isinstance(obj, pd.DataFrame):
        obj.to_parquet(directory / "table.parquet", index=False)
    elif isinstance(obj, BehaviorLog):
        obj.impressions.to_parquet(directory / "impressions.parquet", index=False)
        obj.histories.to_parquet(directory / "histories.parquet", index=False)
    elif isinstance(obj, EmbeddingTable):
        obj.save(directory)
    else:
        with open(directory / "value.pickle", "wb") as fh:
            pickle.dump(obj, fh)


def _read(directory: Path) -> Any:
    if (directory / "table.parquet").exists():
        return pd.read_parquet(directory / "table.parquet")
    if (directory / "histories.parquet").exists():
        return BehaviorLog(pd.read_parquet(directory / "impressions.parquet"),
                           pd.read_parquet(directory / "histories.parquet"))
    if (directory / "vectors.npy").exists():
        return EmbeddingTable.load(directory)
    with open(directory / "value.pickle", "rb") as fh:
        return pickle.load(fh)
