"""The planner dashboard: the page at /dashboard and its JSON under /v1/dashboard/...

Thin: `serving.dashboard.data` computes every view from the served models. The default
portfolio is the history in `app.state.dashboard_dir` (the 300-project sample unless set). With
models trained on an organisation's profile, the portfolio is its uploaded export, and the views
built on the contract's sample (history, project, intake) answer 409 saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from opm_ml.contract import History
from opm_ml.model_set import ModelSet
from opm_ml.settings import Settings
from serving.dashboard import data
from serving.dashboard.tables import TableLimits, TableTooLarge, read_table
from serving.dependencies import CONTRACT_ONLY, ERRORS, SettingsDep, StoreDep
from serving.errors import error_body
from serving.schemas.common import ErrorResponse
from serving.schemas.dashboard import DashboardIntake, DashboardPortfolio, DashboardProject

STATIC = Path(data.__file__).parent / "static"
# What a user of an organisation's profile does instead of the sample history's views.
UPLOAD = ("upload your export on the Portfolio view (POST /v1/dashboard/portfolio with the file "
          "as the body) to see its projects")
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


@router.get("/v1/dashboard/portfolio", response_model=DashboardPortfolio,
            responses={**ERRORS, **CONTRACT_ONLY},
            summary="In-flight projects at their latest snapshot: risk, EVM indices, RAG")
def portfolio(request: Request, store: StoreDep) -> JSONResponse:
    model_set = store.require()
    model_set.require_contract("the sample portfolio", UPLOAD)
    try:
        inputs = data.history_inputs(_history(request), model_set)
    except data.DashboardInputError as exc:
        return JSONResponse(error_body("invalid_project_table", str(exc)), status_code=422)
    return JSONResponse(data.portfolio(model_set, inputs))


@router.post("/v1/dashboard/portfolio", response_model=DashboardPortfolio, responses=ERRORS,
             summary="The portfolio table of an uploaded CSV or Parquet project table (raw body)")
async def portfolio_upload(request: Request, store: StoreDep, settings: SettingsDep,
                           filename: str = "projects.csv",
                           allow_rejects: Annotated[bool, Query(
                               description="score the valid rows and list the rejected ones "
                                           "(default: any rejected row is a 422 naming it)")]
                           = False) -> JSONResponse:
    """The body is the file itself (no multipart parser needed): CSV, or Parquet when
    `filename` ends in .parquet; contract columns plus optional status columns, or, when the
    served models read an organisation's profile, its own export as the profile reads it (each
    project at its latest report). A table over OPM_ML_MAX_BATCH rows, or decompressing past
    OPM_ML_MAX_BODY_BYTES, is a 413."""
    model_set = store.require()
    content = await request.body()
    # Reading, validating and scoring thousands of rows takes seconds: off the event loop,
    # so /healthz, /readyz and every other request keep being answered meanwhile.
    return await run_in_threadpool(_upload_portfolio, content, filename, model_set, settings,
                                   allow_rejects)


def _upload_portfolio(content: bytes, filename: str, model_set: ModelSet,
                      settings: Settings, allow_rejects: bool) -> JSONResponse:
    limits = TableLimits(rows=settings.max_batch, bytes=settings.max_body_bytes)
    try:
        if model_set.manifest.source:  # an organisation's export, read through its profile
            inputs, rejected = data.profiled_inputs(content, filename, model_set, limits,
                                                    allow_rejects)
        else:
            frame = read_table(content, filename, data.table_columns(model_set), limits)
            inputs, rejected = data.project_inputs(frame, model_set, allow_rejects)
    except TableTooLarge as exc:
        return JSONResponse(error_body("payload_too_large", str(exc)), status_code=413)
    except data.DashboardInputError as exc:
        return JSONResponse(error_body("invalid_project_table", str(exc)), status_code=422)
    return JSONResponse({**data.portfolio(model_set, inputs), **data.rejections_json(rejected)})


@router.get("/v1/dashboard/projects/{project_id}", response_model=DashboardProject,
            responses={**ERRORS, **CONTRACT_ONLY,
                       404: {"model": ErrorResponse, "description": "unknown project"}},
            summary="One project: forecasts, SHAP, OPM metrics, S-curves")
def project(project_id: str, request: Request, store: StoreDep) -> JSONResponse:
    model_set = store.require()
    model_set.require_contract("the project view", UPLOAD)
    try:
        return JSONResponse(data.project(model_set, _history(request), project_id))
    except KeyError:
        raise HTTPException(404, f"unknown project_id {project_id!r}") from None


@router.get("/v1/dashboard/intake", response_model=DashboardIntake,
            responses={**ERRORS, **CONTRACT_ONLY},
            summary="Ranked example candidates and the optimised portfolio")
def intake(store: StoreDep) -> JSONResponse:
    model_set = store.require()
    # Its example candidates (data/examples/candidates.csv) are rows in the contract's fields.
    model_set.require_contract("the intake view (its example candidates)",
                               "score candidates in the profile's own fields with "
                               "POST /v1/intake/score or `opm-ml intake score --profile`")
    return JSONResponse(data.intake(model_set))
