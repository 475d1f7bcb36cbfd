"""Intake scoring and portfolio selection (`POST /v1/intake/score`, `/v1/portfolio/optimize`,
the open pipeline), served by serving/routers/intake.py over opm_ml.intake.

The candidate is a project at intake plus its business case. With the contract's models it is
`IntakeCandidate` below; with models trained on a dataset profile, `intake_models(manifest)`
builds the same request bodies around that profile's own `ProjectRequest`, so the routes and
/docs follow the served models as the project routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from opm_ml.contract import BUSINESS_FIELDS, MAX_AMOUNT
from opm_ml.features import contract_manifest
from opm_ml.forecasting.families import FAMILIES
from opm_ml.manifest import FeatureManifest
from opm_ml.intake import weighting
from opm_ml.intake.candidates import scoring_fields
from opm_ml.intake.scorecard import CRITERIA as INTAKE_CRITERIA
from serving.schemas.common import ModelRef, request_config
from serving.schemas.evm import BATCH, SINGLE
from serving.schemas.projects import EXAMPLE_PROJECT, examples, project_request

# Candidates are projects at intake as the contract describes them, plus a business case.
ProjectRequest = project_request(contract_manifest())
# Bounds that keep sums, ratios and discounting of the numbers below finite.
Amount = Annotated[float, Field(ge=0, le=MAX_AMOUNT, description="currency")]
Weight = Annotated[float, Field(ge=0, le=1e6)]
Hours = Annotated[float, Field(ge=0, le=1e9, description="role hours in one month")]


def _problem(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> ValidationError:
    """A validation error at `loc` (relative to the model) so the 422 names the exact field."""
    return ValidationError.from_exception_data(
        "request", [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)]
    )


EXAMPLE_CANDIDATE: dict[str, Any] = {
    **EXAMPLE_PROJECT, "project_id": "C-001", "name": "CRM replacement",
    "discount_rate": 0.08, "cost_by_year": [2_400_000.0, 0.0, 0.0, 0.0],
    "benefits_by_year": [0.0, 1_200_000.0, 1_400_000.0, 1_400_000.0],
    "mandatory": False, "regulatory": False,
    "alignment": {"customer_experience": 8, "cost_efficiency": 6, "compliance": 3},
}


class IntakeCandidate(ProjectRequest):
    """A candidate project: contract intake fields plus its business case (no status)."""

    model_config = request_config(json_schema_extra={"examples": [EXAMPLE_CANDIDATE]})

    project_id: str = Field(max_length=200, description="candidate id, used in constraints")
    name: str | None = Field(None, max_length=200)
    status: None = Field(None, description="not used at intake")
    discount_rate: float = Field(ge=0, lt=1, description="annual discount rate, 0.08 = 8 %")
    cost_by_year: list[Amount] | None = Field(
        None, max_length=50, description="cost per project year (year 1 = first 12 months from "
        "start_date); omitted: budget_at_completion spread evenly over the planned months")
    benefits_by_year: list[Amount] | None = Field(
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

    model_config = request_config()

    weights: dict[str, Weight] | None = Field(
        None, description="criterion -> weight (normalised to sum 1)")
    criteria_comparisons: list[Judgement] | None = Field(
        None, max_length=105, description="AHP judgements of every pair of criteria, "
        "[a, b, value]; refused when the consistency ratio is above 0.1")
    objectives: dict[str, Weight] | None = Field(
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

    model_config = request_config()

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
    risk: dict[str, float | None] = Field(
        description="delay/overrun quantiles, P(late), expected cost, risk-adjusted NPV, "
        "P50 effort hours in total and by role (null: the profile has no model for it)")
    top_drivers: dict[str, list[IntakeDriver]]
    warnings: list[str] | None = Field(
        None, description="category values the models never saw (treated as missing)")


class WeightsUsed(BaseModel):
    weights: dict[str, float]
    source: Literal["typed", "pairwise comparisons"]
    lambda_max: float | None = None
    consistency_ratio: float | None = None


class PipelineSummary(BaseModel):
    kept: list[str] = Field(description="ids kept (entered or replaced) by this call")
    open: int = Field(description="open candidates in the pipeline")
    compared: int = Field(description="open candidates scored with this scorecard against "
                                      "the same reference population")
    not_comparable: int = Field(description="open candidates scored with another scorecard or "
                                            "reference population")


class IntakeScorecardInfo(BaseModel):
    scorecard_version: str
    scorecard_digest: str = Field(description="sha256 of the scorecard file")
    reference_digest: str | None = Field(description="sha256 of its reference population")
    weights: dict[str, WeightsUsed] = Field(description="criteria and objectives weights used")


class IntakeScoreResult(IntakeScorecardInfo):
    models: dict[str, ModelRef]
    profile: str | None = Field(None, description="the dataset profile the models read (absent "
                                "for the contract)")
    notes: list[str] | None = Field(None, description="what a model family the profile lacks "
                                    "changes (it counts neutrally)")
    pipeline: PipelineSummary
    count: int
    items: list[ScoredCandidate] = Field(description="ranked, best first")


class _StoredCandidate(BaseModel):
    project_id: str
    name: str | None
    scorecard_version: str
    scorecard_digest: str
    reference_digest: str | None = Field(
        description="the population its percentile scales compared with (the scorecard's "
        "reference or the profile's past projects); null: none, neutral; 'unknown': kept before "
        "references were recorded, with a scorecard not known then")
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
    not_comparable: int = Field(description="open entries scored with another scorecard or "
                                            "reference population")
    entries: list[PipelineEntry] = Field(description="ranked by score")


class ClosedEntry(_StoredCandidate):
    score: float = Field(description="as answered when kept")
    closed_at: str
    close_reason: str


class PortfolioConstraints(BaseModel):
    model_config = request_config()

    start_month: str = Field(pattern=r"^\d{4}-\d{2}$", description="first horizon month")
    months: int = Field(ge=1, le=600)
    budget: dict[str, Amount] = Field(description="calendar year -> budget")
    capacity: dict[str, Hours | list[Hours]] = Field(
        description="role -> hours per month (one number, or one per horizon month)")
    dependencies: list[tuple[str, str]] = Field(default_factory=list, max_length=10_000,
                                                description="[project, requires]")
    exclusions: list[tuple[str, str]] = Field(default_factory=list, max_length=10_000)
    frontier_scales: list[Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5], max_length=20)


class PortfolioRequest(IntakeWeights):
    model_config = request_config()

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
    profile: str | None = Field(None, description="the dataset profile (absent: the contract)")
    notes: list[str] | None = Field(None, description="what a family the profile lacks changes")


# --- request bodies of the served manifest ------------------------------------------------------

_SCORING_FIELD = {
    "expected_benefits": (Amount | None, Field(
        None, description="the stated business case (currency); with no benefits_by_year, "
        "spread evenly over the 3 years after the planned finish")),
    "strategic_fit": (float | None, Field(
        None, ge=0, le=10, description="0-10 fit with strategy; required unless `alignment` "
        "scores every objective")),
}


@dataclass(frozen=True)
class IntakeModels:
    """The request bodies of the intake routes for one manifest."""

    candidate: type[BaseModel]
    score_body: Any  # a list of candidates, or a score request
    portfolio: type[BaseModel]
    score_examples: dict[str, dict]
    portfolio_examples: dict[str, dict]

    @cached_property
    def _score_adapter(self) -> TypeAdapter:
        return TypeAdapter(self.score_body)

    def parse_score(self, body: Any):
        """The body as FastAPI would validate it (pydantic ValidationError otherwise)."""
        return self._score_adapter.validate_python(body, from_attributes=True)

    def parse_portfolio(self, body: Any):
        return self.portfolio.model_validate(body, from_attributes=True)


_INTAKE: dict[str, IntakeModels] = {}
_EXAMPLE_CONSTRAINTS = {
    "start_month": "2025-01", "months": 24, "budget": {"2025": 6_000_000, "2026": 2_000_000},
    "capacity": {"management": 1_000, "analysis": 2_000, "design": 2_000, "build": 4_000,
                 "testing": 2_000, "deployment": 1_500},
}
# A second candidate with only a stated business case (no yearly profiles) and a must-do flag.
_STATED = {k: v for k, v in EXAMPLE_CANDIDATE.items() if not k.endswith("_by_year")}
_STATED.update(project_id="C-002", name="Regulatory reporting", regulatory=True)
CONTRACT = IntakeModels(
    IntakeCandidate, IntakeScoreBody, PortfolioRequest,
    {"one": {"summary": "one candidate with yearly costs and benefits",
             "value": [EXAMPLE_CANDIDATE]},
     "batch": {"summary": "a batch; the second has only a stated business case and is a must",
               "value": [EXAMPLE_CANDIDATE, _STATED]},
     "ahp": {"summary": "weights from pairwise comparisons (AHP) of the criteria",
             "value": {"candidates": [EXAMPLE_CANDIDATE], "criteria_comparisons": [
                 ["financial_value", "strategic_fit", 2], ["financial_value", "risk", 3],
                 ["financial_value", "resource_load", 5], ["strategic_fit", "risk", 2],
                 ["strategic_fit", "resource_load", 3], ["risk", "resource_load", 2]]}}},
    {"simple": {"summary": "candidates with budget and capacity limits",
                "value": {"candidates": [EXAMPLE_CANDIDATE, _STATED],
                          "constraints": _EXAMPLE_CONSTRAINTS}},
     "logic": {"summary": "the same with an exclusion between the two",
               "value": {"candidates": [EXAMPLE_CANDIDATE, _STATED],
                         "constraints": {**_EXAMPLE_CONSTRAINTS,
                                         "exclusions": [["C-001", "C-002"]]}}}},
)


def candidate_example(manifest: FeatureManifest) -> dict[str, Any]:
    """A candidate of the profile for the docs: its real example project plus a business case."""
    project, _ = examples(manifest)
    cost = float(project.get("budget_at_completion") or 1_000_000.0)
    example = {**project, "project_id": "C-001", "name": "first candidate",
               "discount_rate": 0.08, "cost_by_year": [round(0.6 * cost, 2), round(0.4 * cost, 2)],
               "benefits_by_year": [0.0, round(0.5 * cost, 2), round(0.7 * cost, 2),
                                    round(0.7 * cost, 2)],
               "mandatory": False, "regulatory": False}
    if "strategic_fit" in scoring_fields(manifest):
        example["strategic_fit"] = 7.0
    return example


def intake_models(manifest: FeatureManifest) -> IntakeModels:
    """The intake bodies of `manifest`: the contract's classes for the contract, else built
    once per manifest digest around the profile's `ProjectRequest`."""
    if manifest.profile == "contract":
        return CONTRACT
    if manifest.digest not in _INTAKE:
        _INTAKE[manifest.digest] = _profile_models(manifest)
    return _INTAKE[manifest.digest]


