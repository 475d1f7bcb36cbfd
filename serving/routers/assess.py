"""POST /v1/projects/assess: everything a planner needs about a project in one call."""

from __future__ import annotations

from typing import Annotated, Union

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from serving import service
from serving.dependencies import MetricsDep, SettingsDep, StoreDep
from serving.routers.evm import check_batch_size
from serving.routers.predictions import ERRORS, PROJECT_EXAMPLES, TopK
from serving.schemas import AssessmentBatchResult, AssessmentResult, ProjectBody, ProjectRequest

router = APIRouter(prefix="/v1/projects", tags=["forecasts"])


@router.post(
    "/assess", response_model=Union[AssessmentResult, AssessmentBatchResult], responses=ERRORS,
    summary="All three forecasts, explained, plus OPM metrics when status is given",
)
def assess(
    body: Annotated[ProjectBody, Body(openapi_examples=PROJECT_EXAMPLES)],
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    top_k: TopK = None,
) -> JSONResponse:
    """Delay, overrun and resource-demand forecasts with SHAP explanations; with `status`,
    also SV, CV, SPI, CPI, EAC, ETC, VAC, TCPI, ES, SPI(t), IEAC(t), the forecast finish and
    the EVM index forecasts next to each model's P50."""
    items = [body] if isinstance(body, ProjectRequest) else body
    check_batch_size(len(items), settings.max_batch)
    # Taken once, after validation (bad input is a 422 even with no model): a swap during this
    # request cannot mix versions.
    models = store.require()
    results = service.assess(models, items, top_k, metrics)
    refs = {task: service.model_ref(m) for task, m in models.models.items()}
    if isinstance(body, ProjectRequest):
        return JSONResponse({**results[0], "models": refs})
    return JSONResponse({"models": refs, "count": len(results), "items": results})
