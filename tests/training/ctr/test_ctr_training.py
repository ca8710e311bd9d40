import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr import CtrConfig, CtrData, CtrPredictor, ranking_metrics, train_ctr_model
from training.ctr.train import build_features
from training.embedding_table import EmbeddingTable

TRAIN, VALID = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=100, num_news=200, impressions_per_day=800))
SMALL_TRAIN, SMALL_VALID = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=40, num_news=80, train_days=2,
                                                                       impressions_per_day=100, seed=1))
FAST = dict(batch_size=512, mlp_hidden=(64, 32), progress_bar=False, learning_rate=1e-2)


def test_learns_user_category_affinity_and_saves_artefact(tmp_path):
    result = train_ctr_model(TRAIN, VALID, CtrConfig(model="dcn", max_epochs=4, **FAST), tmp_path / "m")
    assert result.metrics["auc"] > 0.65, result.history
    assert result.history[0]["val_auc"] < result.metrics["auc"]
    assert set(result.metrics) == {"auc", "mrr", "ndcg5", "ndcg10"}
    assert [h["epoch"] for h in result.history] == list(range(len(result.history)))
    assert result.num_valid_rows == len(VALID.impressions)
    files = {p.relative_to(result.artefact_dir).as_posix() for p in result.artefact_dir.rglob("*")}
    assert {"config.json", "model.pt", "features.json", "first_seen.parquet", "vocab/user_id.parquet",
            "vocab/news_id.parquet", "vocab/category.parquet", "vocab/subcategory.parquet",
            "metrics.json"} <= files
    assert json.loads((result.artefact_dir / "metrics.json").read_text())["metrics"] == result.metrics

    # the saved artefact reproduces the validation metrics of the best epoch
    scores = CtrPredictor.load(result.artefact_dir).score(VALID.impressions, VALID.histories, VALID.news)
    imps = VALID.impressions
    again = ranking_metrics(imps["impression_id"].to_numpy(), imps["label"].to_numpy(), scores)
    assert again == pytest.approx(result.metrics, abs=1e-6)


@pytest.fixture(scope="module")
def news_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("np")
    train_ctr_model(SMALL_TRAIN, SMALL_VALID, CtrConfig(model="deepfm", prec="news", max_epochs=1, **FAST), out)
    return out


def test_predictor_round_trip_gives_identical_scores(news_model, tmp_path):
    first = CtrPredictor.load(news_model)
    scores = first.score(SMALL_VALID.impressions, SMALL_VALID.histories, SMALL_VALID.news)
    first.save(tmp_path / "copy")
    second = CtrPredictor.load(tmp_path / "copy")
    again = second.score(SMALL_VALID.impressions, SMALL_VALID.histories, SMALL_VALID.news)
    assert scores.dtype == np.float32 and scores.shape == (len(SMALL_VALID.impressions),)
    np.testing.assert_array_equal(scores, again)
    small_batches = second.score(SMALL_VALID.impressions, SMALL_VALID.histories, SMALL_VALID.news, batch_size=7)
    np.testing.assert_allclose(small_batches, scores, rtol=1e-5, atol=1e-7)  # kernels differ by batch size


def test_news_variant_uses_news_vectors(news_model):
    predictor = CtrPredictor.load(news_model)
    imps = SMALL_VALID.impressions
    table = predictor.news_embeddings
    target = imps["news_id"].iloc[0]
    assert target in table.ids
    base = predictor.score(imps, SMALL_VALID.histories, SMALL_VALID.news)
    vectors = table.vectors.copy()
    vectors[table.ids.index(target)] += 5.0
    changed = predictor.score(imps, SMALL_VALID.histories, SMALL_VALID.news,
                              news_embeddings=EmbeddingTable(table.ids, vectors))
    hit = (imps["news_id"] == target).to_numpy()
    assert np.abs(changed[hit] - base[hit]).min() > 1e-6
    np.testing.assert_allclose(changed[~hit], base[~hit], rtol=1e-6)
    # without a vector the candidate falls back to the learned "missing" embedding
    dropped = EmbeddingTable([i for i in table.ids if i != target], table.vectors[[i != target for i in table.ids]])
    missing = predictor.score(imps, SMALL_VALID.histories, SMALL_VALID.news, news_embeddings=dropped)
    assert np.isfinite(missing).all() and np.abs(missing[hit] - base[hit]).min() > 1e-6
    # the stored table is used again when none is passed
    np.testing.assert_array_equal(predictor.score(imps, SMALL_VALID.histories, SMALL_VALID.news), base)


