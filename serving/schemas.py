"""Every request and response body of the API, built from the data contract (pydantic v2).

Intake fields, their types, ranges and categories come from `opm_ml.contract`, and the two-column
rules mirror `opm_ml.validation`, so the API rejects exactly what the data pipeline rejects: a
422 that names the field path and the problem, never a silently scored bad row.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from opm_ml.contract import INTAKE_COLUMNS, ROLE_SHARE_COLUMNS, Column, column
from opm_ml.intake import weighting
from opm_ml.intake.scorecard import CRITERIA as INTAKE_CRITERIA
from opm_ml.opm_metrics import METRIC_COLUMNS
from opm_ml.opm_metrics import REL_TOL as EVM_REL_TOL
from opm_ml.validation import BAC_RELATIVE_TOLERANCE, ROLE_SHARE_TOLERANCE

# Union tags of single-or-batch bodies; the error formatter drops them from field paths.
SINGLE, BATCH = "single", "batch"
CATEGORY_FIELDS = tuple(
    name for name in INTAKE_COLUMNS if column("projects", name).categories is not None
)

EXAMPLE_PROJECT: dict[str, Any] = {
    "project_id": "PRJ-2025-0042",
    "project_type": "it_software",
    "sector": "finance",
    "region": "europe",
    "methodology": "agile",
    "start_date": "2025-01-06",
    "planned_duration_days": 270,
    "budget_at_completion": 2_400_000.0,
    "planned_effort_hours": 18_000.0,
    "planned_team_size": 12,
    "role_share_management": 0.10,
    "role_share_analysis": 0.15,
    "role_share_design": 0.15,
    "role_share_build": 0.35,
    "role_share_testing": 0.15,
    "role_share_deployment": 0.10,
    "complexity": 3,
    "requirements_volatility": 4,
    "num_vendors": 2,
    "num_dependencies": 3,
    "pm_experience_years": 8.0,
    "strategic_fit": 7.5,
    "expected_benefits": 3_600_000.0,
    "expected_roi": 0.5,
    "num_identified_risks": 14,
    "mean_risk_severity": 2.8,
}
EXAMPLE_STATUS: dict[str, Any] = {
    "status_date": "2025-06-30",
    "pv": 1_300_000.0,
    "ev": 1_050_000.0,
    "ac": 1_250_000.0,
    "percent_complete": 45.0,
}
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


def _problem(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> ValidationError:
    """A validation error at `loc` (relative to the model) so the 422 names the exact field."""
    return ValidationError.from_exception_data(
        "request", [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)]
    )


def _field(col: Column, **overrides: Any) -> tuple[Any, Any]:
    """(type, Field) for one contract column: categories become an enum, ranges ge/le."""
    if col.categories:
        kind: Any = Literal[col.categories]
    else:
        kind = {"int": int, "float": float, "date": date, "str": str}[col.kind]
    unit = f" [{col.unit}]" if col.unit else ""
    options: dict[str, Any] = {"description": col.description + unit}
    if col.min is not None:
        options["ge"] = col.min
    if col.max is not None:
        options["le"] = col.max
    if col.kind == "float":
        options["allow_inf_nan"] = False
    options.update(overrides)
    return kind, Field(**options)


def _snapshot(name: str, **overrides: Any) -> tuple[Any, Any]:
    return _field(column("snapshots", name), **overrides)


def _le_bac(value: float, bac: float) -> bool:
    return value <= bac * (1 + BAC_RELATIVE_TOLERANCE)


class StatusReport(BaseModel):
    """The latest status snapshot of an in-flight project (earned-value data to date)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_STATUS]})

    status_date: Annotated[date, _snapshot("status_date")[1]]
    pv: Annotated[float, _snapshot("pv")[1]]
    ev: Annotated[float, _snapshot("ev")[1]]
    ac: Annotated[float, _snapshot("ac")[1]]
    # Optional: the in-flight features take a missing progress report as unknown.
    percent_complete: Annotated[float | None, _snapshot("percent_complete", default=None)[1]]


