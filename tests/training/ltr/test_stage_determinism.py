"""A ranking stage is a function of its rows and config, whatever thread count the config asks for: LightGBM
4.7's bagging by query on two threads gave a different booster on every training (issue 22)."""
import numpy as np

from training.ltr.stages import RankerConfig, train_stage


def test_two_threads_with_bagging_by_query_give_one_booster():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    labels, groups = rng.integers(0, 5, 3000), np.repeat(np.arange(300), 10)
    config = RankerConfig(n_estimators=30, threads=2)
    assert config.bagging_fraction < 1.0 and config.bagging_freq > 0
    boosters = [train_stage(X, labels, groups, config=config) for _ in range(3)]
    assert len({b.model_to_string() for b in boosters}) == 1
    assert all(np.array_equal(b.predict(X), boosters[0].predict(X)) for b in boosters)


def test_without_bagging_the_configured_threads_train():
    config = RankerConfig(threads=2, bagging_fraction=1.0)
    assert config.lightgbm_params()["num_threads"] == 2
    assert RankerConfig(threads=2).lightgbm_params()["num_threads"] == 1
