import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr import CtrConfig, CtrData, CtrPredictor, FeatureSpace, build_model, train_ctr_model
from training.ctr.features import FIELD_NAMES, VOCAB_FIELDS
from training.ctr.vocabulary import FIRST_KNOWN, OOV, PAD
from training.ctr.warm_start import warm_start
from training.embedding_table import EmbeddingTable

# Rolling windows as on consecutive days: the previous model saw days 0-1, the next one sees days 1-2.
# No histories, so the news vocabulary comes from candidates only and turns over between the windows.
_TRAIN, _ = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=80, num_news=500, train_days=3,
                                                       impressions_per_day=120, seed=3))
DAYS = sorted(_TRAIN.impressions["day"].unique())
CONFIG = CtrConfig(model="dcn", prec="news", embedding_dim=8, mlp_hidden=(32, 16), cross_layers=2, batch_size=256,
                   learning_rate=1e-2, max_epochs=1, progress_bar=False)


def window(days) -> CtrData:
    imps = _TRAIN.impressions
    rows = imps[imps["day"].isin(days)].reset_index(drop=True)
    return CtrData(rows, None, _TRAIN.news, _TRAIN.news_embeddings, _TRAIN.user_embeddings)


PREVIOUS, NEXT = window(DAYS[:2]), window(DAYS[1:])


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    out = tmp_path_factory.mktemp("previous")
    train_ctr_model(PREVIOUS, window(DAYS[2:]), CONFIG, out)
    return CtrPredictor.load(out), out


def fresh_model(config=CONFIG, space=None, news_dim=None):
    torch.manual_seed(7)
    space = space or FeatureSpace.fit(NEXT, config)
    model = build_model(config, space.field_sizes(), news_dim or NEXT.news_embeddings.dim)
    return model, space


def test_shared_ids_get_old_rows_new_ids_keep_fresh_init(previous):
    old, old_dir = previous
    model, space = fresh_model()
    marker = EmbeddingTable(["x"], np.full((1, NEXT.news_embeddings.dim), 3.0, dtype=np.float32))
    model.set_frozen_vectors(marker)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = warm_start(model, space, old_dir)

    state, old_state = model.state_dict(), old.model.state_dict()
    for field in VOCAB_FIELDS:
        new_ids, old_ids = space.vocabularies[field].values, old.features.vocabularies[field].values
        shared = sorted(set(new_ids) & set(old_ids))
        table, old_table = state[f"embedding.tables.{field}.weight"], old_state[f"embedding.tables.{field}.weight"]
        for i, value in enumerate(new_ids):
            expected = old_table[FIRST_KNOWN + old_ids.index(value)] if value in shared \
                else fresh[f"embedding.tables.{field}.weight"][FIRST_KNOWN + i]
            assert torch.equal(table[FIRST_KNOWN + i], expected), (field, value)
        assert torch.equal(table[OOV], old_table[OOV]) and not table[PAD].any()
        assert report.embedding_rows[field] == (len(shared) + 1, len(new_ids) + 1)
    overlap = set(space.vocabularies["user_id"].values) ^ set(old.features.vocabularies["user_id"].values)
    news_new = set(space.vocabularies["news_id"].values) - set(old.features.vocabularies["news_id"].values)
    assert overlap and news_new, "the windows should not share every id"
    # every other parameter (fixed-range fields, projections, cross and deep layers) is the old one
    for name, value in state.items():
        if not any(f"tables.{field}." in name or "pooling.embedding" in name for field in VOCAB_FIELDS):
            assert torch.equal(value, old_state[name]), name
    assert torch.equal(state["history_pooling.embedding.weight"], state["embedding.tables.news_id.weight"])
    # the frozen news vectors stay those of the current run
    assert torch.equal(model.news_vector.vectors, torch.full((1, marker.dim), 3.0))
    assert report.skipped == {}
    assert len(report.copied) == len(list(model.parameters()))
    assert report.rows_total == sum(space.field_sizes()[f] - 1 for f in FIELD_NAMES)
    assert json.loads(json.dumps(report.to_dict()))["parameters_copied"] == len(report.copied)


def test_projection_and_age_table_skipped_when_their_inputs_differ(previous):
    _, old_dir = previous
    config = dataclasses.replace(CONFIG, age_bucket_hours=(1, 2, 6, 12, 24, 48, 96, 120, 160, 200, 300))
    model, space = fresh_model(config, news_dim=NEXT.news_embeddings.dim + 4)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = warm_start(model, space, old_dir)
    assert set(report.skipped) == {"embedding.tables.news_age.weight", "news_vector.projection.weight",
                                   "news_vector.projection.bias", "news_vector.norm.weight",
                                   "news_vector.norm.bias", "news_vector.missing"}
    assert "age buckets differ" in report.skipped["embedding.tables.news_age.weight"]
    assert "news_vector dim 16 (previous) vs 20" == report.skipped["news_vector.projection.weight"]
    for name in report.skipped:
        assert torch.equal(model.state_dict()[name], fresh[name])
    assert report.embedding_rows["news_age"] == (0, space.field_sizes()["news_age"] - 1)