class _ProjectRules(BaseModel):
    """The contract's multi-column rules for one project (as in `opm_ml.validation`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _check_rules(self) -> _ProjectRules:
        shares = sum(getattr(self, name) for name in ROLE_SHARE_COLUMNS)
        if abs(shares - 1) > ROLE_SHARE_TOLERANCE:
            raise _problem(
                ("role_share_build",), "role_shares_sum",
                f"role_share_* fields sum to {shares:.4g}, must sum to 1 "
                f"(± {ROLE_SHARE_TOLERANCE:g})", shares,
            )
        risks, severity = self.num_identified_risks, self.mean_risk_severity
        if (risks == 0) != (severity == 0):
            raise _problem(
                ("mean_risk_severity",), "risk_severity",
                "mean_risk_severity must be 0 exactly when num_identified_risks is 0 "
                f"(risks {risks}, severity {severity:g})", severity,
            )
        status: StatusReport | None = getattr(self, "status", None)
        if status is not None:
            _check_status(status, self.budget_at_completion, self.start_date,
                          self.planned_duration_days, ("status",))
        return self


def _check_status(status, bac: float, start: date, duration: int, at: tuple[str, ...]) -> None:
    """EV and PV within BAC, status date not before the start, PV = BAC after the planned finish.

    The last rule is the baseline's: planned value reaches BAC on the planned finish day, so a
    later status report with less PV contradicts the plan (and earned schedule is undefined).
    """
    for name in ("ev", "pv"):
        value = getattr(status, name)
        if not _le_bac(value, bac):
            raise _problem(
                (*at, name), f"{name}_above_bac",
                f"{name} {value:,.2f} exceeds the budget at completion {bac:,.2f}", value,
            )
    if status.status_date < start:
        raise _problem(
            (*at, "status_date"), "status_before_start",
            f"status_date {status.status_date} is before start_date {start}",
            str(status.status_date),
        )
    if (status.status_date - start).days >= duration and status.pv < bac * (1 - EVM_REL_TOL):
        raise _problem(
            (*at, "pv"), "pv_below_bac_after_finish",
            f"pv {status.pv:,.2f} must equal the budget at completion {bac:,.2f} once the planned "
            f"finish ({duration} days after start_date) has passed", status.pv,
        )


ProjectRequest = create_model(
    "ProjectRequest",
    __base__=_ProjectRules,
    __doc__="One project as the data contract describes it at intake; add `status` in flight.",
    project_id=(str | None, Field(None, max_length=200, description="your id, echoed back")),
    **{name: _field(column("projects", name)) for name in INTAKE_COLUMNS},
    status=(StatusReport | None, Field(None, description="latest status snapshot, if in flight")),
)
ProjectRequest.model_config["json_schema_extra"] = {
    "examples": [EXAMPLE_PROJECT, {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}]
}
ProjectRequest.model_rebuild(force=True)


class EvmRequest(BaseModel):
    """The inputs of the earned-value and earned-schedule metrics of one project."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_EVM]})

    project_id: str | None = Field(None, max_length=200, description="your id, echoed back")
    bac: Annotated[float, _field(column("projects", "budget_at_completion"))[1]]
    pv: Annotated[float, _snapshot("pv")[1]]
    ev: Annotated[float, _snapshot("ev")[1]]
    ac: Annotated[float, _snapshot("ac")[1]]
    start_date: date = Field(description="planned (= actual) start date [ISO date]")
    planned_duration_days: Annotated[int, _field(column("projects", "planned_duration_days"))[1]]
    status_date: date = Field(description="date of the status report [ISO date]")

    @model_validator(mode="after")
    def _check_rules(self) -> EvmRequest:
        _check_status(self, self.bac, self.start_date, self.planned_duration_days, ())
        return self


def one_or_many(model: type[BaseModel]) -> Any:
    """Body type accepting one object or a non-empty list of them, with clean error paths."""
    return Annotated[
        Union[
            Annotated[model, Tag(SINGLE)],
            Annotated[list[model], Field(min_length=1), Tag(BATCH)],
        ],
        Discriminator(lambda value: BATCH if isinstance(value, list) else SINGLE),
    ]


