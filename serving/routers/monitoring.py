"""GET /v1/monitoring: drift, realised accuracy and the retrain decision, as JSON."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from opm_ml.database import DatabaseUnavailable
from serving.dependencies import StoreDep
from serving.schemas.common import ErrorResponse
from serving.schemas.monitoring import MonitoringReport

router = APIRouter(prefix="/v1", tags=["monitoring"])
Since = Annotated[date | None, Query(description="first day of forecasts to include "
                                                 "(default: the last 30 days)")]


@router.get("/monitoring", response_model=MonitoringReport,
            responses={503: {"model": ErrorResponse, "description": "no model or database"}},
            summary="Drift, realised accuracy and whether each champion should be retrained")
def monitoring(request: Request, store: StoreDep, since: Since = None) -> dict:
    """The report `opm-ml monitor` prints, over forecasts logged since `since`."""
    model_set = store.require()
    start = datetime(since.year, since.month, since.day, tzinfo=timezone.utc) if since else None
    try:
        return request.app.state.monitoring.compute(model_set, start)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"the monitoring report needs the database: {exc}") from None