def _profile_models(manifest: FeatureManifest) -> IntakeModels:
    base = project_request(manifest)
    example = candidate_example(manifest)
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in
                              IntakeCandidate.model_fields.items() if name in BUSINESS_FIELDS}
    # The defaults spread the plan; what a profile cannot spread the candidate must give.
    if not (manifest.has("budget_at_completion") and manifest.has("planned_duration_days")):
        fields["cost_by_year"] = (list[Amount], Field(
            min_length=1, max_length=50, description="cost per project year (year 1 = first "
            f"12 months from start_date); required: profile {manifest.profile} has no "
            "budget_at_completion and planned_duration_days to spread"))
    if not manifest.has("planned_duration_days"):
        fields["benefits_by_year"] = (list[Amount], Field(
            min_length=1, max_length=50, description="benefit per project year; required: "
            f"profile {manifest.profile} has no planned_duration_days to place them after"))
    fields.update({name: _SCORING_FIELD[name] for name in scoring_fields(manifest)})

    # Forecasts need only their own family's planned value, but intake ranks a candidate on
    # every family the profile serves: each of their planned values is required here.
    planned = {FAMILIES[f].planned: f for f in manifest.families
               if FAMILIES[f].planned in base.model_fields}

    class ProfileCandidate(base):
        model_config = request_config(json_schema_extra={"examples": [example]})

        @model_validator(mode="after")
        def _planned_values(self):
            for name, family in planned.items():
                if getattr(self, name) is None:
                    raise _problem((name,), "missing", f"Field required: intake scoring weighs "
                                   f"the {family} forecast, a multiple of {name}", None)
            return self

    candidate = create_model(
        "IntakeCandidate", __base__=ProfileCandidate, __module__=__name__,
        __doc__=f"A candidate project: the intake fields of profile {manifest.profile} plus "
                "its business case (no status).", **fields)
    request = create_model("IntakeScoreRequest", __base__=IntakeWeights, __module__=__name__,
                           __doc__=IntakeScoreRequest.__doc__,
                           candidates=(list[candidate], Field(min_length=1)))
    body = Annotated[
        Union[Annotated[request, Tag(SINGLE)],
              Annotated[list[candidate], Field(min_length=1), Tag(BATCH)]],
        Discriminator(lambda value: BATCH if isinstance(value, list) else SINGLE)]
    portfolio = create_model(
        "PortfolioRequest", __base__=IntakeWeights, __module__=__name__,
        candidates=(list[candidate], Field(min_length=1)),
        constraints=(PortfolioConstraints, ...),
        time_limit_seconds=(float, Field(10.0, gt=0, le=120)))
    second = {**example, "project_id": "C-002", "name": "second candidate", "regulatory": True}
    start = str(example.get("start_date") or "2025-01-06")[:7]
    year = int(start[:4])
    budget = sum(example["cost_by_year"])
    constraints = {"start_month": start, "months": 24,
                   "budget": {str(year): budget, str(year + 1): budget},
                   "capacity": {r: 1_000 for r in manifest.roles}}
    return IntakeModels(
        candidate, body, portfolio,
        {"one": {"summary": "one candidate with yearly costs and benefits", "value": [example]},
         "batch": {"summary": "a batch; the second is a must (regulatory)",
                   "value": [example, second]}},
        {"simple": {"summary": "candidates with budget limits"
                               + (" and capacity by role" if manifest.roles else ""),
                    "value": {"candidates": [example, second], "constraints": constraints}},
         "logic": {"summary": "the same with an exclusion between the two",
                   "value": {"candidates": [example, second],
                             "constraints": {**constraints,
                                             "exclusions": [["C-001", "C-002"]]}}}})
