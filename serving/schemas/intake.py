"""Intake scoring and portfolio selection (`POST /v1/intake/score`, `/v1/portfolio/optimize`),
served by serving/routers/intake.py over opm_ml.intake."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opm_ml.features import contract_manifest
from serving.schemas.common import ModelRef
from serving.schemas.projects import EXAMPLE_PROJECT, project_request

# Candidates are projects at intake as the contract describes them, plus a business case.
ProjectRequest = project_request(contract_manifest())


EXAMPLE_CANDIDATE: dict[str, Any] = {
    **EXAMPLE_PROJECT, "project_id": "C-001", "name": "CRM replacement",
    "discount_rate": 0.08, "cost_by_year": [2_400_000.0, 0.0, 0.0, 0.0],
    "benefits_by_year": [0.0, 1_200_000.0, 1_400_000.0, 1_400_000.0],
    "mandatory": False, "regulatory": False,
    "alignment": {"customer_experience": 8, "cost_efficiency": 6, "compliance": 3},
}


class IntakeCandidate(ProjectRequest):
    """A candidate project: contract intake fields plus its business case (no status)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_CANDIDATE]})

    project_id: str = Field(max_length=200, description="candidate id, used in constraints")
    name: str | None = Field(None, max_length=200)
    status: None = Field(None, description="not used at intake")
    discount_rate: float = Field(ge=0, lt=1, description="annual discount rate, 0.08 = 8 %")
    cost_by_year: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, max_length=50, description="cost per project year (year 1 = first 12 months from "
        "start_date); omitted: budget_at_completion spread evenly over the planned months")
    benefits_by_year: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, max_length=50, description="benefit per project year; omitted: expected_benefits "
        "evenly over the 3 years after the planned finish")
    mandatory: bool = False
    regulatory: bool = Field(False, description="mandatory or regulatory -> MoSCoW must")
    alignment: dict[str, Annotated[float, Field(ge=0, le=10)]] = Field(
        default_factory=dict, description="0-10 alignment per scorecard objective; empty: "
        "strategic_fit is used")


class IntakeDriver(BaseModel):
    feature: str
    contribution: float = Field(description="SHAP value, log(P50 / planned) space")


class ScoredCandidate(BaseModel):
    rank: int
    project_id: str
    name: str | None = None
    moscow: Literal["must", "should", "could", "won't"]
    score: float = Field(description="0-100, the sum of `points`")
    points: dict[str, float] = Field(description="criterion -> weight x score x 100")
    criterion_scores: dict[str, float] = Field(description="criterion -> 0..1 score")
    finance: dict[str, float | str | None] = Field(
        description="npv, roi, payback_years, irr (null + irr_note when none), total_cost")
    risk: dict[str, float] = Field(
        description="delay/overrun quantiles, P(late), expected cost, risk-adjusted NPV, "
        "P50 effort hours in total and by role")
    top_drivers: dict[str, list[IntakeDriver]]


class IntakeScoreResult(BaseModel):
    scorecard_version: str
    models: dict[str, ModelRef]
    count: int
    items: list[ScoredCandidate] = Field(description="ranked, best first")


class PortfolioConstraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_month: str = Field(pattern=r"^\d{4}-\d{2}$", description="first horizon month")
    months: int = Field(ge=1, le=600)
    budget: dict[str, Annotated[float, Field(ge=0)]] = Field(description="calendar year -> budget")
    capacity: dict[str, float | list[float]] = Field(
        description="role -> hours per month (one number, or one per horizon month)")
    dependencies: list[tuple[str, str]] = Field(default_factory=list,
                                                description="[project, requires]")
    exclusions: list[tuple[str, str]] = Field(default_factory=list)
    frontier_scales: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5], max_length=20)


class PortfolioRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidates: list[IntakeCandidate] = Field(min_length=1)
    constraints: PortfolioConstraints
    time_limit_seconds: float = Field(10.0, gt=0, le=120)


class PortfolioResult(BaseModel):
    status: str = Field(description="optimal, or time limit with the proven gap")
    gap: float = Field(description="relative MIP gap; 0 = proven optimal")
    solve_seconds: float
    total_value: float = Field(description="sum of the selected risk-adjusted NPVs")
    scorecard_version: str
    selected: list[str]
    rejected: list[str]
    decisions: list[dict[str, Any]]
    binding: list[dict[str, Any]] = Field(
        description="budget/capacity rows within 1 % of their limit or blocking a rejected "
        "candidate (`blocks`)")
    budget: list[dict[str, Any]]
    resource_load: list[dict[str, Any]] = Field(description="role x month load vs capacity")
    frontier: list[dict[str, Any]] = Field(description="value at scaled budgets")
    models: dict[str, ModelRef]
