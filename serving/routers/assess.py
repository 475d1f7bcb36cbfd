"""POST /v1/projects/assess: everything a planner needs about a project in one call."""

from __future__ import annotations

from typing import Union

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from opm_ml.forecasting.assessment import assess as assess_projects
from serving.dependencies import ERRORS, MetricsDep, SettingsDep, StoreDep, TopK, require, served
from serving.dependencies import LogDep
from serving.monitoring import log_forecasts
from serving.requests import project_inputs
from serving.routers.predictions import ProjectBody
from serving.schemas.forecasts import AssessmentBatchResult, AssessmentResult

router = APIRouter(prefix="/v1/projects", tags=["forecasts"])


@router.post(
    "/assess", response_model=Union[AssessmentResult, AssessmentBatchResult], responses=ERRORS,
    summary="Every family's forecast, explained, plus OPM metrics when status is given",
)
def assess(body: ProjectBody, store: StoreDep, settings: SettingsDep, metrics: MetricsDep,
           prediction_log: LogDep, top_k: TopK = None) -> JSONResponse:
    """Delay, overrun and resource-demand forecasts with SHAP explanations; with `status`,
    also SV, CV, SPI, CPI, EAC, ETC, VAC, TCPI, ES, SPI(t), IEAC(t), the forecast finish and
    the EVM index forecasts next to each model's P50."""
    model_set, manifest = served(store, settings)
    inputs = project_inputs(body, manifest, settings.max_batch)
    model_set = require(model_set, store)
    model_set.require_all()
    assessment = assess_projects(model_set.family_models(), inputs)
    for name, batch in assessment.forecasts.items():
        metrics.observe(batch, model_set.models[name].slug)
    log_forecasts(prediction_log, inputs, assessment.forecasts, model_set.models)
    results = assessment.to_json(top_k)
    refs = model_set.refs()
    if not isinstance(body, list):
        return JSONResponse({**results[0], "models": refs})
    return JSONResponse({"models": refs, "count": len(results), "items": results})