ProjectBody = one_or_many(ProjectRequest)
EvmBody = one_or_many(EvmRequest)

# --- responses ---------------------------------------------------------------------------------

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


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(description="path to the field, e.g. body[3].status.ev")
    problem: str = Field(description="what is wrong with it")
    type: str = Field(description="machine-readable error type")


class ErrorResponse(BaseModel):
    """Every error the API returns: a stable code, a message and, for 422, the problems."""

    error: str = Field(description="validation_error, payload_too_large, models_not_ready, ...")
    message: str
    problems: list[Problem] = Field(default_factory=list)


class Health(BaseModel):
    """Liveness (always ok while the process serves) or readiness (models loaded)."""

    status: Literal["ok", "ready", "not_ready"]
    detail: str | None = None
    models: dict[str, str] = Field(default_factory=dict, description="task -> served version")
    missing: dict[str, str] = Field(default_factory=dict,
                                    description="task -> why its model is not served")


class ModelRef(BaseModel):
    """Which registered model answered."""

    name: str
    version: str
    alias: str


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

    output_space: str = Field(description="e.g. log(duration_days / planned_duration_days)")
    base_value: float
    prediction: float = Field(description="the P50 in the output space, log(P50 / planned)")
    contributions: list[Contribution] = Field(description="sorted by |contribution|, top_k")
    other_features_contribution: float = Field(description="sum over features left out by top_k")


class Forecast(BaseModel):
    """One family's forecast of one project (family-specific fields are null for the others)."""

    stage: Literal["intake", "inflight"] = Field(description="inflight when status was given")
    quantity: str = Field(description="duration_days, cost or effort_hours")
    unit: str
    prediction: float = Field(description="point forecast (= P50)")
    interval: Interval = Field(description="conformalised P10/P50/P90")
    delay_days: Interval | None = Field(None, description="delay: duration minus plan")
    probability_late: float | None = Field(None, description="delay: calibrated P(late)")
    late_threshold: float | None = Field(None, description="delay: late = beyond plan x (1+t)")
    finish_date: dict[str, date | None] | None = Field(
        None, description="delay: start + P10/P50/P90 (null past 9999-12-31)")
    overrun_pct: Interval | None = Field(None, description="overrun: cost over BAC in percent")
    effort_by_role: dict[str, Interval] | None = Field(None, description="resource: hours/role")
    monthly_profile: dict[str, Any] | None = Field(
        None, description="resource: {months, hours: {role: [P50 hours per planned month]}}"
    )
    explanation: Explanation


class PredictionResult(Forecast):
    """One project's forecast from one model."""

    project_id: str | None = None
    model: ModelRef


class PredictionItem(Forecast):
    project_id: str | None = None


class PredictionBatchResult(BaseModel):
    """A batch's forecasts in request order."""

    model: ModelRef
    count: int
    items: list[PredictionItem]


class EvmComparison(BaseModel):
    """The model's P50 next to the earned-value index forecasts of the same quantity."""

    planned: float
    model_p50: float
    model_interval: Interval
    evm: dict[str, float | None] = Field(description="index forecast -> value (null: undefined)")


class Assessment(BaseModel):
    """All three forecasts of one project, plus OPM metrics when status data was given."""

    project_id: str | None = None
    forecasts: dict[str, Forecast] = Field(description="delay, overrun, resource-demand")
    opm_metrics: EvmResult | None = Field(None, description="only with `status`")
    evm_comparison: dict[str, EvmComparison] | None = Field(
        None, description="quantity -> model vs EVM index forecasts; only with `status`"
    )
    evm_forecast_finish_date: date | None = Field(
        None, description="start + IEAC(t), next to forecasts.delay.finish_date"
    )


class AssessmentResult(Assessment):
    models: dict[str, ModelRef]


class AssessmentBatchResult(BaseModel):
    models: dict[str, ModelRef]
    count: int
    items: list[Assessment]


