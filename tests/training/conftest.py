"""Fixtures shared by the training tests."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_torch_thread():
    """Tiny models run fastest (and steadiest on a busy 2-core box) on one thread; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
