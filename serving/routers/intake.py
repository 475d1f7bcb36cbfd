"""POST /v1/intake/score and /v1/portfolio/optimize: rank candidates, pick the portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.intake.candidates import frame_from_records, parse_candidates
from opm_ml.intake.portfolio import InfeasiblePortfolio
from opm_ml.intake.report import portfolio_json, scored_json
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scoring import score_candidates
from opm_ml.intake.selection import Constraints, select_portfolio
from serving.dependencies import ERRORS, SettingsDep, StoreDep
from serving.errors import error_body
from serving.requests import check_batch_size, check_rows, raise_findings
from serving.schemas.intake import (
    EXAMPLE_CANDIDATE,
    IntakeCandidate,
    IntakeScoreResult,
    PortfolioRequest,
    PortfolioResult,
)

router = APIRouter(tags=["intake"])

_EXAMPLE_CONSTRAINTS = {
    "start_month": "2025-01", "months": 24, "budget": {"2025": 6_000_000, "2026": 2_000_000},
    "capacity": {"management": 1_000, "analysis": 2_000, "design": 2_000, "build": 4_000,
                 "testing": 2_000, "deployment": 1_500},
}

# A second candidate with only a stated business case (no yearly profiles) and a must-do flag.
_STATED = {k: v for k, v in EXAMPLE_CANDIDATE.items() if not k.endswith("_by_year")}
_STATED.update(project_id="C-002", name="Regulatory reporting", regulatory=True)
_SCORE_EXAMPLES = {
    "one": {"summary": "one candidate with yearly costs and benefits",
            "value": [EXAMPLE_CANDIDATE]},
    "batch": {"summary": "a batch; the second has only a stated business case and is a must",
              "value": [EXAMPLE_CANDIDATE, _STATED]},
}
_PORTFOLIO_EXAMPLES = {
    "simple": {"summary": "candidates with budget and capacity limits",
               "value": {"candidates": [EXAMPLE_CANDIDATE, _STATED],
                         "constraints": _EXAMPLE_CONSTRAINTS}},
    "logic": {"summary": "the same with an exclusion between the two",
              "value": {"candidates": [EXAMPLE_CANDIDATE, _STATED],
                        "constraints": {**_EXAMPLE_CONSTRAINTS,
                                        "exclusions": [["C-001", "C-002"]]}}},
}


def _score(store, items: list[IntakeCandidate], at: tuple[str, ...] = ("body",)):
    """Candidates -> ScoredCandidates with the served models; also their registry refs.

    The candidates' project fields obey the same row rules as any project (422 otherwise).
    """
    models = store.require()
    models.require_all()
    inputs = ProjectInputs.from_requests(items, models.manifest)
    raise_findings(check_rows(inputs), single=False, prefix=at)
    candidates = parse_candidates(frame_from_records([i.model_dump() for i in items]))
    forecaster = model_forecaster(models.family_models())
    return score_candidates(candidates, forecaster), models.refs()


def _unprocessable(error: str, exc: ValueError) -> JSONResponse:
    return JSONResponse(error_body(error, str(exc)), status_code=422)


@router.post("/v1/intake/score", response_model=IntakeScoreResult, responses=ERRORS,
             summary="Rank intake candidates: finance, risk-adjusted value, scorecard, MoSCoW")
def intake_score(
    body: Annotated[list[IntakeCandidate], Body(openapi_examples=_SCORE_EXAMPLES)],
    store: StoreDep, settings: SettingsDep,
) -> JSONResponse:
    """NPV, ROI, payback, IRR; risk-adjusted NPV from the delay and overrun forecasts; P50
    effort by role; weighted scorecard points per criterion; MoSCoW class; SHAP drivers."""
    check_batch_size(len(body), settings.max_batch)
    try:
        scored, refs = _score(store, body)
    except ValueError as exc:
        return _unprocessable("invalid_candidates", exc)
    items = scored_json(scored)
    return JSONResponse({"scorecard_version": scored.config_version, "models": refs,
                         "count": len(items), "items": items})


@router.post("/v1/portfolio/optimize", response_model=PortfolioResult, responses=ERRORS,
             summary="Pick the portfolio maximising risk-adjusted value under budget and capacity")
def portfolio_optimize(
    body: Annotated[PortfolioRequest, Body(openapi_examples=_PORTFOLIO_EXAMPLES)],
    store: StoreDep, settings: SettingsDep,
) -> JSONResponse:
    """Exact 0/1 integer program (HiGHS): must-do forced in, dependencies and exclusions kept.
    Infeasible constraints get a 422 naming the violated one."""
    check_batch_size(len(body.candidates), settings.max_batch)
    try:
        scored, refs = _score(store, body.candidates, ("body", "candidates"))
        constraints = Constraints.from_dict(body.constraints.model_dump())
        report = select_portfolio(scored, constraints, body.time_limit_seconds)
    except InfeasiblePortfolio as exc:
        return _unprocessable("infeasible_portfolio", exc)
    except ValueError as exc:
        return _unprocessable("invalid_portfolio_input", exc)
    return JSONResponse({**portfolio_json(report), "models": refs})
