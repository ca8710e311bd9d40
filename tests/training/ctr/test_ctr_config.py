import pytest

from training.ctr import MODEL_NAMES, MODEL_REGISTRY, CtrConfig
from training.ctr.dcn import DCN
from training.ctr.deepfm import DeepFM
from training.ctr.pnn import PNN


def test_unknown_key_raises_naming_it():
    with pytest.raises(ValueError, match="learning_rat"):
        CtrConfig.from_dict({"model": "dcn", "learning_rat": 0.1})


def test_from_dict_round_trip_and_tuples(tmp_path):
    cfg = CtrConfig.from_dict({"model": "pnn", "prec": "news+user", "mlp_hidden": [32, 16]})
    assert cfg.mlp_hidden == (32, 16) and cfg.uses_news_vectors and cfg.uses_user_vectors
    cfg.save(tmp_path / "c.json")
    assert CtrConfig.load(tmp_path / "c.json") == cfg
    assert CtrConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("bad", [{"model": "xgboost"}, {"prec": "user"}, {"embedding_dim": 0},
                                 {"age_bucket_hours": [2, 1]}, {"dropout": 1.0}])
def test_invalid_values_raise(bad):
    with pytest.raises(ValueError):
        CtrConfig.from_dict(bad)


def test_registry_maps_each_config_model_name_to_its_model():
    assert MODEL_REGISTRY == {"dcn": DCN, "deepfm": DeepFM, "pnn": PNN}
    assert tuple(MODEL_REGISTRY) == MODEL_NAMES  # the names CtrConfig accepts are those the registry builds
