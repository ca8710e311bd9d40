"""Torch thread count for the duration of one call."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, the previous count restored after (None or 0: unchanged).
    Set it explicitly on these machines: oversubscribed OpenMP runs several times slower."""
    if not n:
        yield
        return
    if n < 1:
        raise ValueError(f"torch_threads={n} must be >= 1 or None")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
