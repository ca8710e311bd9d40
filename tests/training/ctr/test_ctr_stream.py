"""Streaming CTR training (``data_loading="stream"``): parquet record batches give the in-memory fit and rows."""
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr import CtrConfig, train_ctr_model
from training.ctr.features import FeatureSpace
from training.ctr.stream import CtrParquetData, CtrStreamDataset, fit_stream, iter_chunks
from training.data.schema import HISTORIES_FILE, HISTORIES_SCHEMA, IMPRESSIONS_FILE, IMPRESSIONS_SCHEMA

TRAIN, VALID = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=60, num_news=120, train_days=3,
                                                          impressions_per_day=150, seed=7))
TRAIN_DAYS = tuple(sorted(TRAIN.impressions["day"].unique()))
FAST = dict(model="dcn", prec="news+user", embedding_dim=8, mlp_hidden=(32,), batch_size=128, learning_rate=1e-2,
            max_epochs=3, patience=3, progress_bar=False)
READ = dict(stream_read_rows=300, shuffle_buffer_rows=700)  # many chunks and buffer refills on a small set


def _tables() -> dict[str, pa.Table]:
    impressions = pd.concat([TRAIN.impressions, VALID.impressions], ignore_index=True)
    return {IMPRESSIONS_FILE: pa.Table.from_pandas(impressions[IMPRESSIONS_SCHEMA.names], IMPRESSIONS_SCHEMA,
                                                   preserve_index=False),
            HISTORIES_FILE: pa.Table.from_pandas(TRAIN.histories[HISTORIES_SCHEMA.names], HISTORIES_SCHEMA,
                                                 preserve_index=False)}


def write_prepared(root: Path, by_day: bool) -> Path:
    """Both tables as one parquet file, or as a folder with one file per day (small row groups)."""
    root.mkdir(parents=True)
    for name, table in _tables().items():
        if not by_day:
            pq.write_table(table, root / name, row_group_size=500)
            continue
        (root / name).mkdir()
        for day in sorted(set(table.column("day").to_pylist())):
            part = table.filter(pc.equal(table.column("day"), day))
            pq.write_table(part, root / name / f"{day}.parquet", row_group_size=400)
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("prepared")
    return {"file": write_prepared(base / "file", by_day=False), "days": write_prepared(base / "days", by_day=True)}


def parquet_split(root: Path) -> CtrParquetData:
    return CtrParquetData(root, TRAIN_DAYS, TRAIN.news, TRAIN.news_embeddings, TRAIN.user_embeddings)


def test_stream_fit_equals_in_memory_fit(prepared):
    config = CtrConfig(min_count=2, **READ)
    memory = FeatureSpace.fit(TRAIN, config)
    streamed, rows = fit_stream(parquet_split(prepared["days"]), config)
    assert rows == len(TRAIN.impressions)
    assert set(streamed.vocabularies) == set(memory.vocabularies)
    for name, vocab in memory.vocabularies.items():
        assert streamed.vocabularies[name].values == vocab.values, name
    assert len(memory.vocabularies["user_id"]) > 10 and len(memory.vocabularies["news_id"]) > 10
    pd.testing.assert_series_equal(streamed.first_seen, memory.first_seen, check_names=False)
    assert streamed.field_sizes() == memory.field_sizes()


