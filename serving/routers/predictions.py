"""POST /v1/predictions/{delay|overrun|resource-demand}: one family's forecast, explained."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Union

import pandas as pd
from fastapi import APIRouter, Body
from fastapi.responses import Response

from opm_ml.forecasting import FAMILIES
from serving.batches import scored
from serving.dependencies import ERRORS, Forecasting, ForecastingDep, require, served
from serving.formats import OPENAPI_200, Answer, with_warnings
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
    "/{task}", response_model=Union[PredictionResult, PredictionBatchResult],
    responses={**ERRORS, 200: OPENAPI_200},
    summary="Forecast with P10/P50/P90 and a SHAP explanation",
)
async def predict(task: Task, body: ProjectBody, ask: ForecastingDep) -> Response:
    """Delay (duration), cost overrun or resource demand (effort) of one project or a batch.

    A project with `status` is scored by the in-flight model, otherwise by the intake model.
    The explanation is the TreeSHAP of the P50 in `output_space` = log(P50 / planned):
    base_value + contributions + other_features_contribution = prediction. `Accept` chooses
    JSON (default), NDJSON (streamed), Arrow IPC or Parquet (docs/formats.md).
    """
    return await scored(_predict, body, task, ask)


def _predict(body: Any, task: Task, ask: Forecasting) -> Response:
    model_set, manifest = served(ask.store, ask.settings)
    inputs = project_inputs(body, manifest, ask.settings.max_batch)
    model = require(model_set, ask.store).model(task.value)
    require_planned(inputs, model.model.spec, not isinstance(body, list))

    def score(chunk):
        batch = model.model.predict(chunk)
        ask.metrics.observe(batch, model.slug)
        log_forecasts(ask.prediction_log, chunk, {model.family: batch}, {model.family: model})
        return batch

    def items(batch) -> list[dict]:
        forecasts = batch.to_json(ask.top_k, ask.compact)
        return [{"project_id": pid, **forecast, **({"warnings": w} if w else {})}
                for pid, forecast, w in zip(batch.inputs.ids, forecasts, batch.inputs.warnings)]

    def frame(batch):
        ids = pd.DataFrame({"project_id": pd.array(batch.inputs.ids, dtype=object)})
        columns = pd.concat([ids, batch.to_frame(True, False, ask.top_k)], axis=1)
        return with_warnings(columns, batch.inputs.warnings)

    head = {"model": model.ref()}
    if ask.compact:
        head["families"] = {model.slug: model.model.info()}
    answer = Answer(head, not isinstance(body, list), items, frame)
    return answer.respond(ask.media, ask.lane.run(inputs, score))
