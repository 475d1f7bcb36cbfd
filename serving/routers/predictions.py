"""POST /v1/predictions/{delay|overrun|resource-demand}: one family's forecast, explained."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Union

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from serving import service
from serving.dependencies import MetricsDep, SettingsDep, StoreDep
from serving.routers.evm import check_batch_size
from serving.schemas import (
    EXAMPLE_PROJECT,
    EXAMPLE_STATUS,
    ErrorResponse,
    PredictionBatchResult,
    PredictionResult,
    ProjectBody,
    ProjectRequest,
)

router = APIRouter(prefix="/v1/predictions", tags=["forecasts"])


class Task(str, Enum):
    delay = "delay"
    overrun = "overrun"
    resource_demand = "resource-demand"


PROJECT_EXAMPLES = {
    "intake": {"summary": "a project at intake", "value": EXAMPLE_PROJECT},
    "in_flight": {"summary": "a running project with its latest status",
                  "value": {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}},
    "batch": {"summary": "a batch (list), intake and in flight mixed",
              "value": [EXAMPLE_PROJECT,
                        {**EXAMPLE_PROJECT, "project_id": "PRJ-2025-0043",
                         "status": EXAMPLE_STATUS}]},
}
ERRORS = {400: {"model": ErrorResponse, "description": "the body cannot be parsed"},
          413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
          503: {"model": ErrorResponse, "description": "a model is not loaded (named, with why)"}}
TopK = Annotated[int | None, Query(ge=1, description="only the k largest contributions")]


@router.post(
    "/{task}", response_model=Union[PredictionResult, PredictionBatchResult], responses=ERRORS,
    summary="Forecast with P10/P50/P90 and a SHAP explanation",
)
def predict(
    task: Task,
    body: Annotated[ProjectBody, Body(openapi_examples=PROJECT_EXAMPLES)],
    store: StoreDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    top_k: TopK = None,
) -> JSONResponse:
    """Delay (duration), cost overrun or resource demand (effort) of one project or a batch.

    A project with `status` is scored by the in-flight model, otherwise by the intake model.
    The explanation is the TreeSHAP of the P50 in `output_space` = log(P50 / planned):
    base_value + contributions + other_features_contribution = prediction.
    """
    items = [body] if isinstance(body, ProjectRequest) else body
    check_batch_size(len(items), settings.max_batch)
    # Taken once, after validation (bad input is a 422 even with no model): a swap during this
    # request cannot mix versions.
    model = store.require().model(task.value)
    results = service.predict(model, items, top_k, metrics)
    ref = service.model_ref(model)
    if isinstance(body, ProjectRequest):
        return JSONResponse({**results[0], "model": ref})
    return JSONResponse({"model": ref, "count": len(results), "items": results})
