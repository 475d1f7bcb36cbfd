"""Two pure-ASGI middlewares: request metrics with the crash catch-all, and the body-size limit.

Pure ASGI (not `BaseHTTPMiddleware`) keeps the per-request overhead to a few microseconds,
which matters for the single-project latency target.
"""

from __future__ import annotations

import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.errors import error_body, internal_error_response, send_json
from serving.observability import Metrics


class ObservabilityMiddleware:
    """Count and time every request by route template; turn any crash into a JSON 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_and_record(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            status = 500
            if response_started:
                raise  # too late for a clean answer; the server closes the connection
            await internal_error_response()(scope, receive, send)
        finally:
            # The template (/v1/predictions/{task}), not the path, keeps label cardinality bounded.
            route = scope.get("route")
            label = getattr(route, "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(route=label, method=method, status=str(status)).inc()
            self.metrics.latency.labels(route=label, method=method).observe(
                time.perf_counter() - started
            )


class BodySizeLimitMiddleware:
    """413 for bodies above `max_bytes`: by Content-Length up front, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body larger than the limit of {self.max_bytes:,} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, error_body("payload_too_large", message))
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises HTTPExceptions from body reading; the handler makes the 413.
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, counted_receive, send)
