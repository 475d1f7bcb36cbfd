"""The planner dashboard (`/v1/dashboard/...`): the JSON behind the page and the HTML report."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from serving.schemas.forecasts import Assessment
from serving.schemas.intake import IntakeScorecardInfo, ScoredCandidate


class DashboardProjectRow(BaseModel):
    """One row of the portfolio table; colours by `DashboardPortfolio.thresholds`."""

    project_id: str
    project_type: str
    status_date: date | None = Field(description="latest snapshot; null: intake forecast")
    # null: no forecast of that family (a profile without it, or a project without its
    # planned value: `warnings` says which)
    probability_late: float | None
    delay_days_p50: float | None
    overrun_pct_p50: float | None
    overrun_cost_p50: float | None = Field(
        description="P50 cost minus BAC (currency): the impact")
    spi: float | None
    cpi: float | None
    rag_probability_late: str
    rag_overrun_pct_p50: str
    rag_spi: str
    rag_cpi: str
    rag: str = Field(description="worst of the four: red, amber, green (grey: unknown)")
    warnings: list[str] = Field(default_factory=list, description=(
        "unseen category values, and the families the project has no forecast of (it lacks "
        "their planned value)"))


class UploadRejection(BaseModel):
    row: int = Field(description="the row in the uploaded file (data rows from 1)")
    column: str
    reason: str


class DashboardPortfolio(BaseModel):
    thresholds: dict[str, dict[str, Any]] = Field(
        description="per column: amber and red limits and whether higher or lower is worse")
    count: int
    projects: list[DashboardProjectRow]
    rejected_rows: int = Field(0, description="rows of an upload set aside (`allow_rejects`)")
    rejections: list[UploadRejection] = Field(
        default_factory=list, description="the first 100 problems of those rows")


class DashboardProject(BaseModel):
    project_id: str
    project_type: str
    finished: bool
    baseline: dict[str, Any] = Field(description="start, planned finish, BAC")
    s_curve: list[dict[str, Any]] = Field(description="per snapshot: date, pv, ev, ac")
    assessment: Assessment


class DashboardIntake(BaseModel):
    scorecard: IntakeScorecardInfo
    candidates: list[ScoredCandidate]
    portfolio: dict[str, Any] = Field(description="as POST /v1/portfolio/optimize, no models")
