"""Admin operations behind the API key: reload the models the registry alias points to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from serving.dependencies import StoreDep, require_admin
from serving.schemas.common import ErrorResponse

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


class ReloadResult(BaseModel):
    """What a reload did; `models` is the set in use afterwards (task -> version)."""

    status: str = Field(description="reloaded, failed (old set kept), started or already_running")
    models: dict[str, str] = Field(default_factory=dict)
    error: str | None = Field(None, description="why the load failed")


@router.post(
    "/reload", response_model=ReloadResult, summary="Reload the models the alias points to",
    responses={
        202: {"model": ReloadResult, "description": "background reload started"},
        401: {"model": ErrorResponse}, 403: {"model": ErrorResponse},
        503: {"model": ReloadResult, "description": "the load failed; the old set is kept"},
    },
)
def reload(
    store: StoreDep,
    wait: Annotated[bool, Query(description="block until the new set is swapped in")] = False,
):
    """Load the registry's current alias in the background and swap it in atomically.

    Requests keep being served by the old set until the new one is completely loaded.
    """
    if wait:
        ok = store.reload(wait=True)
        current = store.current
        body = {"status": "reloaded" if ok else "failed",
                "models": current.versions() if current else {}, "error": store.last_error}
        return JSONResponse(body, status_code=200 if ok else 503)
    started = store.reload(wait=False)
    current = store.current
    return JSONResponse(
        {"status": "started" if started else "already_running",
         "models": current.versions() if current else {}},
        status_code=202,
    )
