"""LambdaRank stages: label and group handling, learning on synthetic groups, save/load, the λ combination."""
import logging

import lightgbm as lgb
import numpy as np
import pytest
from builders.ltr import STAGE1_FEATURES, STAGE2_FEATURES, synthetic_ranking_rows

from training.ltr.stages import (
    LIGHTGBM_MAX_GROUP,
    Ranker,
    RankerConfig,
    check_labels,
    plan_groups,
    train_ranker,
    train_stage,
)
from training.metrics.quality import click_ndcg

FAST = RankerConfig(num_leaves=7, n_estimators=60, min_data_in_leaf=10, threads=1, early_stopping_rounds=10)


@pytest.fixture(scope="module")
def rows():
    return synthetic_ranking_rows(n_groups=400, group_size=20, seed=0)


@pytest.fixture(scope="module")
def ranker(rows):
    train, valid = rows[rows["impression_id"] <= 300], rows[rows["impression_id"] > 300]
    return train_ranker(train, valid, STAGE1_FEATURES, STAGE2_FEATURES, FAST)


@pytest.mark.parametrize("bad, shown", [(5, "5"), (-1, "-1"), (1.5, "1.5"), (np.nan, "nan")])
def test_labels_outside_the_gain_table_are_named(bad, shown):
    labels = np.array([0, 1, 4, bad, 0], dtype=np.float64)
    with pytest.raises(ValueError, match=rf"labels must be integers in \[0, 4\].*row 3 is {shown}"):
        check_labels(labels, 5)
    x = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=rf"train labels .*row 3 is {shown}"):
        train_stage(x, labels, [1, 1, 1, 2, 2], config=FAST)


def test_oversized_groups_are_split_deterministically_and_counted():
    labels = np.zeros(40, dtype=np.int32)
    labels[[0, 12, 30, 37]] = 1
    groups = np.repeat([7, 8], [25, 15])      # 25 rows -> chunks of 9, 8, 8; 15 rows -> 8, 7
    plan = plan_groups(labels, groups, max_group_size=10)
    assert plan.n_split == 2 and plan.n_chunks == 5
    # chunk [17, 25) of group 7 has no click: left out, counted
    assert plan.sizes.tolist() == [9, 8, 8, 7]
    assert plan.rows.tolist() == list(range(17)) + list(range(25, 40))
    assert plan.n_without_positive == 1 and plan.n_rows_without_positive == 8
    again = plan_groups(labels, groups, max_group_size=10)
    assert np.array_equal(again.rows, plan.rows) and np.array_equal(again.sizes, plan.sizes)


def test_a_group_over_lightgbms_limit_trains_once_split(caplog):
    rng = np.random.default_rng(0)
    n = LIGHTGBM_MAX_GROUP + 500
    x = rng.normal(size=(n + 40, 3)).astype(np.float32)
    labels = (x[:, 0] > 1.0).astype(np.int32)
    groups = np.r_[np.zeros(n, dtype=np.int64), np.repeat([1, 2], 20)]
    config = FAST.replace(n_estimators=3, max_group_size=LIGHTGBM_MAX_GROUP)
    with caplog.at_level(logging.WARNING, logger="training.ltr.stages"):
        booster = train_stage(x, labels, groups, config=config)
    assert booster.current_iteration() == 3
    assert "1 group(s) over max_group_size split into 2 chunks" in caplog.text
    with pytest.raises(lgb.basic.LightGBMError, match="exceeds upper limit"):  # why the split is needed
        lgb.train({"objective": "lambdarank", "verbose": -1, "num_threads": 1},
                  lgb.Dataset(x[:n], labels[:n], group=[n]), num_boost_round=1)
    with pytest.raises(ValueError, match=rf"max_group_size must be in \[1, {LIGHTGBM_MAX_GROUP}\]"):
        RankerConfig(max_group_size=LIGHTGBM_MAX_GROUP + 1)


