"""POST /v1/metrics/evm: earned-value and earned-schedule metrics, one snapshot or a batch.

A batch goes through `evm_frame` once (vectorised), one snapshot through `evm_single`; every row
is its own project, exactly as a single request treats it, so batch and single answers agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

import numpy as np
from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from opm_ml import rules
from opm_ml.features import status_metrics
from opm_ml.forecasting.assessment import metric_dicts
from serving.batches import scored
from serving.requests import counted_first, raise_findings
from serving.schemas.common import ErrorResponse
from serving.schemas.evm import EXAMPLE_EVM, EvmBatchResult, EvmBody, EvmRequest, EvmResult

router = APIRouter(prefix="/v1/metrics", tags=["OPM metrics"])

EXAMPLES = {
    "single": {"summary": "one project", "value": EXAMPLE_EVM},
    "batch": {
        "summary": "a batch (list)",
        "value": [EXAMPLE_EVM, {**EXAMPLE_EVM, "project_id": "PRJ-2025-0043", "ac": 0.0}],
    },
}
ERRORS = {400: {"model": ErrorResponse, "description": "the body cannot be parsed"},
          413: {"model": ErrorResponse}, 422: {"model": ErrorResponse},
          503: {"model": ErrorResponse, "description": "the server is busy scoring (Retry-After)"}}
# Contract column (what `status_metrics` and the rules read) -> request field.
_AMOUNTS = {"budget_at_completion": "bac", "planned_duration_days": "planned_duration_days",
            "pv": "pv", "ev": "ev", "ac": "ac"}


def inconsistent_input(exc: ValueError) -> RequestValidationError:
    """An input the checks let through but the metrics reject, answered as a 422."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body",), "msg": str(exc), "input": None}]
    )


@router.post(
    "/evm",
    response_model=Union[EvmResult, EvmBatchResult],
    responses=ERRORS,
    summary="Earned value and earned schedule metrics (SV, CV, SPI, CPI, EAC, TCPI, ES, ...)",
    dependencies=[counted_first(lambda body: body)],
)
async def evm(body: Annotated[EvmBody, Body(openapi_examples=EXAMPLES)]) -> JSONResponse:
    """The standard OPM metrics for one status snapshot, or for a list of them.

    Undefined metrics (e.g. CPI while AC is 0) are null, with the reason in `undefined`.
    """
    return await scored(_evm, body)


def _evm(body: EvmRequest | list[EvmRequest]) -> JSONResponse:
    if isinstance(body, EvmRequest):
        return JSONResponse(evm_metrics([body], single=True)[0])
    items = evm_metrics(body)
    return JSONResponse({"count": len(items), "items": items})


def evm_metrics(items: list[EvmRequest], single: bool = False) -> list[dict[str, Any]]:
    """Metrics of the snapshots, one vectorised computation for the whole list."""
    n = len(items)
    columns = {name: np.fromiter((getattr(i, field) for i in items), float, n)
               for name, field in _AMOUNTS.items()}
    columns.update({name: np.array([getattr(i, name) for i in items], dtype="datetime64[D]")
                    for name in ("start_date", "status_date")})
    findings = rules.status_findings(columns, np.ones(n, dtype=bool))
    # The rules speak the contract's names; this endpoint's fields are bac, pv, ...
    findings.frame["column"] = findings.frame["column"].replace(_AMOUNTS)
    findings.frame["reason"] = findings.frame["reason"].str.replace(
        "budget_at_completion", "bac", regex=False)
    raise_findings(findings, single, nested="")
    try:
        evm = status_metrics(columns)
    except ValueError as exc:
        raise inconsistent_input(exc) from None
    return [
        {"project_id": item.project_id, "metrics": values, "undefined": reasons}
        for item, values, reasons in zip(items, metric_dicts(evm), evm.reasons(), strict=True)
    ]
