"""POST /v1/projects/assess: everything a planner needs about a project in one call."""

from __future__ import annotations

from typing import Any, Union

from fastapi import APIRouter
from fastapi.responses import Response

from opm_ml.forecasting.assessment import assess as assess_projects
from serving.batches import scored
from serving.dependencies import ERRORS, Forecasting, ForecastingDep, require, served
from serving.formats import OPENAPI_200, Answer, with_warnings
from serving.monitoring import log_forecasts
from serving.requests import project_inputs
from serving.routers.predictions import ProjectBody
from serving.schemas.forecasts import AssessmentBatchResult, AssessmentResult

router = APIRouter(prefix="/v1/projects", tags=["forecasts"])


@router.post(
    "/assess", response_model=Union[AssessmentResult, AssessmentBatchResult],
    responses={**ERRORS, 200: OPENAPI_200},
    summary="Every family's forecast, explained, plus OPM metrics when status is given",
)
async def assess(body: ProjectBody, ask: ForecastingDep) -> Response:
    """Delay, overrun and resource-demand forecasts with SHAP explanations; with `status`,
    also SV, CV, SPI, CPI, EAC, ETC, VAC, TCPI, ES, SPI(t), IEAC(t), the forecast finish and
    the EVM index forecasts next to each model's P50. `Accept` chooses JSON (default), NDJSON
    (streamed), Arrow IPC or Parquet (docs/formats.md)."""
    return await scored(_assess, body, ask)


def _assess(body: Any, ask: Forecasting) -> Response:
    model_set, manifest = served(ask.store, ask.settings)
    inputs = project_inputs(body, manifest, ask.settings.max_batch)
    model_set = require(model_set, ask.store)
    model_set.require_all()
    models = model_set.family_models()

    def score(chunk):
        assessment = assess_projects(models, chunk)
        for name, batch in assessment.forecasts.items():
            ask.metrics.observe(batch, model_set.models[name].slug)
        log_forecasts(ask.prediction_log, chunk, assessment.forecasts, model_set.models)
        return assessment

    def frame(assessment):  # warnings last, with the families a row has no forecast of
        columns = assessment.to_frame(True, False, ask.top_k).drop(columns="warnings")
        return with_warnings(columns, assessment.warnings())

    head = {"models": model_set.refs()}
    if ask.compact:
        head["families"] = {m.slug: m.model.info() for m in model_set.models.values()}
    answer = Answer(head, not isinstance(body, list),
                    lambda assessment: assessment.to_json(ask.top_k, ask.compact), frame)
    return answer.respond(ask.media, ask.lane.run(inputs, score))