@pytest.mark.parametrize("change, named", [
    ({"model": "deepfm"}, "model: 'dcn' (previous) vs 'deepfm'"),
    ({"embedding_dim": 4}, "embedding_dim: 8 (previous) vs 4"),
    ({"prec": "none"}, "prec: 'news' (previous) vs 'none'"),
    ({"mlp_hidden": (32,)}, "mlp_hidden: (32, 16) (previous) vs (32,)"),
    ({"cross_layers": 3}, "cross_layers: 2 (previous) vs 3"),
])
def test_incompatible_architecture_is_refused(previous, change, named):
    config = dataclasses.replace(CONFIG, **change)
    model, space = fresh_model(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="cannot warm-start") as error:
        warm_start(model, space, previous[1])
    assert named in str(error.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_missing_artefact_is_refused(tmp_path):
    model, space = fresh_model()
    with pytest.raises(FileNotFoundError, match="not a CTR predictor artefact"):
        warm_start(model, space, tmp_path)


def _decoded(predictor: CtrPredictor, data: CtrData) -> pd.DataFrame:
    """Feature values per row with vocabulary indices turned back into ids (OOV stays OOV)."""
    fields = predictor.featurize(data.impressions, None, data.news).fields.numpy()
    out = pd.DataFrame(fields, columns=list(FIELD_NAMES)).astype(object)
    for field in VOCAB_FIELDS:
        names = np.array(["<pad>", "<oov>", *predictor.features.vocabularies[field].values], dtype=object)
        out[field] = names[fields[:, FIELD_NAMES.index(field)]]
    return out


def test_warm_started_model_scores_like_the_previous_one_where_the_features_agree(previous):
    old, _ = previous
    model, space = fresh_model()
    warm_start(model, space, previous[1])
    space.first_seen = old.features.first_seen  # the same news ages, so rows differ only by their ids
    warm = CtrPredictor(model, space, CONFIG, NEXT.news_embeddings)
    scored = window(DAYS[1:])
    same = (_decoded(old, scored) == _decoded(warm, scored)).all(axis=1).to_numpy()
    assert 0.5 < same.mean() < 1.0, same.mean()
    old_scores = old.score(scored.impressions, None, scored.news)
    warm_scores = warm.score(scored.impressions, None, scored.news)
    np.testing.assert_allclose(warm_scores[same], old_scores[same], rtol=1e-5, atol=1e-7)
    assert np.abs(warm_scores[~same] - old_scores[~same]).max() > 1e-4


def _log_loss(artefact, data: CtrData) -> float:
    p = np.clip(CtrPredictor.load(artefact).score(data.impressions, data.histories, data.news), 1e-7, 1 - 1e-7)
    y = data.impressions["label"].to_numpy()
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def test_training_from_the_previous_model_starts_ahead_of_a_cold_start(tmp_path):
    train, valid = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=100, num_news=200, train_days=3,
                                                             impressions_per_day=800))
    days = sorted(train.impressions["day"].unique())

    def split(chosen) -> CtrData:
        rows = train.impressions[train.impressions["day"].isin(chosen)].reset_index(drop=True)
        return CtrData(rows, train.histories, train.news, train.news_embeddings, train.user_embeddings)

    config = CtrConfig(model="dcn", prec="news", mlp_hidden=(64, 32), batch_size=512, learning_rate=1e-2,
                       max_epochs=4, progress_bar=False)
    train_ctr_model(split(days[:2]), split(days[2:]), config, tmp_path / "previous")
    one_epoch = dataclasses.replace(config, max_epochs=1)
    warm = train_ctr_model(split(days[1:]), valid, one_epoch, tmp_path / "warm", init_from=tmp_path / "previous")
    cold = train_ctr_model(split(days[1:]), valid, one_epoch, tmp_path / "cold")
    # same seed, same data, one epoch: only the starting point differs
    assert _log_loss(tmp_path / "warm", valid) < _log_loss(tmp_path / "cold", valid) - 0.02
    assert warm.history[0]["val_auc"] > cold.history[0]["val_auc"] + 0.05
    assert cold.warm_start is None and warm.warm_start.previous_dir == str(tmp_path / "previous")
    assert warm.warm_start.rows_copied > 0
    assert json.loads((tmp_path / "warm" / "metrics.json").read_text())["warm_start"] == warm.warm_start.to_dict()
    assert json.loads((tmp_path / "cold" / "metrics.json").read_text())["warm_start"] is None
