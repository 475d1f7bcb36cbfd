"""Large batches share the cores with single-project requests: one lane, chunks, a bounded share.

A request of `LANE_ROWS` projects or more is scored in chunks of `CHUNK_ROWS` through one lane
(a lock): batches take turns chunk by chunk, so however many arrive at once, batch work holds at
most one chunk's LightGBM threads. Each chunk gets `threads` of them (OPM_ML_BATCH_THREADS; 0 =
every core), one fewer while a smaller request is being scored, so an interactive answer always
has a core, and the prediction log starts no write while a large batch is scored (`held`).
Smaller requests skip the lane and predict on one thread (`prediction_threads`); a request
for one project (a JSON object, not a list) is answered on the event loop itself (`scored`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from opm_ml.forecasting.estimators import batch_threads
from opm_ml.forecasting.inputs import ProjectInputs

# From this size on LightGBM predicts on several threads (estimators._SINGLE_THREAD_ROWS).
LANE_ROWS = 500
# Big enough that LightGBM's per-call cost vanishes, small enough that a waiting single request
# gets its core back within a fraction of a second and a stream's first lines come early.
CHUNK_ROWS = 2_000
Result = TypeVar("Result")


class BatchLane:
    """The process's one batch lane and its count of interactive requests in flight."""

    def __init__(self, threads: int = 0,
                 quiet: Callable[[], AbstractContextManager] = nullcontext):
        self.cores = threads or os.cpu_count() or 1
        self._quiet = quiet  # held around a large batch: background writes wait (the log's `held`)
        self._lane = threading.Lock()
        self._count = threading.Lock()
        self.interactive = 0

    def threads(self) -> int:
        """LightGBM threads for the next chunk: the share, one fewer while others wait."""
        return self.cores if not self.interactive else max(1, self.cores - 1)

    @contextmanager
    def small(self) -> Iterator[None]:
        """Mark a small request in flight, so the batches leave it a core."""
        with self._count:
            self.interactive += 1
        try:
            yield
        finally:
            with self._count:
                self.interactive -= 1

    def run(self, inputs: ProjectInputs,
            score: Callable[[ProjectInputs], Result]) -> Iterator[Result]:
        """`score` of `inputs`, chunk by chunk through the lane for a large batch."""
        if inputs.n < LANE_ROWS:
            with self.small():
                yield score(inputs)
            return
        with self._quiet():  # the whole batch: between chunks its answer is still being built
            for start in range(0, inputs.n, CHUNK_ROWS):
                chunk = inputs.take(slice(start, start + CHUNK_ROWS))
                with self._lane, batch_threads(self.threads()):
                    result = score(chunk)
                yield result


async def scored(handler: Callable[..., Result], body: Any, *args: Any) -> Result:
    """`handler(body, *args)` for a request whose parsed JSON is `body`: one project's answer
    on the event loop, a list's in the thread pool.

    The hop into the pool and back cost single-project requests ~8 % of their requests/s at
    concurrency 1 and ~20 % at 16 (docs/benchmarks.md); one project holds the loop a few
    milliseconds, about what a pool thread holding the GIL would.
    A list may hold thousands of projects, so it leaves the loop free for the rest.
    """
    if isinstance(body, list):
        return await run_in_threadpool(handler, body, *args)
    return handler(body, *args)
