"""Micro-batching of ``/v1/rank`` on the event loop: the requests whose handlers run in the same loop iteration
share one model forward, with no added wait.

Each handler builds its own inputs (``CtrRequestScorer.request_inputs``: lookups only), queues them and awaits
a future; the first one queued schedules a flush with ``loop.call_soon``, which runs after every handler
already ready in this iteration. The flush scores the queued inputs per scorer (so a reload never mixes
versions; at most ``max_rows`` rows per forward) with one ``CtrRequestScorer.probabilities`` call and hands
each request its slice, the numbers ``CtrRequestScorer.score`` computes. Under load, while one forward runs
the next requests queue up, so the batch grows with the load and the per-request Python overhead of the
forward is shared.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving.ctr_request import RequestInputs
from serving.service.prometheus import ServiceMetrics
from serving.service.schemas import RankRequest

#: Rows per forward: past about 2,000 rows (20 requests of 100 candidates) a forward costs more per row (its
#: activations leave the cache), so a larger queue is scored in several forwards.
DEFAULT_MAX_ROWS = 2048


@dataclass
class _Pending:
    scorer: Any
    inputs: RequestInputs
    rows: int
    future: asyncio.Future[np.ndarray]


class RankBatcher:
    """Scores ``/v1/rank`` requests in shared forwards; use from the event loop thread only."""

    def __init__(self, metrics: ServiceMetrics | None = None, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        self.metrics = metrics or ServiceMetrics()
        self.max_rows = max_rows
        self._pending: list[_Pending] = []
        self._scheduled = False

    async def score(self, scorer: Any, request: RankRequest) -> tuple[np.ndarray, list[str]]:
        """``scorer.score(...)`` of one request (click probabilities in candidate order, unknown ids), computed
        in a forward shared with the other requests queued in this loop iteration."""
        candidates = request.candidates
        inputs = scorer.request_inputs(request.user_id, request.history, candidates, request.time)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(_Pending(scorer, inputs, len(candidates), future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        scores = await future
        return scores, scorer.unknown_news(candidates)

    def _flush(self) -> None:
        pending, self._pending, self._scheduled = self._pending, [], False
        by_scorer: dict[int, list[_Pending]] = {}
        for item in pending:
            by_scorer.setdefault(id(item.scorer), []).append(item)
        for items in by_scorer.values():
            chunk: list[_Pending] = []
            rows = 0
            for item in items:
                if chunk and rows + item.rows > self.max_rows:
                    self._forward(chunk)
                    chunk, rows = [], 0
                chunk.append(item)
                rows += item.rows
            self._forward(chunk)

    def _forward(self, items: list[_Pending]) -> None:
        try:
            probabilities = items[0].scorer.probabilities([item.inputs for item in items])
        except Exception as err:  # noqa: BLE001 - every request of the batch gets the error (a 500)
            for item in items:
                if not item.future.done():
                    item.future.set_exception(err)
            return
        self.metrics.observe_rank_forward(len(items))
        start = 0
        for item in items:
            if not item.future.done():  # a cancelled request (client gone) is skipped
                item.future.set_result(probabilities[start:start + item.rows])
            start += item.rows
