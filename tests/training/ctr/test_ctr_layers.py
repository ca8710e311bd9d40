import itertools

import torch

from training.ctr.layers import (
    CrossNetwork,
    FeatureEmbedding,
    FMSecondOrder,
    FrozenVectorProjection,
    InnerProduct,
    MaskedMeanPooling,
)


def test_masked_mean_pooling_ignores_padding_and_empty_is_zero():
    emb = torch.nn.Embedding(5, 3, padding_idx=0)
    pool = MaskedMeanPooling(emb)
    ids = torch.tensor([[0, 2, 3], [0, 0, 0], [4, 0, 0]])
    out = pool(ids)
    assert torch.allclose(out[0], (emb.weight[2] + emb.weight[3]) / 2)
    assert torch.equal(out[1], torch.zeros(3))
    assert torch.allclose(out[2], emb.weight[4])


def test_fm_second_order_equals_pairwise_sum():
    emb = torch.randn(4, 5, 3)
    brute = sum((emb[:, i] * emb[:, j]).sum(-1) for i, j in itertools.combinations(range(5), 2))
    assert torch.allclose(FMSecondOrder()(emb).squeeze(-1), brute, atol=1e-5)


def test_inner_product_lists_every_field_pair():
    emb = torch.randn(2, 4, 3)
    layer = InnerProduct(4)
    expected = torch.stack([(emb[:, i] * emb[:, j]).sum(-1) for i, j in itertools.combinations(range(4), 2)], 1)
    assert layer.output_dim == 6 and torch.allclose(layer(emb), expected, atol=1e-6)


def test_cross_network_matches_dcn_v1_formula():
    net = CrossNetwork(4, 1)
    x0 = torch.randn(3, 4)
    w, b = net.weights[0], net.biases[0]
    expected = x0 * (x0 @ w).unsqueeze(-1) + b + x0
    assert torch.allclose(net(x0), expected)


def test_feature_embedding_padding_row_is_zero():
    layer = FeatureEmbedding({"a": 4, "b": 6}, 8)
    out = layer(torch.tensor([[0, 5], [1, 0]]))
    assert out.shape == (2, 2, 8)
    assert torch.equal(out[0, 0], torch.zeros(8)) and torch.equal(out[1, 1], torch.zeros(8))


def test_frozen_vector_projection_missing_rows_use_learned_embedding():
    torch.manual_seed(0)
    layer = FrozenVectorProjection(3, 2)
    layer.set_vectors(torch.randn(4, 3))
    out = layer(torch.tensor([2, -1]))
    # a batched and a single-row matmul may round differently in float32: compare with an absolute tolerance
    assert torch.allclose(out[0], layer.project(layer.vectors[2:3])[0], rtol=0, atol=1e-6)
    assert torch.equal(out[1], layer.missing.detach())
    assert "vectors" not in layer.state_dict()


def test_frozen_vector_projection_is_layer_normalised_whatever_the_vector_scale():
    torch.manual_seed(0)
    layer = FrozenVectorProjection(8, 4)
    layer.set_vectors(torch.randn(5, 8) * 50.0)
    out = layer(torch.arange(5)).detach()
    assert torch.allclose(out.mean(dim=1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out.std(dim=1, unbiased=False), torch.ones(5), atol=1e-3)
    raw = FrozenVectorProjection(8, 4, normalise=False)   # models saved before the norm
    raw.set_vectors(layer.vectors)
    assert "norm.weight" not in raw.state_dict()
    assert torch.allclose(raw(torch.tensor([1])), raw.projection(layer.vectors[1:2]))
