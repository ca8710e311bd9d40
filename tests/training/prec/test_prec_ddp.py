"""The PREC pre-training loop on two gloo processes (``ddp_fork``): each rank takes half of every epoch's
steps, the best checkpoint comes back to the caller and its metrics are validated on the whole split."""
import numpy as np
import pytest
import torch
from test_prec_user import make_histories, news_table, tiny_config

from training.prec.config import UserPretrainConfig
from training.prec.user_pretrainer import train_user_encoder


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # forked ranks inherit it
    yield
    torch.set_num_threads(threads)


def test_user_pretraining_on_two_processes(tmp_path):
    h, news = make_histories(40), news_table()  # 32 train users, 8 validation users
    one = train_user_encoder(h, news, tiny_config(max_epochs=2), tmp_path / "one")
    two = train_user_encoder(h, news, tiny_config(max_epochs=2, strategy="ddp_fork", devices=2), tmp_path / "two")
    assert one.global_step == 2 * 2 and two.global_step == 2 * 1  # 32 users / (16 per step x ranks), 2 epochs
    assert two.best_checkpoint is not None and two.best_checkpoint.exists()
    assert set(two.metrics) == set(one.metrics) and np.isfinite(two.metrics["val/loss"])


def test_invalid_strategy_names_the_field(tmp_path):
    h, news = make_histories(8), news_table()
    with pytest.raises(ValueError, match="devices"):
        train_user_encoder(h, news, tiny_config(devices=2), tmp_path / "bad")
    assert isinstance(tiny_config(), UserPretrainConfig)
