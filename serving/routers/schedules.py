"""POST /v1/schedules/check and /v1/schedules/risk: a planner's P6 or MS Project file in,
CPM and the DCMA 14 points, or a Monte Carlo schedule risk analysis, out.

The body is the file itself (as `POST /v1/dashboard/portfolio` takes a table); `filename` only
names it in messages, the format is read from the content (XER, P6 XML, MSPDI). Limits come
before any parsing: the declared and the streamed size (`OPM_ML_MAX_SCHEDULE_BYTES`), then the
activity records counted in the raw bytes (`OPM_ML_MAX_SCHEDULE_ACTIVITIES`), and iterations
(`OPM_ML_MAX_SCHEDULE_ITERATIONS`, `OPM_ML_MAX_SCHEDULE_SAMPLES`). Reading, CPM and the Monte
Carlo run in the thread pool, off the event loop. A file that cannot be used is a 422 naming
why (a logic loop and its activities, a dangling relationship, a truncated file...). The risk
analysis uses the served activity-duration champion when one is loaded and can score the
file, else the default template, and says which (`uncertainty`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from opm_ml.schedule import analysis
from opm_ml.schedule.files import count_activities
from opm_ml.schedule.model import ScheduleError
from opm_ml.settings import Settings
from opm_ml.text import mask_credentials
from serving.dependencies import SettingsDep, StoreDep
from serving.errors import error_body
from serving.model_store import ModelStore
from serving.schemas.common import ErrorResponse
from serving.schemas.schedules import ScheduleCheck, ScheduleRisk

router = APIRouter(prefix="/v1/schedules", tags=["schedule risk"])
ERRORS = {413: {"model": ErrorResponse, "description": "the file or its network is too large "
                                                      "(the limit is named)"},
          422: {"model": ErrorResponse, "description": "the file cannot be used (why is named)"}}
# The body is the raw file: documented as binary so /docs offers an upload.
UPLOAD = {"requestBody": {"required": True, "description": "the schedule file itself: P6 XER, "
                          "P6 XML or MS Project XML (MSPDI)",
                          "content": {"application/octet-stream": {
                              "schema": {"type": "string", "format": "binary"}}}}}
Filename = Annotated[str, Query(max_length=255, description="the file's name, for messages "
                                "(the format is read from the content)")]


class Unusable(Exception):
    """A 422: the upload cannot be analysed, and why."""


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, refused with a 413 as soon as it is known to exceed the schedule limit."""
    limit = settings.max_schedule_bytes
    message = (f"schedule file larger than the limit of {limit:,} bytes "
               "(OPM_ML_MAX_SCHEDULE_BYTES)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, message)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, message)
        chunks.append(chunk)
    return b"".join(chunks)


def counted(data: bytes, filename: str, settings: Settings) -> int:
    """Activity records in the raw file: 413 above the limit, before anything is parsed."""
    try:
        n = count_activities(data, filename)
    except ScheduleError as err:  # empty, or not a schedule format at all
        raise Unusable(str(err)) from None
    if n > settings.max_schedule_activities:
        raise HTTPException(413, f"the file holds {n:,} activities, more than the limit of "
                                 f"{settings.max_schedule_activities:,} "
                                 "(OPM_ML_MAX_SCHEDULE_ACTIVITIES)")
    return n


def iterations_for(asked: int | None, n_activities: int, settings: Settings) -> int:
    """The iterations to run: as asked (422 above a limit), else as many as the limits allow
    up to 10,000."""
    most = max(1, min(settings.max_schedule_iterations,
                      settings.max_schedule_samples // max(n_activities, 1)))
    if asked is None:
        return min(10_000, most)
    if asked > most:
        why = (f"at most {settings.max_schedule_iterations:,} (OPM_ML_MAX_SCHEDULE_ITERATIONS)"
               if asked > settings.max_schedule_iterations else
               f"at most {most:,} for {n_activities:,} activities: activities x iterations is "
               f"limited to {settings.max_schedule_samples:,} (OPM_ML_MAX_SCHEDULE_SAMPLES)")
        raise RequestValidationError([{"type": "less_than_equal", "loc": ("query", "iterations"),
                                       "msg": f"iterations must be {why}", "input": asked}])
    return asked


def unusable(message: str) -> JSONResponse:
    return JSONResponse(error_body("invalid_schedule", message, [
        {"field": "body", "problem": message, "type": "invalid_schedule"}]), status_code=422)


def _check(data: bytes, filename: str, settings: Settings) -> dict:
    counted(data, filename, settings)
    return _guarded(filename, lambda: analysis.check_schedule(
        analysis.read_upload(data, filename)).to_dict())


def _risk(data: bytes, filename: str, settings: Settings, store: ModelStore,
          iterations: int | None, seed: int, correlation: float, group_by: str) -> dict:
    runs = iterations_for(iterations, counted(data, filename, settings), settings)

    def work() -> dict:
        schedule = analysis.read_upload(data, filename)
        model_set = store.current  # taken once: a swap mid-request cannot mix models
        served = model_set.activity if model_set is not None else None
        reason = (model_set.activity_reason if model_set is not None
                  else f"no models are loaded ({store.reason})")
        uncertainty, source = analysis.build_uncertainty(
            schedule, correlation, group_by, model=served and served.model,
            model_ref=served and served.ref(), note=mask_credentials(reason) if not served
            else "", fallback=True)
        return analysis.analyse_risk(schedule, uncertainty, source, runs, seed,
                                     group_by).to_dict()

    return _guarded(filename, work)


def _guarded(filename: str, work) -> dict:
    """`work()`, with every way the file can be unusable turned into `Unusable` (a 422)."""
    try:
        return work()
    except ScheduleError as err:
        raise Unusable(str(err)) from None
    except analysis.UNFORESEEN as err:
        reference = analysis.log_unforeseen(filename, err)
        raise Unusable(f"{analysis.safe_name(filename)}: cannot analyse the file (unforeseen "
                       f"content; reference {reference} in the server log)") from None


@router.post("/check", response_model=ScheduleCheck, responses=ERRORS, openapi_extra=UPLOAD,
             summary="CPM and the DCMA 14-point assessment of an uploaded P6 or MS Project file")
async def check(request: Request, settings: SettingsDep,
                filename: Filename = "schedule.xer") -> JSONResponse:
    """Critical path, DCMA 14 checks with their offending activities, and how many of the
    dates the writing tool stored agree with our CPM."""
    data = await read_body(request, settings)
    try:
        return JSONResponse(await run_in_threadpool(_check, data, filename, settings))
    except Unusable as err:
        return unusable(str(err))


@router.post("/risk", response_model=ScheduleRisk, responses=ERRORS, openapi_extra=UPLOAD,
             summary="Monte Carlo schedule risk analysis of an uploaded P6 or MS Project file")
async def risk(
    request: Request, settings: SettingsDep, store: StoreDep,
    filename: Filename = "schedule.xer",
    iterations: Annotated[int | None, Query(
        ge=1, description="Monte Carlo iterations; default 10,000, fewer when the network is "
                          "large (activities x iterations is limited)")] = None,
    seed: Annotated[int, Query(ge=0, le=2**32 - 1, description="random seed")] = 0,
    correlation: Annotated[float, Query(
        ge=0, lt=1, description="Gaussian-copula correlation of activities in one group")] = 0.3,
    group_by: Annotated[Literal["wbs", "type", "none"], Query(
        description="correlation groups: WBS node, activity type, or none")] = "wbs",
) -> JSONResponse:
    """P10/P50/P80/P90 of the finish and of every milestone, the S-curve and histogram,
    criticality, cruciality and sensitivity of each activity, the tornado of what drives the
    P80, and the critical path. `uncertainty` says where the distributions came from: the
    served activity-duration champion, or the default template PERT(90 %, 100 %, 130 %)."""
    data = await read_body(request, settings)
    try:
        return JSONResponse(await run_in_threadpool(
            _risk, data, filename, settings, store, iterations, seed, correlation, group_by))
    except Unusable as err:
        return unusable(str(err))
