"""Forecasts, explanations and assessments: what the prediction and assess endpoints return.

Built by `opm_ml.forecasting` (`ForecastBatch.to_json`, `Assessment.to_json`); these models
document the shape and are checked against that serializer in the tests. Fields marked
"omitted with compact" are left out of `?compact=true` answers, which state them once under
`families` or leave them out because another field of the same answer repeats them.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from serving.schemas.common import ModelRef
from serving.schemas.evm import EvmResult


class Interval(BaseModel):
    p10: float
    p50: float
    p90: float


class Contribution(BaseModel):
    feature: str
    value: float | str | None = Field(description="the feature's input value (null: missing)")
    contribution: float = Field(description="SHAP value in the explanation's output space")


class Explanation(BaseModel):
    """TreeSHAP of the P50: base_value + sum(contributions) + other = prediction, exactly."""

    output_space: str | None = Field(
        None, description="e.g. log(duration_days / planned_duration_days); omitted with compact")
    base_value: float
    prediction: float = Field(description="the P50 in the output space, log(P50 / planned)")
    contributions: list[Contribution] = Field(description="sorted by |contribution|, top_k")
    other_features_contribution: float = Field(description="sum over features left out by top_k")


class Forecast(BaseModel):
    """One family's forecast of one project (family-specific fields are null for the others)."""

    stage: Literal["intake", "inflight"] = Field(description="inflight when status was given")
    quantity: str | None = Field(None, description="duration_days, cost or effort_hours; "
                                                   "omitted with compact")
    unit: str | None = Field(None, description="omitted with compact")
    prediction: float | None = Field(None, description="point forecast (= P50); omitted with "
                                                       "compact")
    interval: Interval = Field(description="conformalised P10/P50/P90")
    delay_days: Interval | None = Field(None, description="delay: duration minus plan")
    probability_late: float | None = Field(None, description="delay: calibrated P(late)")
    late_threshold: float | None = Field(
        None, description="delay: late = beyond plan x (1+t); omitted with compact")
    finish_date: dict[str, date | None] | None = Field(
        None, description="delay: start + P10/P50/P90 (null past 9999-12-31)")
    overrun_pct: Interval | None = Field(None, description="overrun: cost over BAC in percent")
    effort_by_role: dict[str, Interval] | None = Field(None, description="resource: hours/role")
    monthly_profile: dict[str, Any] | None = Field(
        None, description="resource: {months, hours: {role: [P50 hours per planned month]}}"
    )
    explanation: Explanation


class FamilyInfo(BaseModel):
    """What every forecast of a family shares: stated once by compact answers."""

    quantity: str
    unit: str
    output_space: str
    late_threshold: float | None = None


class PredictionResult(Forecast):
    """One project's forecast from one model."""

    project_id: str | None = None
    model: ModelRef
    families: dict[str, FamilyInfo] | None = Field(None, description="only with compact")
    warnings: list[str] | None = Field(
        None, description="input values the model treats as missing (unseen categories)")


class PredictionItem(Forecast):
    project_id: str | None = None
    warnings: list[str] | None = None


class PredictionBatchResult(BaseModel):
    """A batch's forecasts in request order."""

    model: ModelRef
    families: dict[str, FamilyInfo] | None = Field(None, description="only with compact")
    count: int
    items: list[PredictionItem]


class EvmComparison(BaseModel):
    """The model's P50 next to the earned-value index forecasts of the same quantity."""

    planned: float
    model_p50: float | None = Field(None, description="omitted with compact")
    model_interval: Interval | None = Field(None, description="omitted with compact")
    evm: dict[str, float | None] = Field(description="index forecast -> value (null: undefined)")


class Assessment(BaseModel):
    """All three forecasts of one project, plus OPM metrics when status data was given."""

    project_id: str | None = None
    forecasts: dict[str, Forecast] = Field(description="by family: delay, overrun, "
                                           "resource-demand (those served)")
    opm_metrics: EvmResult | None = Field(None, description="only with `status`")
    evm_comparison: dict[str, EvmComparison] | None = Field(
        None, description="quantity -> model vs EVM index forecasts; only with `status`"
    )
    evm_forecast_finish_date: date | None = Field(
        None, description="start + IEAC(t), next to forecasts.delay.finish_date; omitted "
                          "with compact (opm_metrics.metrics.forecast_finish_date)"
    )
    warnings: list[str] | None = Field(
        None, description="input values the models treat as missing (unseen categories)")


class AssessmentResult(Assessment):
    models: dict[str, ModelRef]
    families: dict[str, FamilyInfo] | None = Field(None, description="only with compact")


class AssessmentBatchResult(BaseModel):
    models: dict[str, ModelRef]
    families: dict[str, FamilyInfo] | None = Field(None, description="only with compact")
    count: int
    items: list[Assessment]
