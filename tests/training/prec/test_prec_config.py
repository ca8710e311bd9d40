"""PREC configs: frozen, strict ``from_dict``, JSON round trip."""
from __future__ import annotations

import dataclasses

import pytest

from training.prec.config import NewsPretrainConfig, UserPretrainConfig


def test_news_config_round_trip_and_tuples(tmp_path):
    config = NewsPretrainConfig.from_dict({"views": ["title", "entities"], "num_layers": 1})
    assert config.views == ("title", "entities")
    config.save(tmp_path / "c.json")
    assert NewsPretrainConfig.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("cls", [NewsPretrainConfig, UserPretrainConfig])
def test_unknown_keys_raise(cls):
    with pytest.raises(ValueError, match="unknown .* keys: \\['bogus'\\]"):
        cls.from_dict({"bogus": 1})


def test_configs_are_frozen_and_validated():
    config = UserPretrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_size = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        NewsPretrainConfig(views=("title", "body"))
    with pytest.raises(ValueError):
        UserPretrainConfig(masking="whole")
    with pytest.raises(ValueError):
        NewsPretrainConfig(mask_replace_prob=0.95, mask_random_prob=0.1)


@pytest.mark.parametrize(("changes", "message"), [
    ({"span_mask_ratio": 0.0}, r"span_mask_ratio=0.0 \(PUNR alpha\) must lie in \(0, 1\]"),
    ({"span_mask_ratio": 1.2}, r"span_mask_ratio=1.2 \(PUNR alpha\)"),
    ({"span_share": -0.1}, r"span_share=-0.1 must lie in \[0, 1\]"),
    ({"span_share": 1.5}, r"span_share=1.5 must lie in \[0, 1\]"),
    ({"span_length": 0}, r"span_length=0 must be a whole number of behaviours >= 1"),
    ({"span_length": 2.5}, r"span_length=2.5 must be a whole number"),
])
def test_punr_masking_settings_are_validated(changes, message):
    with pytest.raises(ValueError, match=message):
        UserPretrainConfig(masking="span", **changes)


def test_punr_masking_defaults_are_the_published_ratios():
    config = UserPretrainConfig()
    assert (config.span_mask_ratio, config.span_share) == (0.3, 0.3)