class ServedModelInfo(BaseModel):
    """A served model: registry identity, when it was trained, how well, on what data."""

    task: str
    name: str
    version: str
    alias: str
    run_id: str | None
    trained_at: str | None = Field(description="end of the training run (UTC, ISO 8601)")
    metrics: dict[str, float] = Field(description="training-run metrics (held-out evaluation)")
    lineage_digest: str | None = Field(
        description="sha256 over the run's logged input datasets (name, context, digest)"
    )
    datasets: list[dict[str, str]] = Field(default_factory=list)


class ModelsInfo(BaseModel):
    loaded_at: str
    models: list[ServedModelInfo]


# ---------------------------------------------------------------------------------------------
# Intake scoring and portfolio selection (POST /v1/intake/score, /v1/portfolio/optimize),
# served by serving/routers/intake.py over opm_ml.intake.
# ---------------------------------------------------------------------------------------------

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


# A judgement [a, b, value]: a is `value` times as important as b (Saaty's 1/9..9 scale).
SaatyValue = Annotated[float | str, Field(description="1..9, or 1/9..1 when b is the more "
                                          "important; a number or a fraction such as \"1/3\"")]
Judgement = tuple[str, str, SaatyValue]


class IntakeWeights(BaseModel):
    """Weights for one call instead of the scorecard's: typed, or pairwise comparisons (AHP)."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="criterion -> weight (normalised to sum 1)")
    criteria_comparisons: list[Judgement] | None = Field(
        None, max_length=105, description="AHP judgements of every pair of criteria, "
        "[a, b, value]; refused when the consistency ratio is above 0.1")
    objectives: dict[str, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="objective (strategic driver) -> weight, for alignment scores")
    objective_comparisons: list[Judgement] | None = Field(
        None, max_length=105, description="AHP judgements of every pair of objectives")

    @model_validator(mode="after")
    def _check_weights(self) -> IntakeWeights:
        # Structure, completeness and consistency here; objective names against the scorecard
        # when it is applied (the router answers that with a 422 on the same field).
        try:
            weighting.resolve("weights", self.weights, "criteria_comparisons",
                              self.criteria_comparisons, INTAKE_CRITERIA, "criterion")
            weighting.resolve("objectives", self.objectives, "objective_comparisons",
                              self.objective_comparisons, None, "objective")
        except weighting.WeightsError as exc:
            raise _problem((exc.field,), "invalid_weights", exc.problem, None) from None
        return self

    def overrides(self) -> dict[str, Any]:
        """The weights given, as `ScorecardConfig.with_weights` takes them."""
        return self.model_dump(include=set(IntakeWeights.model_fields), exclude_none=True)


class IntakeScoreRequest(IntakeWeights):
    """Candidates and, optionally, the weights to score them with."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[IntakeCandidate] = Field(min_length=1)


# The body of POST /v1/intake/score: a list of candidates, or {"candidates": [...], weights}.
IntakeScoreBody = Annotated[
    Union[
        Annotated[IntakeScoreRequest, Tag(SINGLE)],
        Annotated[list[IntakeCandidate], Field(min_length=1), Tag(BATCH)],
    ],
    Discriminator(lambda value: BATCH if isinstance(value, list) else SINGLE),
]


class IntakeDriver(BaseModel):
    feature: str
    contribution: float = Field(description="SHAP value, log(P50 / planned) space")


class WeightInterval(BaseModel):
    weight: float = Field(description="the criterion's weight now")
    low: float = Field(description="lowest weight (others rescaled) keeping the class")
    high: float = Field(description="highest weight keeping the class")
    below: str | None = Field(description="class under `low`; null: the class holds down to 0")
    above: str | None = Field(description="class over `high`; null: the class holds up to 1")


class PipelinePlace(BaseModel):
    rank: int = Field(description="1 = highest score of the open pipeline, this candidate in it")
    size: int = Field(description="open candidates compared, this one included")
    percentile: float | None = Field(
        description="% of the other open candidates scoring lower (ties half); null if none")


