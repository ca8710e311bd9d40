import numpy as np
import pandas as pd
import pytest
import torch

from training.ctr import FIELD_NAMES, OOV, PAD, CtrConfig, CtrData, FeatureSpace, Vocabulary
from training.ctr.dataset import CandidateBatchSampler
from training.embedding_table import EmbeddingTable

T0 = pd.Timestamp("2019-11-11 08:00", tz="UTC")


def _tables():
    impressions = pd.DataFrame({
        "impression_id": [1, 1, 2, 2, 3],
        "user_id": ["U1", "U1", "U2", "U2", "U1"],
        "time": [T0, T0, T0 + pd.Timedelta(hours=3), T0 + pd.Timedelta(hours=3), T0 + pd.Timedelta(hours=30)],
        "day": "2019-11-11", "position": [0, 1, 0, 1, 0],
        "news_id": ["N1", "N2", "N1", "N3", "N2"],
        "label": np.array([1, 0, 0, 1, 1], dtype=np.int8), "in_catalogue": True,
    })
    histories = pd.DataFrame({
        "impression_id": [1, 2, 3], "user_id": ["U1", "U2", "U1"],
        "time": [T0, T0 + pd.Timedelta(hours=3), T0 + pd.Timedelta(hours=30)], "day": "2019-11-11",
        "history": [["N4", "N5", "N6"], [], ["N4", "N5", "N6"]],
    })
    news = pd.DataFrame({"news_id": ["N1", "N2", "N3", "N4", "N5", "N6"],
                         "category": ["sports", "news", "sports", "news", "news", "autos"],
                         "subcategory": ["a", "b", "a", "b", "b", "c"]})
    return CtrData(impressions, histories, news)


def _space(**overrides):
    cfg = CtrConfig(min_count=1, history_length=2, age_bucket_hours=(1, 6, 24), **overrides)
    return FeatureSpace.fit(_tables(), cfg)


def test_training_rows_are_known_and_history_keeps_the_last_l():
    space = _space()
    feats = space.transform(_tables())
    assert len(feats) == 5 and feats.fields.shape == (5, len(FIELD_NAMES))
    assert (feats.fields[:, :4] >= 2).all()  # user, news, category, subcategory all known
    news_vocab = space.vocabularies["news_id"]
    hist = feats.history[feats.history_row]
    assert hist[0].tolist() == news_vocab.encode(np.array(["N5", "N6"])).tolist()  # last 2 of 3
    assert hist[2].tolist() == [PAD, PAD]  # empty history
    hour = feats.fields[:, FIELD_NAMES.index("hour")]
    assert hour[0].item() == 2 + 8 and hour[4].item() == 2 + 14


def test_news_age_uses_first_seen_from_impressions_and_histories():
    feats = _space().transform(_tables())
    age = feats.fields[:, FIELD_NAMES.index("news_age")].tolist()
    # N1 first seen at T0: age 0h -> bucket 0; 3h -> bucket 1 (edges 1, 6, 24); N2 at +30h -> bucket 3.
    assert age == [2, 2, 2 + 1, 2, 2 + 3]


def test_unseen_values_map_to_oov_and_no_row_is_dropped():
    space = _space()
    data = _tables()
    imps = pd.DataFrame({
        "impression_id": [9, 9, 10], "user_id": ["U_cold", "U1", "U2"],
        "time": [T0, T0, pd.NaT], "day": "2019-11-12", "position": [0, 1, 0],
        "news_id": ["N_cold", "N_off_catalogue", "N1"], "label": np.array([0, 1, 0], dtype=np.int8),
        "in_catalogue": [True, False, True],
    })
    news = pd.concat([data.news, pd.DataFrame({"news_id": ["N_cold"], "category": ["weather"],
                                              "subcategory": ["z"]})])
    feats = space.transform(CtrData(imps, data.histories, news))  # impressions 9, 10 have no histories row
    f = {name: feats.fields[:, i].tolist() for i, name in enumerate(FIELD_NAMES)}
    assert len(feats) == 3
    assert f["user_id"][0] == OOV and f["news_id"][:2] == [OOV, OOV]
    assert f["category"][:2] == [OOV, OOV] and f["subcategory"][:2] == [OOV, OOV]
    assert f["hour"][2] == OOV and f["weekday"][2] == OOV and f["news_age"][2] == OOV
    assert (feats.history[feats.history_row] == PAD).all()


def test_embedding_table_rows_and_missing():
    data = _tables()
    table = EmbeddingTable(["N3", "N1"], np.eye(2, dtype=np.float32))
    feats = _space().transform(CtrData(data.impressions, data.histories, data.news, news_embeddings=table))
    assert feats.news_vector_row.tolist() == [1, -1, 1, 0, -1]
    assert feats.user_vector_row.tolist() == [-1] * 5


def test_feature_space_and_vocabulary_round_trip(tmp_path):
    space = _space()
    space.save(tmp_path)
    loaded = FeatureSpace.load(tmp_path)
    assert loaded.field_sizes() == space.field_sizes()
    a, b = space.transform(_tables()), loaded.transform(_tables())
    assert torch.equal(a.fields, b.fields) and torch.equal(a.history, b.history)
    vocab = Vocabulary(["b", "a"])
    vocab.save(tmp_path / "v.parquet")
    assert Vocabulary.load(tmp_path / "v.parquet").encode(np.array(["a", "b", "zz"])).tolist() == [3, 2, OOV]


def test_min_count_sends_rare_ids_to_oov():
    space = FeatureSpace.fit(_tables(), CtrConfig(min_count=2))
    assert space.vocabularies["user_id"].values == ["U1"]  # U1 has 2 impressions, U2 one
    assert set(space.vocabularies["news_id"].values) == {"N1", "N2", "N4", "N5", "N6"}


@pytest.mark.parametrize("ratio", [1, 2])
def test_negative_sampling_keeps_positives_and_k_negatives_per_impression(ratio):
    label = torch.tensor([1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0], dtype=torch.float32)
    imp = torch.tensor([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3])
    sampler = CandidateBatchSampler(label, imp, batch_size=4, shuffle=True, negative_ratio=ratio, seed=0)
    for _ in range(3):
        rows = torch.cat([shard.rows for shard in sampler])
        assert len(rows) == len(set(rows.tolist()))
        kept_labels, kept_imps = label[rows], imp[rows]
        assert kept_labels.sum() == 3 and 3 not in kept_imps.tolist()  # impression 3 has no positive
        assert ((kept_labels == 0) & (kept_imps == 1)).sum() == ratio
        assert ((kept_labels == 0) & (kept_imps == 2)).sum() == min(2 * ratio, 4)
        assert len(sampler) == -(-len(rows) // 4)


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_tables_read_back_with_the_project_schemas(tmp_path, backend):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training.data.schema import HISTORIES_SCHEMA, IMPRESSIONS_SCHEMA, NEWS_SCHEMA

    data = _tables()
    news = data.news.assign(title="", abstract="", url="", title_entities="[]", abstract_entities="[]")
    for frame, schema, name in ((data.impressions, IMPRESSIONS_SCHEMA, "i"), (data.histories, HISTORIES_SCHEMA, "h"),
                                (news, NEWS_SCHEMA, "n")):
        pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp_path / name)
    read = [pd.read_parquet(tmp_path / n, dtype_backend=backend) for n in "ihn"]
    feats = _space().transform(CtrData(*read))
    expected = _space().transform(data)
    assert torch.equal(feats.fields, expected.fields) and torch.equal(feats.history, expected.history)
