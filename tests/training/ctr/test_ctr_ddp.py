"""A real two-process DDP run (gloo on CPU) reproduces one process with the same global batch.

``ddp_fork`` and ``ddp_spawn`` return their results to the caller the same way (Lightning's multiprocessing
launcher); spawn also pickles the module and data, and pays two fresh interpreters' imports (~5-30 s).
"""
import numpy as np
import pytest
import torch
from builders.ctr import SyntheticCtrConfig, make_synthetic_ctr_data

from training.ctr import CtrConfig, CtrPredictor, ranking_metrics, train_ctr_model
from training.ctr.dataset import CandidateBatchSampler

TRAIN, VALID = make_synthetic_ctr_data(SyntheticCtrConfig(num_users=60, num_news=120, train_days=2,
                                                          impressions_per_day=150, seed=3))
# dropout 0: each rank draws its own dropout masks, so only a dropout-free model can match one process
TINY = dict(model="dcn", prec="news+user", embedding_dim=8, mlp_hidden=(16,), dropout=0.0, max_epochs=3,
            patience=5, learning_rate=1e-2, eval_batch_size=200, progress_bar=False)


@pytest.fixture(autouse=True)
def one_thread_per_process(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # spawned ranks start with one thread (Lightning respects it)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # forked ranks inherit it
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_ctr_model(TRAIN, VALID, CtrConfig(batch_size=128, **TINY), tmp_path_factory.mktemp("one"))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("negative_ratio", [0, 2])
def test_ranks_get_disjoint_shares_of_every_global_batch(negative_ratio):
    label = torch.from_numpy(np.array(TRAIN.impressions["label"], dtype=np.float32))
    imp = torch.from_numpy(np.array(TRAIN.impressions["impression_id"], dtype=np.int64))
    single = CandidateBatchSampler(label, imp, 64, True, negative_ratio, seed=5, rank=0, world_size=1)
    ranks = [CandidateBatchSampler(label, imp, 32, True, negative_ratio, seed=5, rank=r, world_size=2)
             for r in range(2)]
    for _ in range(2):  # two epochs: the permutation changes, the sharding stays consistent
        whole = list(single)
        shares = [list(s) for s in ranks]
        assert len(shares[0]) == len(shares[1]) == len(whole) == len(ranks[0])  # same number of steps
        for batch, first, second in zip(whole, *shares):
            assert torch.equal(torch.cat([first.rows, second.rows]), batch.rows)
            assert first.global_rows == second.global_rows == len(batch.rows)
            assert abs(len(first.rows) - len(second.rows)) <= 1


@pytest.mark.parametrize("strategy", ["ddp_fork", pytest.param("ddp_spawn", marks=pytest.mark.slow)])
def test_two_gloo_processes_match_one_process(strategy, one_process, tmp_path):
    one = one_process
    two = train_ctr_model(TRAIN, VALID, CtrConfig(batch_size=64, strategy=strategy, devices=2, **TINY),
                          tmp_path / "two")
    assert len(two.history) == len(one.history) == 3
    for a, b in zip(one.history, two.history):
        assert a.keys() == b.keys() and a["epoch"] == b["epoch"]
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
    assert one.history[-1]["train_loss"] < one.history[0]["train_loss"]  # it did learn
    assert two.best_epoch == one.best_epoch
    assert two.metrics == pytest.approx(one.metrics, rel=1e-4, abs=1e-5)
    assert set(two.metrics) == {"auc", "mrr", "ndcg5", "ndcg10"}

    # the parent process saved the best epoch's weights: its predictor scores like the one-process one
    # and reproduces the metrics it reported
    imps = VALID.impressions
    scores_one = CtrPredictor.load(one.artefact_dir).score(imps, VALID.histories, VALID.news)
    scores_two = CtrPredictor.load(two.artefact_dir).score(imps, VALID.histories, VALID.news)
    np.testing.assert_allclose(scores_two, scores_one, rtol=1e-3, atol=1e-5)
    again = ranking_metrics(imps["impression_id"].to_numpy(), imps["label"].to_numpy(), scores_two)
    assert again == pytest.approx(two.metrics, abs=1e-6)


@pytest.mark.parametrize("bad, match", [({"strategy": "horovod"}, "strategy"),
                                        ({"devices": 2}, "ddp"), ({"devices": 0}, "devices"),
                                        ({"strategy": "ddp_spawn", "num_nodes": 0}, "num_nodes")])
def test_invalid_distribution_settings_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        CtrConfig.from_dict(bad)