class ScoredCandidate(BaseModel):
    rank: int = Field(description="position in this answer (musts first); see `pipeline`")
    project_id: str
    name: str | None = None
    moscow: Literal["must", "should", "could", "won't"]
    score: float = Field(description="0-100, the sum of `points`; the same in any batch")
    points: dict[str, float] = Field(description="criterion -> weight x score x 100")
    criterion_scores: dict[str, float] = Field(description="criterion -> 0..1 score")
    measures: dict[str, float | None] = Field(
        description="criterion -> the measure its fixed scale maps to 0..1 (null: unbounded)")
    sensitivity: dict[str, WeightInterval] = Field(
        description="criterion -> weight range keeping the MoSCoW class")
    pipeline: PipelinePlace | None = Field(description="place among the open pipeline")
    finance: dict[str, float | str | None] = Field(
        description="npv, roi, payback_years, irr (null + irr_note when none), total_cost")
    risk: dict[str, float] = Field(
        description="delay/overrun quantiles, P(late), expected cost, risk-adjusted NPV, "
        "P50 effort hours in total and by role")
    top_drivers: dict[str, list[IntakeDriver]]


class WeightsUsed(BaseModel):
    weights: dict[str, float]
    source: Literal["typed", "pairwise comparisons"]
    lambda_max: float | None = None
    consistency_ratio: float | None = None


class PipelineSummary(BaseModel):
    kept: list[str] = Field(description="ids kept (entered or replaced) by this call")
    open: int = Field(description="open candidates in the pipeline")
    compared: int = Field(description="open candidates scored with this scorecard")
    not_comparable: int = Field(description="open candidates scored with another scorecard")


class IntakeScorecardInfo(BaseModel):
    scorecard_version: str
    scorecard_digest: str = Field(description="sha256 of the scorecard file")
    reference_digest: str | None = Field(description="sha256 of its reference population")
    weights: dict[str, WeightsUsed] = Field(description="criteria and objectives weights used")


class IntakeScoreResult(IntakeScorecardInfo):
    models: dict[str, ModelRef]
    pipeline: PipelineSummary
    count: int
    items: list[ScoredCandidate] = Field(description="ranked, best first")


class _StoredCandidate(BaseModel):
    project_id: str
    name: str | None
    scorecard_version: str
    scorecard_digest: str
    criterion_scores: dict[str, float] = Field(description="criterion -> 0..1, weight-free")
    alignment: dict[str, float] | None = Field(description="null: the contract's strategic_fit")
    moscow: str = Field(description="class when kept")
    mandatory: bool
    risk_adjusted_npv: float
    kept_at: str


class PipelineEntry(_StoredCandidate):
    pipeline_rank: int
    score: float = Field(description="score under the scorecard's weights")
    score_when_kept: float = Field(description="as answered when kept (that call's weights)")


class PipelineListing(IntakeScorecardInfo):
    count: int
    not_comparable: int = Field(description="open entries scored with another scorecard")
    entries: list[PipelineEntry] = Field(description="ranked by score")


class ClosedEntry(_StoredCandidate):
    score: float = Field(description="as answered when kept")
    closed_at: str
    close_reason: str


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


class PortfolioRequest(IntakeWeights):
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
    scorecard_digest: str
    reference_digest: str | None
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


# --------------------------------------------------------------------------------------------
# Planner dashboard (/v1/dashboard/...): the JSON behind the page and the HTML report.
# --------------------------------------------------------------------------------------------


class DashboardProjectRow(BaseModel):
    """One row of the portfolio table; colours by `DashboardPortfolio.thresholds`."""

    project_id: str
    project_type: str
    status_date: date | None = Field(description="latest snapshot; null: intake forecast")
    probability_late: float
    delay_days_p50: float
    overrun_pct_p50: float
    overrun_cost_p50: float = Field(description="P50 cost minus BAC (currency): the impact")
    spi: float | None
    cpi: float | None
    rag_probability_late: str
    rag_overrun_pct_p50: str
    rag_spi: str
    rag_cpi: str
    rag: str = Field(description="worst of the four: red, amber, green (grey: unknown)")


class DashboardPortfolio(BaseModel):
    thresholds: dict[str, dict[str, Any]] = Field(
        description="per column: amber and red limits and whether higher or lower is worse")
    count: int
    projects: list[DashboardProjectRow]


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
