"""POST /v1/predictions/{delay|overrun|resource-demand}: one family's forecast, explained."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Union

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from opm_ml.forecasting import FAMILIES
from serving.dependencies import ERRORS, MetricsDep, SettingsDep, StoreDep, TopK, require, served
from serving.dependencies import LogDep
from serving.monitoring import log_forecasts
from serving.requests import project_inputs, require_planned
from serving.schemas.forecasts import PredictionBatchResult, PredictionResult
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

router = APIRouter(prefix="/v1/predictions", tags=["forecasts"])
Task = Enum("Task", {f.slug.replace("-", "_"): f.slug for f in FAMILIES.values()}, type=str)
PROJECT_EXAMPLES = {
    "intake": {"summary": "a project at intake", "value": EXAMPLE_PROJECT},
    "in_flight": {"summary": "a running project with its latest status",
                  "value": {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}},
    "batch": {"summary": "a batch (list), intake and in flight mixed",
              "value": [EXAMPLE_PROJECT,
                        {**EXAMPLE_PROJECT, "project_id": "PRJ-2025-0043",
                         "status": EXAMPLE_STATUS}]},
}
# The body's schema is the served models' project request (see `serving.app.openapi`).
ProjectBody = Annotated[Any, Body(openapi_examples=PROJECT_EXAMPLES)]


@router.post(
    "/{task}", response_model=Union[PredictionResult, PredictionBatchResult], responses=ERRORS,
    summary="Forecast with P10/P50/P90 and a SHAP explanation",
)
def predict(task: Task, body: ProjectBody, store: StoreDep, settings: SettingsDep,
            metrics: MetricsDep, prediction_log: LogDep, top_k: TopK = None) -> JSONResponse:
    """Delay (duration), cost overrun or resource demand (effort) of one project or a batch.

    A project with `status` is scored by the in-flight model, otherwise by the intake model.
    The explanation is the TreeSHAP of the P50 in `output_space` = log(P50 / planned):
    base_value + contributions + other_features_contribution = prediction.
    """
    model_set, manifest = served(store, settings)
    inputs = project_inputs(body, manifest, settings.max_batch)
    model = require(model_set, store).model(task.value)
    require_planned(inputs, model.model.spec, not isinstance(body, list))
    batch = model.model.predict(inputs)
    metrics.observe(batch, model.slug)
    log_forecasts(prediction_log, inputs, {model.family: batch}, {model.family: model})
    warnings = inputs.warnings
    results = [{"project_id": pid, **forecast, **({"warnings": w} if w else {})}
               for pid, forecast, w in zip(inputs.ids, batch.to_json(top_k), warnings)]
    if not isinstance(body, list):
        return JSONResponse({**results[0], "model": model.ref()})
    return JSONResponse({"model": model.ref(), "count": len(results), "items": results})
