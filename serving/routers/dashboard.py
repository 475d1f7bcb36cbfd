"""The planner dashboard: the page at /dashboard and its JSON under /v1/dashboard/...

Thin: `serving.dashboard.data` computes every view from the served models. The default
portfolio is the history in `app.state.dashboard_dir` (the 300-project sample unless set).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from opm_ml.contract import History
from serving.dashboard import data
from serving.dependencies import ERRORS, SettingsDep, StoreDep
from serving.errors import error_body
from serving.requests import check_batch_size
from serving.schemas.common import ErrorResponse
from serving.schemas.dashboard import DashboardIntake, DashboardPortfolio, DashboardProject

STATIC = Path(data.__file__).parent / "static"
router = APIRouter(tags=["dashboard"])


def _history(request: Request) -> History:
    """The dashboard's history, read once per app (reads and validates three tables)."""
    state = request.app.state
    if getattr(state, "dashboard_history", None) is None:
        state.dashboard_history = data.default_history(getattr(state, "dashboard_dir", None))
    return state.dashboard_history


@router.get("/dashboard", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/v1/dashboard/portfolio", response_model=DashboardPortfolio, responses=ERRORS,
            summary="In-flight projects at their latest snapshot: risk, EVM indices, RAG")
def portfolio(request: Request, store: StoreDep) -> JSONResponse:
    model_set = store.require()
    try:
        inputs = data.history_inputs(_history(request), model_set)
    except data.DashboardInputError as exc:
        return JSONResponse(error_body("invalid_project_table", str(exc)), status_code=422)
    return JSONResponse(data.portfolio(model_set, inputs))


@router.post("/v1/dashboard/portfolio", response_model=DashboardPortfolio, responses=ERRORS,
             summary="The portfolio table of an uploaded CSV or Parquet project table (raw body)")
async def portfolio_upload(request: Request, store: StoreDep, settings: SettingsDep,
                           filename: str = "projects.csv") -> JSONResponse:
    """The body is the file itself (no multipart parser needed): CSV, or Parquet when
    `filename` ends in .parquet; contract columns plus optional status columns."""
    model_set = store.require()
    try:
        frame = data.read_table(await request.body(), filename)
        check_batch_size(len(frame), settings.max_batch)
        inputs = data.project_inputs(frame, model_set)
    except data.DashboardInputError as exc:
        return JSONResponse(error_body("invalid_project_table", str(exc)), status_code=422)
    return JSONResponse(data.portfolio(model_set, inputs))


@router.get("/v1/dashboard/projects/{project_id}", response_model=DashboardProject,
            responses={**ERRORS, 404: {"model": ErrorResponse, "description": "unknown project"}},
            summary="One project: forecasts, SHAP, OPM metrics, S-curves")
def project(project_id: str, request: Request, store: StoreDep) -> JSONResponse:
    try:
        return JSONResponse(data.project(store.require(), _history(request), project_id))
    except KeyError:
        raise HTTPException(404, f"unknown project_id {project_id!r}") from None


@router.get("/v1/dashboard/intake", response_model=DashboardIntake, responses=ERRORS,
            summary="Ranked example candidates and the optimised portfolio")
def intake(store: StoreDep) -> JSONResponse:
    return JSONResponse(data.intake(store.require()))
