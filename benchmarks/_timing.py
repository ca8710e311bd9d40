"""Timing helper shared by the benchmarks."""
import math
import time


def best_of(fn, repeats: int) -> tuple[float, object]:
    """(fastest wall time in seconds, last result) of ``repeats`` calls of ``fn``."""
    best, result = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result
