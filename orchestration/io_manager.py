"""IO manager storing asset values under ``$NEWSFORGE_HOME/assets/<asset>/<partition>/``.

Layout: unpartitioned assets use the partition folder ``all``. A DataFrame is ``table.parquet``; a
:class:`BehaviorLog` is ``impressions.parquet`` + ``histories.parquet``; an :class:`EmbeddingTable` is
``vectors.npy`` + ``ids.parquet``; anything else is ``value.pickle``. Each value is written into a
staging folder and swapped in, so a crash mid-write leaves the previous value intact.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from orchestration.settings import newsforge_home
from training.data.prepared import BehaviorLog
from training.embedding_table import EmbeddingTable
from training.staging import staged_dir

UNPARTITIONED = "all"


class NewsforgeIOManager(ConfigurableIOManager):
    base_dir: str = str(newsforge_home() / "assets")

    def _dir(self, context: InputContext | OutputContext) -> Path:
        partition = context.asset_partition_key if context.has_asset_partitions else UNPARTITIONED
        return Path(self.base_dir, *context.asset_key.path, partition)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        target = self._dir(context)
        with staged_dir(target) as staging:
            _write(obj, staging)
        context.add_output_metadata({"path": str(target)})

    def load_input(self, context: InputContext) -> Any:
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            raise NotImplementedError("load one partition at a time")
        source = self._dir(context)
        if not source.exists():
            raise FileNotFoundError(
                f"no stored value for asset {context.asset_key.to_user_string()} at {source}: materialise it first"
            )
        return _read(source)


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
