"""The server-wide limit on scoring: a few requests score at once, a bounded queue waits.

A burst of scoring requests would otherwise run side by side in the thread pool, each holding
its batch, features and SHAP matrices, until the out-of-memory killer takes the replica down.
Here at most `scoring_concurrency` score at once; up to `scoring_queue` more wait their turn for
at most `scoring_queue_seconds`; anything beyond gets a 503 with Retry-After, at once, before
its body is read. Liveness, readiness, metrics and the docs never wait.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import error_body, send_json

# What scores: forecasts, assessments, EVM batches, intake, portfolio and the dashboard views.
SCORING_PREFIXES = ("/v1/predictions/", "/v1/projects/", "/v1/metrics/evm", "/v1/intake/score",
                    "/v1/portfolio/", "/v1/dashboard/")


def is_scoring(scope: Scope) -> bool:
    return (scope["type"] == "http" and scope["method"] != "OPTIONS"  # CORS preflights
            and scope["path"].startswith(SCORING_PREFIXES))


@dataclass
class _Gate:
    """One event loop's slots and queue (a worker process runs one loop)."""

    slots: asyncio.Semaphore
    waiting: int = 0
    running: int = 0


class ScoringLimitMiddleware:
    """Pure ASGI: take a slot before a scoring request reaches the app, give it back after."""

    def __init__(self, app: ASGIApp, concurrency: int, queue: int, wait_seconds: float):
        self.app = app
        self.concurrency, self.queue, self.wait_seconds = concurrency, queue, wait_seconds
        # asyncio primitives belong to one loop; tests may drive the app from several.
        self._gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _gate(self) -> _Gate:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = _Gate(asyncio.Semaphore(self.concurrency))
        return gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_scoring(scope):
            await self.app(scope, receive, send)
            return
        gate = self._gate()
        if not gate.slots.locked():
            await gate.slots.acquire()  # a free slot, taken at once: no timeout task to start
        elif not await self._wait_for_slot(send, gate):
            return
        gate.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gate.running -= 1
            gate.slots.release()

    async def _wait_for_slot(self, send: Send, gate: _Gate) -> bool:
        """Queue for a slot; False (the 503 sent) when the queue is full or the wait too long."""
        if gate.waiting >= self.queue:
            await self._refuse(send, gate, "the queue is full")
            return False
        gate.waiting += 1
        try:
            await asyncio.wait_for(gate.slots.acquire(), self.wait_seconds)
        except TimeoutError:
            await self._refuse(send, gate, f"no turn came within {self.wait_seconds:g} s")
            return False
        finally:
            gate.waiting -= 1
        return True

    async def _refuse(self, send: Send, gate: _Gate, why: str) -> None:
        retry = max(1, math.ceil(self.wait_seconds / 2))
        message = (f"the server is busy scoring ({gate.running} running, {gate.waiting} "
                   f"waiting) and {why}; retry in {retry} s")
        await send_json(send, 503, error_body("overloaded", message),
                        {"Retry-After": str(retry)})
