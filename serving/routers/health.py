"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from opm_ml.forecasting import family
from serving.dependencies import MetricsDep, StoreDep
from serving.schemas.common import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Process is alive")
def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz", response_model=Health, summary="Models are loaded and requests can be served",
    responses={503: {"model": Health, "description": "not ready, with the reason"}},
)
def readyz(store: StoreDep):
    """Ready when every family's model is served; otherwise 503 naming what is missing and why.

    Reasons are public ones (which model, refused or unreadable) with a reference id into the
    log. A reload that failed after a set was in (a refused or broken version) leaves the
    replica ready on the old set, saying so in `detail`.
    """
    current = store.current
    if current is None:
        return JSONResponse({"status": "not_ready", "detail": store.reason, "models": {},
                             "missing": {}}, 503)
    if current.missing:
        return JSONResponse({"status": "not_ready",
                             "detail": f"not every model is served: {current.missing_text()}",
                             "models": current.versions(),
                             "missing": {family(f).slug: why for f, why in current.missing.items()}},
                            503)
    detail = None if store.problem is None else f"serving the previous set: {store.problem}"
    return {"status": "ready", "detail": detail, "models": current.versions()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
