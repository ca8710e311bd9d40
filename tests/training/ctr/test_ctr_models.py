import numpy as np
import pytest
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data
from torch.nn import functional as F

from training.ctr import MODEL_REGISTRY, CtrConfig, FeatureSpace, build_model

TRAIN, _ = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=40, num_news=80, train_days=1,
                                                       impressions_per_day=60, seed=3))


def _model_and_batch(name: str, prec: str):
    torch.manual_seed(0)
    cfg = CtrConfig(model=name, prec=prec, embedding_dim=8, mlp_hidden=(16,), min_count=1)
    space = FeatureSpace.fit(TRAIN, cfg)
    feats = space.transform(TRAIN)
    news, user = TRAIN.news_embeddings, TRAIN.user_embeddings
    model = build_model(cfg, space.field_sizes(), news.dim if cfg.uses_news_vectors else None,
                        user.dim if cfg.uses_user_vectors else None)
    model.set_frozen_vectors(news, user)
    return model, feats.batch(torch.arange(len(feats)))


@pytest.mark.parametrize("prec", ["none", "news", "news+user"])
@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_forward_backward_finite_with_gradients(name, prec):
    model, batch = _model_and_batch(name, prec)
    logits = model(batch)
    assert logits.shape == (len(batch["label"]),)
    loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
    assert torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["embedding.tables.category.weight"].abs().sum() > 0
    assert grads["embedding.tables.news_id.weight"][0].abs().sum() == 0  # padding row


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_frozen_prec_vectors_get_no_gradient_projections_do(name):
    model, batch = _model_and_batch(name, "news+user")
    F.binary_cross_entropy_with_logits(model(batch), batch["label"]).backward()
    for layer in (model.news_vector, model.user_vector):
        assert layer.vectors.shape[0] > 0 and not layer.vectors.requires_grad and layer.vectors.grad is None
        assert layer.projection.weight.grad is not None and layer.projection.weight.grad.abs().sum() > 0
        assert layer.missing.grad is not None  # some news have no vector in the synthetic table
    param_ids = {id(p) for p in model.parameters()}
    assert id(model.news_vector.vectors) not in param_ids and id(model.user_vector.vectors) not in param_ids
    assert not any(k.endswith(".vectors") for k in model.state_dict())


def test_prec_variants_add_fields():
    counts = {prec: _model_and_batch("dcn", prec)[0].num_fields for prec in ("none", "news", "news+user")}
    assert counts["news"] == counts["none"] + 1 and counts["news+user"] == counts["none"] + 2


def test_prec_without_vector_dim_raises():
    cfg = CtrConfig(prec="news")
    with pytest.raises(ValueError, match="news embeddings"):
        build_model(cfg, FeatureSpace.fit(TRAIN, cfg).field_sizes())


def test_vector_dim_mismatch_raises():
    model, _ = _model_and_batch("dcn", "news")
    with pytest.raises(ValueError, match="shape"):
        model.news_vector.set_vectors(np.zeros((3, 5), dtype=np.float32))