def test_groups_without_clicks_are_left_out_and_counted(rows):
    labels = np.array([0, 0, 1, 0, 0, 0, 1, 1, 0, 0])
    groups = np.array([1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    plan = plan_groups(labels, groups, 1000)
    assert plan.n_groups == 5 and plan.n_without_positive == 3 and plan.n_rows_without_positive == 6
    assert plan.rows.tolist() == [2, 3, 6, 7] and plan.sizes.tolist() == [2, 2]

    train = rows[rows["impression_id"] <= 300]
    expected = int((train.groupby("impression_id")["clicked"].max() == 0).sum())
    assert expected > 0  # the synthetic rows do have click-less impressions
    r = train_ranker(train, None, STAGE1_FEATURES, STAGE2_FEATURES, FAST.replace(n_estimators=5))
    assert r.meta["train_plan"]["groups_without_positive"] == expected
    assert r.meta["train_plan"]["groups_kept"] == 300 - expected
    assert r.meta["best_iteration"] == {"stage1": 5, "stage2": 5}
    assert r.lam == 0.0 and r.meta["train_rows"] == len(train)


def test_non_contiguous_groups_are_regrouped_stably():
    labels = np.array([1, 0, 0, 1, 1])
    plan = plan_groups(labels, np.array(["b", "a", "b", "a", "c"]), 1000)
    assert plan.regrouped
    assert plan.rows.tolist() == [0, 2, 1, 3, 4] and plan.sizes.tolist() == [2, 2, 1]


def test_the_ranker_beats_random_on_held_out_groups(ranker):
    held_out = synthetic_ranking_rows(n_groups=150, group_size=20, seed=9)
    x2 = held_out[STAGE2_FEATURES].to_numpy(np.float32)
    x1 = held_out[STAGE1_FEATURES].to_numpy(np.float32)
    groups, clicks = held_out["impression_id"], held_out["clicked"]
    rng = np.random.default_rng(0)
    random = np.mean([click_ndcg(groups, clicks, rng.random(len(held_out)), 5) for _ in range(20)])
    stage1 = click_ndcg(groups, clicks, ranker.score_stage1(x1), 5)
    stage2 = click_ndcg(groups, clicks, ranker.score_stage2(x2), 5)
    assert stage1 > random + 0.15, (stage1, random)
    assert stage2 > random + 0.25, (stage2, random)
    assert 1 <= ranker.meta["best_iteration"]["stage2"] <= FAST.n_estimators
    assert ranker.stage2.current_iteration() == ranker.meta["best_iteration"]["stage2"]


def test_save_and_load_give_identical_scores(ranker, rows, tmp_path):
    ranker.lam = 0.35
    folder = ranker.save(tmp_path / "ranker")
    assert sorted(p.name for p in folder.iterdir()) == ["ranker.json", "stage1.txt", "stage2.txt"]
    loaded = Ranker.load(folder)
    x2 = rows[STAGE2_FEATURES].to_numpy(np.float32)
    x1 = rows[STAGE1_FEATURES].to_numpy(np.float32)
    np.testing.assert_array_equal(loaded.score_stage1(x1), ranker.score_stage1(x1))
    np.testing.assert_array_equal(loaded.score_stage2(x2), ranker.score_stage2(x2))
    assert (loaded.lam, loaded.mu, loaded.sigma, loaded.config) == (0.35, ranker.mu, ranker.sigma, ranker.config)
    assert loaded.stage2_features == STAGE2_FEATURES and loaded.meta == ranker.meta
    with pytest.raises(ValueError, match=r"stage2 X must have shape \(n, 26\)"):
        loaded.score_stage2(x1)


def test_combine_matches_a_hand_computation(ranker):
    r = Ranker(ranker.stage1, ranker.stage2, STAGE1_FEATURES, STAGE2_FEATURES, lam=0.25,
               mu={"stage2": 1.0, "quality": 2.0}, sigma={"stage2": 2.0, "quality": 0.5})
    stage2, quality = np.array([3.0, 1.0, -1.0]), np.array([2.5, np.nan, 1.0])
    # z(stage2) = [1, 0, -1]; z(quality) = [1, 0 (NaN), -2]
    np.testing.assert_allclose(r.combine(stage2, quality), [0.75 + 0.25, 0.0, -0.75 - 0.5])
    np.testing.assert_allclose(r.combine(stage2, quality, lam=1.0), [1.0, 0.0, -2.0])
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="lambda must be"):
            r.combine(stage2, quality, lam=bad)


def test_config_round_trip_and_errors(rows):
    config = RankerConfig(num_leaves=31, label_gain=(0.0, 1.0))
    assert RankerConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["label_gain"] == [0.0, 1.0]
    with pytest.raises(ValueError, match="unknown RankerConfig keys"):
        RankerConfig.from_dict({"leaves": 3})
    with pytest.raises(ValueError, match=r"train lacks column\(s\) \['student_click'\]"):
        train_ranker(rows.drop(columns="student_click"), None, STAGE1_FEATURES, STAGE2_FEATURES, FAST)
    with pytest.raises(ValueError, match="must include every stage-1 feature"):
        train_ranker(rows, None, STAGE1_FEATURES, STAGE2_FEATURES[1:], FAST)


def test_same_seed_same_model_other_seed_other_model(rows):
    train = rows[rows["impression_id"] <= 200]
    x = rows[STAGE2_FEATURES].to_numpy(np.float32)

    def scores(seed):
        config = FAST.replace(n_estimators=15, seed=seed)
        return train_ranker(train, None, STAGE1_FEATURES, STAGE2_FEATURES, config).score_stage2(x)

    first = scores(1)
    np.testing.assert_array_equal(scores(1), first)
    assert not np.allclose(scores(2), first)
