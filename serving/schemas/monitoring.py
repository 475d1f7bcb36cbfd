"""The monitoring report as the API documents it (`GET /v1/monitoring`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FeatureDrift(BaseModel):
    """One feature at one stage: recent logged values against the champion's training rows."""

    stage: str
    feature: str
    kind: str = Field(description="number or category")
    n: int = Field(description="logged forecasts of the stage in the window")
    psi: float | None = Field(description="population stability index (0.1 moderate, 0.25 "
                                          "large); null without logged values")
    ks: float | None = Field(None, description="Kolmogorov-Smirnov statistic (numbers)")
    missing: float | None
    reference_missing: float
    judged: bool = Field(description="enough logged forecasts to judge drift")
    drifted: bool
    families: list[str] = Field(default_factory=list)


class PredictionDrift(BaseModel):
    stage: str
    output: str = Field(description="p50_ratio (P50 / planned) or probability_late")
    n: int
    psi: float | None
    ks: float | None = None
    missing: float | None
    reference_missing: float
    judged: bool
    drifted: bool


class Realised(BaseModel):
    """Realised metrics of forecasts whose projects have finished."""

    n: int
    mape: float
    coverage_80: float
    pinball: float
    bias_pct: float = Field(description="mean (P50 - actual) / actual, %; negative = too low")
    brier: float | None = None
    heldout_mape: float | None = Field(None, description="the models' held-out MAPE at the "
                                                         "same stages and progress points")


class AccuracyRow(Realised):
    family: str
    by: str = Field(description="all, stage, model_version, project_type or month")
    group: str
    model_version: str | None = Field(None, description="set when grouped by version or month")
    rise: float | None = Field(None, description="realised / held-out MAPE - 1")


class Check(BaseModel):
    check: str
    triggered: bool
    detail: str
    drifted: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    retrain: bool
    reasons: list[str]
    checks: list[Check]


class ReliabilityBin(BaseModel):
    bin: str
    n: int
    forecast: float
    observed: float


class FamilyMonitoring(BaseModel):
    model: dict[str, str | None]
    reference: bool = Field(description="whether the model carries a training profile")
    thresholds: dict[str, float]
    forecasts: int = Field(description="forecasts by this version in the window")
    prediction_drift: list[PredictionDrift]
    realised: Realised | None = None
    new_outcomes: int
    decision: Decision
    reliability: list[ReliabilityBin]


class MonitoringReport(BaseModel):
    """Drift, realised accuracy and the retrain decision of every served champion."""

    generated_at: str
    since: str
    requests: dict[str, int] = Field(description="logged forecasts per stage in the window")
    judged_forecasts: int
    families: dict[str, FamilyMonitoring]
    drift: list[FeatureDrift]
    accuracy: list[AccuracyRow]
