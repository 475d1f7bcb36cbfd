"""Exception handlers: every error is JSON `{error, message, problems}`, never a stack trace.

422s name the field path (`body[3].status.ev`) and the problem; unknown categories are counted
in /metrics on the way out. Anything unexpected is logged with its traceback server-side and
answered with a reference id only (see `internal_error_response`).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from opm_ml.model_set import ContractOnly, ModelUnavailable
from opm_ml.text import mask_credentials
from serving.schemas.evm import BATCH, SINGLE

log = logging.getLogger("opm_ml.serving")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    503: "service_unavailable",
}


def error_body(error: str, message: str, problems: Sequence[dict[str, Any]] = ()) -> dict:
    return {"error": error, "message": message, "problems": list(problems)}


def field_path(loc: Sequence[str | int]) -> str:
    """`("body", "batch", 3, "status", "ev")` -> `body[3].status.ev` (union tags dropped)."""
    parts = [p for i, p in enumerate(loc) if not (i == 1 and p in (SINGLE, BATCH))]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_problems(errors: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as `{field, problem, type}`; the offending value is quoted when short."""
    problems = []
    for err in errors:
        if err["type"] == "json_invalid":  # loc holds the character offset, not a field
            where, why = err["loc"][-1], err.get("ctx", {}).get("error", "")
            problems.append({"field": "body", "type": "json_invalid",
                             "problem": f"invalid JSON at character {where}: {why}"})
            continue
        message = err["msg"]
        value = err.get("input")
        short = isinstance(value, (str, int, float)) and len(str(value)) < 80
        if err["type"] != "missing" and short:
            message = f"{message} (got {value!r})"
        problems.append({"field": field_path(err["loc"]), "problem": message, "type": err["type"]})
    return problems


def unknown_categories(errors: Sequence[dict[str, Any]]) -> list[str]:
    """Category fields that were given a string outside their closed list of categories."""
    return [
        str(err["loc"][-1]) for err in errors
        if err["type"] == "literal_error" and err["loc"] and isinstance(err["loc"][-1], str)
        and isinstance(err.get("input"), str)
    ]


def log_with_reference(message: str, exc: BaseException, level: int = logging.ERROR) -> str:
    """Log `message` with `exc`'s traceback, credentials masked, under a new reference id, and
    return the id: anonymous answers quote it instead of the exception's text."""
    reference = uuid.uuid4().hex[:12]
    trace = mask_credentials("".join(traceback.format_exception(exc)).rstrip())
    log.log(level, "%s (reference %s)\n%s", message, reference, trace)
    return reference


def internal_error_response() -> JSONResponse:
    """The 500 body: a reference to the logged traceback, nothing about the internals.

    Call it from an `except` block so the traceback is the one being handled.
    """
    reference = log_with_reference("unhandled error", sys.exception())
    return JSONResponse(
        error_body("internal_error", f"internal server error; reference {reference} in the log"),
        status_code=500,
    )


async def send_json(send: Send, status: int, body: dict,
                    headers: dict[str, str] | None = None) -> None:
    """A JSON answer straight from ASGI middleware (before or instead of the app)."""
    payload = json.dumps(body).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()), *extra],
    })
    await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI) -> None:
    """Register the handlers on `app` (the catch-all for crashes is in observability)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            for name in unknown_categories(errors):
                metrics.unknown_categories.labels(field=name).inc()
        problems = describe_problems(errors)
        noun = "problem" if len(problems) == 1 else "problems"
        return JSONResponse(
            error_body("validation_error", f"{len(problems)} {noun} in the request", problems),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(ContractOnly)
    async def _contract_only(request: Request, exc: ContractOnly) -> JSONResponse:
        return JSONResponse(error_body("contract_only", exc.reason), status_code=409)

    @app.exception_handler(ModelUnavailable)
    async def _not_ready(request: Request, exc: ModelUnavailable) -> JSONResponse:
        return JSONResponse(
            error_body("models_not_ready", exc.reason), status_code=503,
            headers={"Retry-After": "5"},
        )
