"""The PUNR ablation: one user encoder per (variant, seed), Table 2's grid over its vectors, paired differences
against the reference variant, and the markdown with the published reference labelled."""
import numpy as np
import pandas as pd
import pytest
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr.experiment import split_for_day
from training.ctr.punr_ablation import (
    PUNR_PUBLISHED_AUC_GAIN,
    PUNR_VARIANTS,
    punr_ablation,
    punr_markdown,
    variant_configs,
)
from training.data.prepared import BehaviorLog
from training.metrics.mind import METRIC_KEYS
from training.prec.config import UserPretrainConfig

CTR = dict(embedding_dim=4, mlp_hidden=[16], cross_layers=1, max_epochs=1, batch_size=256, progress_bar=False)
USER = UserPretrainConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_history=16,
                          batch_size=32, num_negatives=16, max_epochs=1, progress_bar=False)
MASKED_AND_GENERATED = {"masking": "span", "weight_generation": 1.0}


def _log_and_vectors():
    """Four days of a synthetic log (the last is the test day), its news table and news vectors."""
    train, valid = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=50, num_news=80, train_days=3,
                                                              impressions_per_day=60, max_candidates=8, seed=5))
    behaviors = BehaviorLog(pd.concat([train.impressions, valid.impressions], ignore_index=True), train.histories)
    return behaviors, split_for_day(behaviors, behaviors.days[-1], 3), train.news, train.news_embeddings


def _run(variants, models, seeds, scratch):
    behaviors, split, news, news_vectors = _log_and_vectors()
    return punr_ablation(behaviors, split, news, news_vectors, CTR, USER, models, seeds, variants,
                         scratch_dir=scratch, threads=1, log=lambda _: None)


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("punr")
    variants = {"user modelling": {}, "+ both": MASKED_AND_GENERATED}
    return _run(variants, ["dcn", "pnn"], [1, 2], scratch), scratch


def test_every_variant_and_model_has_a_row_and_each_other_variant_paired_intervals(ablation):
    result, scratch = ablation
    table, diffs = result.table, result.differences
    assert list(zip(table["model"], table["variant"])) == [
        ("dcn", "user modelling"), ("dcn", "+ both"), ("pnn", "user modelling"), ("pnn", "+ both")]
    assert (table["n_seeds"] == 2).all() and result.reference == "user modelling"
    for key in METRIC_KEYS:
        assert table[f"{key}_mean"].between(0, 1).all() and (table[f"{key}_std"] >= 0).all()
    assert sorted(zip(diffs["model"], diffs["variant"], diffs["metric"])) == sorted(
        (m, "+ both", k) for m in ("dcn", "pnn") for k in METRIC_KEYS)
    assert ((diffs["low"] <= diffs["estimate"]) & (diffs["estimate"] <= diffs["high"])).all()
    assert (diffs["n_impressions"] > 0).all() and (diffs["estimate"] != 0).any()  # the variant's vectors are used
    auc = diffs[diffs["metric"] == "auc"].set_index("model")["estimate"]
    both = table[table["variant"] == "+ both"].set_index("model")
    np.testing.assert_allclose(both["auc_diff"], auc.loc[both.index])
    # one encoder per (variant, seed), trained with the variant's overrides and that seed
    for folder, masking, seed in [("00-user-modelling/seed-1", "token", 1), ("01-both/seed-2", "span", 2)]:
        saved = UserPretrainConfig.load(scratch / folder / "config.json")
        assert (saved.masking, saved.seed) == (masking, seed)


def test_identical_variants_give_zero_differences(tmp_path):
    result = _run({"user modelling": {}, "same again": {"masking": "token"}}, ["dcn"], [3], tmp_path)
    ours = result.table.set_index("variant")
    for key in METRIC_KEYS:
        assert ours.loc["same again", f"{key}_mean"] == ours.loc["user modelling", f"{key}_mean"]
    assert (result.differences[["estimate", "low", "high"]].to_numpy() == 0).all()
    assert set(result.differences["verdict"]) == {"contains 0"}


def test_unknown_or_invalid_variant_settings_fail_before_any_training(tmp_path):
    unknown = r"PUNR variant 'typo': unknown UserPretrainConfig field\(s\) \['span_ratio'\]"
    with pytest.raises(ValueError, match=unknown):
        _run({"user modelling": {}, "typo": {"span_ratio": 0.2}}, ["dcn"], [1], tmp_path)
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="PUNR variant 'bad': masking='spam'"):
        variant_configs(USER, {"user modelling": {}, "bad": {"masking": "spam"}})
    with pytest.raises(ValueError, match="PUNR variant 'seeded' sets seed"):
        variant_configs(USER, {"user modelling": {}, "seeded": {"seed": 7}})
    with pytest.raises(ValueError, match="at least two variants"):
        variant_configs(USER, {"user modelling": {}})


def test_default_variants_are_the_four_published_arms_whatever_the_base_config():
    configs = variant_configs(USER.replace(masking="span", weight_generation=2.0), PUNR_VARIANTS)
    assert list(configs) == list(PUNR_PUBLISHED_AUC_GAIN)
    switches = [(c.masking, c.weight_generation > 0) for c in configs.values()]
    assert switches == [("token", False), ("span", False), ("token", True), ("span", True)]
    assert all(c.hidden_size == USER.hidden_size for c in configs.values())


def test_markdown_shows_the_table_the_differences_and_the_published_row_labelled(ablation):
    text = punr_markdown(ablation[0], {"popularity_baseline": {m: 0.5 for m in METRIC_KEYS}})
    assert "AUC − user modelling [95 % CI]" in text and "| popularity_baseline |" in text
    assert sum(line.startswith("| dcn | + both | ") for line in text.splitlines()) == 2   # Table 2 + differences
    assert "a different baseline" in text and "NRMS-BERT" in text
    assert "| + both | +1.57 | +0.55 |" in text and "| user modelling | +1.02 |  |" in text
