"""The OPM metrics endpoint (`POST /v1/metrics/evm`): inputs of one snapshot and the metrics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Field, Tag, create_model

from opm_ml.contract import column
from opm_ml.opm_metrics import METRIC_COLUMNS
from serving.schemas.common import request_config
from serving.schemas.projects import field_of

# Union tags of single-or-batch bodies; the error formatter drops them from field paths.
SINGLE, BATCH = "single", "batch"
EXAMPLE_EVM: dict[str, Any] = {
    "project_id": "PRJ-2025-0042",
    "bac": 2_400_000.0,
    "pv": 1_300_000.0,
    "ev": 1_050_000.0,
    "ac": 1_250_000.0,
    "start_date": "2025-01-06",
    "planned_duration_days": 270,
    "status_date": "2025-06-30",
}


def _snapshot(name: str) -> Any:
    return field_of(column("snapshots", name))[1]


class EvmRequest(BaseModel):
    """The inputs of the earned-value and earned-schedule metrics of one project.

    EV and PV within BAC, the status date not before the start and PV = BAC from the planned
    finish on are checked by `opm_ml.rules` after parsing (a 422 naming the field).
    """

    model_config = request_config(json_schema_extra={"examples": [EXAMPLE_EVM]})

    project_id: str | None = Field(None, max_length=200, description="your id, echoed back")
    bac: Annotated[float, field_of(column("projects", "budget_at_completion"))[1]]
    pv: Annotated[float, _snapshot("pv")]
    ev: Annotated[float, _snapshot("ev")]
    ac: Annotated[float, _snapshot("ac")]
    start_date: date = Field(description="planned (= actual) start date [ISO date]")
    planned_duration_days: Annotated[int, field_of(column("projects",
                                                          "planned_duration_days"))[1]]
    status_date: date = Field(description="date of the status report [ISO date]")


def one_or_many(model: type[BaseModel]) -> Any:
    """Body type accepting one object or a non-empty list of them, with clean error paths."""
    return Annotated[
        Union[
            Annotated[model, Tag(SINGLE)],
            Annotated[list[model], Field(min_length=1), Tag(BATCH)],
        ],
        Discriminator(lambda value: BATCH if isinstance(value, list) else SINGLE),
    ]


EvmBody = one_or_many(EvmRequest)

_METRIC_DOC = {
    "sv": "schedule variance EV - PV [currency]",
    "cv": "cost variance EV - AC [currency]",
    "spi": "schedule performance index EV / PV",
    "cpi": "cost performance index EV / AC",
    "eac_cpi": "estimate at completion BAC / CPI [currency]",
    "eac_plan_rate": "estimate at completion AC + (BAC - EV), remaining work at plan rate",
    "eac_cpi_spi": "estimate at completion AC + (BAC - EV) / (CPI x SPI)",
    "etc": "estimate to complete EAC(CPI) - AC [currency]",
    "vac": "variance at completion BAC - EAC(CPI) [currency]",
    "tcpi_bac": "to-complete performance index to finish on BAC",
    "tcpi_eac": "to-complete performance index to finish on EAC(CPI)",
    "es_days": "earned schedule [days since start]",
    "at_days": "actual time elapsed [days since start]",
    "sv_t_days": "time-based schedule variance ES - AT [days]",
    "spi_t": "time-based schedule performance index ES / AT",
    "ieac_t_days": "independent estimate of duration at completion PD / SPI(t) [days]",
    "forecast_finish_date": "start date + IEAC(t)",
}
EvmMetrics = create_model(
    "EvmMetrics",
    __doc__="Earned-value and earned-schedule metrics; null where undefined (see `undefined`).",
    **{
        name: (
            date | None if name == "forecast_finish_date" else float | None,
            Field(None, description=_METRIC_DOC.get(name, name)),
        )
        for name in METRIC_COLUMNS
    },
)


class EvmResult(BaseModel):
    """The OPM metrics of one project, with the reason for every metric left undefined."""

    project_id: str | None = None
    metrics: EvmMetrics  # type: ignore[valid-type]
    undefined: dict[str, str] = Field(
        default_factory=dict, description="metric -> why it is undefined (e.g. AC is 0)"
    )


class EvmBatchResult(BaseModel):
    """The OPM metrics of a batch, in request order."""

    count: int
    items: list[EvmResult]
