"""POST /v1/projects/assess: everything a planner needs about a project in one call."""

from __future__ import annotations

from typing import Union

from fastapi import APIRouter
from fastapi.responses import Response

from opm_ml.forecasting.assessment import assess as assess_projects
from serving.dependencies import (
    ERRORS,
    Compact,
    LaneDep,
    MediaDep,
    MetricsDep,
    SettingsDep,
    StoreDep,
    TopK,
    require,
    served,
)
from serving.formats import Answer, with_warnings
from serving.requests import project_inputs
from serving.routers.predictions import ProjectBody
from serving.schemas.forecasts import AssessmentBatchResult, AssessmentResult

router = APIRouter(prefix="/v1/projects", tags=["forecasts"])


@router.post(
    "/assess", response_model=Union[AssessmentResult, AssessmentBatchResult], responses=ERRORS,
    summary="Every family's forecast, explained, plus OPM metrics when status is given",
)
def assess(body: ProjectBody, store: StoreDep, settings: SettingsDep, metrics: MetricsDep,
           lane: LaneDep, media: MediaDep, top_k: TopK = None,
           compact: Compact = False) -> Response:
    """Delay, overrun and resource-demand forecasts with SHAP explanations; with `status`,
    also SV, CV, SPI, CPI, EAC, ETC, VAC, TCPI, ES, SPI(t), IEAC(t), the forecast finish and
    the EVM index forecasts next to each model's P50. `Accept` chooses JSON (default), NDJSON
    (streamed), Arrow IPC or Parquet (docs/formats.md)."""
    model_set, manifest = served(store, settings)
    inputs = project_inputs(body, manifest, settings.max_batch)
    model_set = require(model_set, store)
    model_set.require_all()
    models = model_set.family_models()

    def score(chunk):
        assessment = assess_projects(models, chunk)
        for name, batch in assessment.forecasts.items():
            metrics.observe(batch, model_set.models[name].slug)
        return assessment

    def frame(assessment):
        return with_warnings(assessment.to_frame(True, False, top_k), assessment.inputs.warnings)

    head = {"models": model_set.refs()}
    if compact:
        head["families"] = {m.slug: m.model.info() for m in model_set.models.values()}
    answer = Answer(head, not isinstance(body, list),
                    lambda assessment: assessment.to_json(top_k, compact), frame)
    return answer.respond(media, lane.run(inputs, score))