def test_scoring_unseen_users_news_and_categories(news_model):
    predictor = CtrPredictor.load(news_model)
    imps = SMALL_VALID.impressions.head(6).copy()
    imps["user_id"] = ["U_new"] * 3 + list(imps["user_id"].iloc[3:])
    imps.loc[imps.index[:2], "news_id"] = ["N_brand_new", "N_no_catalogue"]
    news = pd.concat([SMALL_VALID.news, pd.DataFrame({"news_id": ["N_brand_new"], "category": ["space"],
                                                      "subcategory": ["mars"]})], ignore_index=True)
    feats = predictor.featurize(imps.drop(columns="label"), SMALL_VALID.histories.iloc[:0], news)
    assert (feats.fields[:3, 0] == 1).all() and (feats.fields[:2, 1:4] == 1).all()
    scores = predictor.score(imps.drop(columns="label"), None, news)
    assert scores.shape == (6,) and np.isfinite(scores).all()


@pytest.mark.parametrize("name", ["pnn", "dcn"])
def test_full_prec_with_negative_sampling_and_validation_user_table(name, tmp_path):
    users = SMALL_VALID.user_embeddings
    valid_users = EmbeddingTable(users.ids[::2], users.vectors[::2].copy())  # the "as of" table differs
    valid = dataclasses.replace(SMALL_VALID, user_embeddings=valid_users)
    cfg = CtrConfig(model=name, prec="news+user", negative_ratio=2, max_epochs=2, **FAST)
    result = train_ctr_model(SMALL_TRAIN, valid, cfg, tmp_path)
    assert len(result.history) == 2 and np.isfinite(result.metrics["auc"])
    assert (tmp_path / "news_vectors" / "vectors.npy").exists() and (tmp_path / "user_vectors" / "ids.parquet").exists()
    predictor = CtrPredictor.load(tmp_path)
    scores = predictor.score(valid.impressions, valid.histories, valid.news, user_embeddings=valid_users)
    imps = valid.impressions
    assert ranking_metrics(imps["impression_id"].to_numpy(), imps["label"].to_numpy(), scores) == \
        pytest.approx(result.metrics, abs=1e-6)


def test_prec_variant_without_tables_raises(tmp_path):
    no_vectors = CtrData(SMALL_TRAIN.impressions, SMALL_TRAIN.histories, SMALL_TRAIN.news)
    with pytest.raises(ValueError, match="news_embeddings"):
        train_ctr_model(no_vectors, None, CtrConfig(prec="news", **FAST), tmp_path)


def test_fixed_seed_reproduces_the_run(tmp_path):
    cfg = CtrConfig(model="deepfm", max_epochs=1, **FAST)
    a = train_ctr_model(SMALL_TRAIN, SMALL_VALID, cfg, tmp_path / "a")
    b = train_ctr_model(SMALL_TRAIN, SMALL_VALID, cfg, tmp_path / "b")
    assert a.metrics == b.metrics and a.history[0]["train_loss"] == b.history[0]["train_loss"]


def test_training_without_validation_keeps_last_epoch(tmp_path):
    result = train_ctr_model(SMALL_TRAIN, None, CtrConfig(model="pnn", max_epochs=2, **FAST), tmp_path)
    assert result.metrics == {} and result.best_epoch == 1 and len(result.history) == 2
    assert (tmp_path / "model.pt").exists()


@pytest.mark.parametrize("prec", ["none", "news+user"])
def test_shared_features_give_the_same_run(prec, tmp_path):
    """A grid builds the feature tensors once (with both tables): every variant trains exactly as alone."""
    cfg = CtrConfig(model="dcn", prec=prec, max_epochs=2, **FAST)
    alone = train_ctr_model(SMALL_TRAIN, SMALL_VALID, cfg, tmp_path / "alone")
    shared = build_features(SMALL_TRAIN, SMALL_VALID, CtrConfig(**FAST))
    reused = train_ctr_model(SMALL_TRAIN, SMALL_VALID, cfg, tmp_path / "shared", features=shared)
    assert reused.metrics == alone.metrics and reused.history == alone.history
    with pytest.raises(ValueError, match="history_length"):
        train_ctr_model(SMALL_TRAIN, SMALL_VALID, dataclasses.replace(cfg, history_length=5), tmp_path / "x",
                        features=shared)


def test_a_model_saved_before_the_vector_norm_still_loads(news_model, tmp_path):
    import shutil

    import torch

    from training.ctr.config import CtrConfig
    from training.ctr.predict import CONFIG_FILE, WEIGHTS_FILE

    old = tmp_path / "old"
    shutil.copytree(news_model, old)
    saved = json.loads((old / CONFIG_FILE).read_text())
    assert saved["vector_norm"] is True
    del saved["vector_norm"]                                      # the config as saved before the field
    (old / CONFIG_FILE).write_text(json.dumps(saved))
    weights = torch.load(old / WEIGHTS_FILE, weights_only=True)
    torch.save({k: v for k, v in weights.items() if ".norm." not in k}, old / WEIGHTS_FILE)
    predictor = CtrPredictor.load(old)
    assert predictor.config.vector_norm is False
    assert CtrConfig.from_dict({"prec": "news"}).vector_norm is True
    scores = predictor.score(VALID.impressions, VALID.histories, VALID.news)
    assert np.isfinite(scores).all()
