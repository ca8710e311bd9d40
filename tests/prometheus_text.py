"""Read the service's ``/metrics`` text (Prometheus' text format 0.0.4) back: its samples, a histogram's
buckets and Prometheus' ``histogram_quantile`` over them. Used by the serving tests and
``benchmarks/bench_serving.py``; the service itself only writes the format (``serving.service.prometheus``)."""
from __future__ import annotations

import math
import re
from collections.abc import Iterable

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample line of an exposition text; raises ``ValueError`` on a
    line that is neither a comment nor a sample."""
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"line {number} is not a Prometheus sample: {line!r}")
        labels = {k: re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], v)
                  for k, v in _LABEL.findall(match[2] or "")}
        samples.append((match[1], labels, float(match[3])))
    return samples


def histogram_buckets(samples: Iterable[tuple[str, dict[str, str], float]], name: str,
                      **labels: str) -> list[tuple[float, float]]:
    """Cumulative ``(le, count)`` of histogram ``name`` restricted to ``labels``, sorted by ``le``."""
    out = [(float(lab["le"]), value) for sample, lab, value in samples
           if sample == f"{name}_bucket" and all(lab.get(k) == v for k, v in labels.items())]
    return sorted(out)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' ``histogram_quantile``: linear interpolation inside the bucket holding rank ``q * total``
    (the last finite bound when it falls in +Inf); NaN without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