def test_file_and_day_folder_layouts_give_the_same_chunks(prepared):
    def rows(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        chunks = list(iter_chunks(root, TRAIN_DAYS, 300))
        assert len(chunks) > len(TRAIN_DAYS)  # really read in several batches per day
        for imps, hists in chunks:  # whole impressions, histories aligned with them
            assert pd.unique(imps["impression_id"]).tolist() == hists["impression_id"].tolist()
        return (pd.concat([c[0] for c in chunks], ignore_index=True),
                pd.concat([c[1] for c in chunks], ignore_index=True))

    file_imps, file_hists = rows(prepared["file"])
    day_imps, day_hists = rows(prepared["days"])
    pd.testing.assert_frame_equal(file_imps, day_imps)
    pd.testing.assert_frame_equal(file_hists, day_hists)
    expected = TRAIN.impressions[file_imps.columns].reset_index(drop=True)  # only the training days, all rows
    pd.testing.assert_frame_equal(file_imps, expected, check_dtype=False)


def _epoch_rows(dataset: CtrStreamDataset) -> tuple[list[torch.Tensor], list[int]]:
    keys, sizes = [], []
    for batch in dataset:
        # a row is identified by (impression, candidate news); the synthetic data may repeat a candidate,
        # so the multiset of keys is compared
        keys.append(batch["impression_id"] * 100_000 + batch["fields"][:, 1])
        sizes.append(len(batch["label"]))
    return keys, sizes


def _expected_keys(space: FeatureSpace) -> torch.Tensor:
    news = torch.from_numpy(space.vocabularies["news_id"].encode(TRAIN.impressions["news_id"].to_numpy(object)))
    ids = torch.from_numpy(TRAIN.impressions["impression_id"].to_numpy(np.int64))
    return torch.sort(ids * 100_000 + news).values


def test_every_row_once_per_epoch_also_across_two_ranks(prepared):
    data = parquet_split(prepared["days"])
    config = CtrConfig(**READ)
    space, rows = fit_stream(data, config)
    expected = _expected_keys(space)

    def make(batch_size: int, rank: int, world: int) -> CtrStreamDataset:
        return CtrStreamDataset(data, space, rows, batch_size, config.stream_read_rows,
                                config.shuffle_buffer_rows, shuffle=True, seed=3, rank=rank, world_size=world)

    single, ranks = make(128, 0, 1), [make(64, r, 2) for r in range(2)]
    orders = []
    for _ in range(2):  # two epochs: a new shuffle, still every row once
        keys, sizes = _epoch_rows(single)
        assert len(keys) == len(single)
        assert torch.equal(torch.sort(torch.cat(keys)).values, expected)
        assert all(s == 128 for s in sizes[:-1])
        orders.append(torch.cat(keys))
        shares = [_epoch_rows(r) for r in ranks]
        assert len(shares[0][0]) == len(shares[1][0]) == len(keys) == len(ranks[0])  # same steps per rank
        both = torch.cat([torch.cat(s[0]) for s in shares])
        assert torch.equal(torch.sort(both).values, expected)  # disjoint shares that cover every row
        for first, second, whole in zip(shares[0][0], shares[1][0], keys):  # the one-process global batches
            assert torch.equal(torch.cat([first, second]), whole)
    assert not torch.equal(orders[0], orders[1])


def test_row_weight_is_one_over_the_global_batch(prepared):
    data = parquet_split(prepared["file"])
    space, rows = fit_stream(data, CtrConfig(**READ))
    ranks = [list(CtrStreamDataset(data, space, rows, 50, 300, 700, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    for first, second in zip(*ranks):
        weights = torch.cat([first["row_weight"], second["row_weight"]])
        assert float(weights.sum()) == pytest.approx(1.0)  # each global batch's weights sum to one
        assert torch.allclose(weights, weights[0])
    assert float(ranks[0][0]["row_weight"][0]) == pytest.approx(1 / 100)


def test_stream_training_reaches_the_in_memory_auc(prepared, tmp_path):
    memory = train_ctr_model(TRAIN, VALID, CtrConfig(**FAST), tmp_path / "memory")
    stream = train_ctr_model(parquet_split(prepared["days"]), VALID,
                             CtrConfig(data_loading="stream", **FAST, **READ), tmp_path / "stream")
    assert stream.num_train_rows == memory.num_train_rows == len(TRAIN.impressions)
    assert memory.metrics["auc"] > 0.6  # the task is learnable
    assert stream.metrics["auc"] == pytest.approx(memory.metrics["auc"], abs=0.05)
    assert stream.history[-1]["train_loss"] < stream.history[0]["train_loss"]


def test_misuse_and_bad_layout_raise_clearly(prepared, tmp_path):
    with pytest.raises(ValueError, match="data_loading"):
        CtrConfig(data_loading="disk")
    with pytest.raises(ValueError, match="set data_loading='stream'"):
        train_ctr_model(parquet_split(prepared["file"]), VALID, CtrConfig(**FAST), tmp_path / "a")
    with pytest.raises(ValueError, match="negative_ratio"):
        train_ctr_model(parquet_split(prepared["file"]), VALID,
                        CtrConfig(data_loading="stream", negative_ratio=2, **FAST), tmp_path / "b")
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    tables = _tables()
    pq.write_table(tables[IMPRESSIONS_FILE], shuffled / IMPRESSIONS_FILE)
    hist = tables[HISTORIES_FILE]
    pq.write_table(hist.take(np.random.default_rng(0).permutation(hist.num_rows)), shuffled / HISTORIES_FILE)
    with pytest.raises(ValueError, match=r"histories\.parquet \(day .*impression_id \d+ has no histories row"):
        fit_stream(dataclasses.replace(parquet_split(prepared["file"]), prepared_dir=shuffled), CtrConfig())


def test_two_gloo_processes_streaming_match_one_process(prepared, tmp_path, monkeypatch):
    """A real ``ddp_fork`` run: each rank streams its shares of the one-process global batches."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # forked ranks inherit it
    try:
        same = dict(FAST, dropout=0.0, max_epochs=2, data_loading="stream", **READ)  # dropout: per-rank masks
        one = train_ctr_model(parquet_split(prepared["days"]), VALID, CtrConfig(**same), tmp_path / "one")
        same["batch_size"] //= 2
        two = train_ctr_model(parquet_split(prepared["days"]), VALID,
                              CtrConfig(strategy="ddp_fork", devices=2, **same), tmp_path / "two")
    finally:
        torch.set_num_threads(threads)
    assert len(two.history) == len(one.history) == 2
    for a, b in zip(one.history, two.history):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
    assert two.metrics == pytest.approx(one.metrics, rel=1e-4, abs=1e-5)
