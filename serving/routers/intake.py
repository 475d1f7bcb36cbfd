"""Intake over HTTP: score candidates, the open pipeline, and portfolio selection.

Thin: scoring, the pipeline and selection are `opm_ml.intake`; this maps bodies and errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from opm_ml.database import DatabaseUnavailable
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.intake.candidates import frame_from_records, parse_candidates
from opm_ml.intake.past_projects import carried, for_profile
from opm_ml.intake.pipeline import Pipeline
from opm_ml.intake.portfolio import InfeasiblePortfolio
from opm_ml.intake.report import intake_json, pipeline_json, portfolio_json, record
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scorecard import load_config
from opm_ml.intake.scoring import score_candidates
from opm_ml.intake.selection import Constraints, select_portfolio
from opm_ml.intake.weighting import WeightsError
from serving.dependencies import ERRORS, SettingsDep, StoreDep, require, served
from serving.errors import error_body, log_with_reference
from serving.requests import candidates_in, check_rows, counted_first, raise_findings
from serving.schemas.common import ErrorResponse
from serving.schemas.intake import (
    CONTRACT,
    ClosedEntry,
    IntakeScoreResult,
    IntakeWeights,
    PipelineListing,
    PortfolioResult,
    intake_models,
)

router = APIRouter(tags=["intake"])

# A dataset profile's models: the bodies are the profile's (`intake_models`), documented by
# serving.openapi; these are the contract's, as /docs shows them before any model is loaded.
ScoreBody = Annotated[Any, Body(openapi_examples=CONTRACT.score_examples)]
PortfolioBody = Annotated[Any, Body(openapi_examples=CONTRACT.portfolio_examples)]


def _parsed(parse, body: Any):
    """`parse(body)`, or the 422 FastAPI would give for a typed body (paths from `body`)."""
    try:
        return parse(body)
    except ValidationError as exc:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])}
                                      for err in exc.errors(include_url=False)]) from None


def _served(store, settings):
    """(the model set, or None before a contract load, and its intake bodies)."""
    model_set, manifest = served(store, settings)
    return model_set, intake_models(manifest)


def _score(models, items: list, weights: IntakeWeights, at: tuple[str, ...] = ("body",)):
    """Candidates -> ScoredCandidates with the served models and the call's weights; also the
    models' registry refs. WeightsError when the weights do not fit the scorecard.

    The candidates' project fields obey the same row rules as any project (422 otherwise).
    """
    config = load_config().with_weights(**weights.overrides())
    models.require_all()
    inputs = ProjectInputs.from_requests(items, models.manifest)
    raise_findings(check_rows(inputs), single=False, prefix=at)
    candidates = parse_candidates(frame_from_records([i.model_dump() for i in items]),
                                  models.manifest)
    family_models = models.family_models()
    scored = score_candidates(candidates, model_forecaster(family_models), config,
                              past=carried(family_models))
    return scored, models.refs()



def _unprocessable(error: str, exc: ValueError) -> JSONResponse:
    if isinstance(exc, WeightsError):  # name the body field, as schema errors do
        problem = {"field": f"body.{exc.field}", "problem": exc.problem, "type": "invalid_weights"}
        return JSONResponse(error_body("invalid_weights", str(exc), [problem]), status_code=422)
    return JSONResponse(error_body(error, str(exc)), status_code=422)


def _unavailable(exc: DatabaseUnavailable) -> JSONResponse:
    """503 without the database's name, host or error text: those go to the log."""
    reference = log_with_reference("the pipeline database is unavailable", exc)
    return JSONResponse(error_body("pipeline_unavailable", "the intake pipeline database is "
                                   f"unavailable; reference {reference} in the log"),
                        status_code=503, headers={"Retry-After": "30"})


@router.post("/v1/intake/score", response_model=IntakeScoreResult,
             responses={**ERRORS,
                        503: {"model": ErrorResponse,
                              "description": "a model or the pipeline database is "
                                             "unavailable, or the server is busy "
                                             "scoring (Retry-After)"}},
             summary="Score intake candidates on fixed scales; place them in the open pipeline",
             dependencies=[counted_first(candidates_in)])
def intake_score(
    body: ScoreBody, store: StoreDep, settings: SettingsDep,
    keep: Annotated[bool, Query(description="keep the candidates in the open pipeline; an id "
                                            "kept again replaces its entry")] = False,
) -> JSONResponse:
    """A list of candidates, or `{"candidates": [...]}` with `weights` / `criteria_comparisons`
    / `objectives` / `objective_comparisons`. Each answer item: fixed-scale score and MoSCoW
    class (the same alone or in any batch), points per criterion, weight-stability intervals,
    its place among the open pipeline, finance, risk-adjusted value, SHAP drivers.

    The candidates' project fields are those of the served models (the contract's, or the
    dataset profile's, as /docs shows); with a profile the answer has `profile` and `notes`
    (what a family the profile lacks changes) and an item `warnings` (unseen categories)."""
    model_set, bodies = _served(store, settings)
    parsed = _parsed(bodies.parse_score, body)
    request = parsed if not isinstance(parsed, list) else IntakeWeights.model_construct()
    candidates = parsed if isinstance(parsed, list) else parsed.candidates
    try:
        at = ("body",) if isinstance(parsed, list) else ("body", "candidates")
        scored, refs = _score(require(model_set, store), candidates, request, at)
    except ValueError as exc:
        return _unprocessable("invalid_candidates", exc)
    try:
        view = Pipeline.from_url(settings.database_url).view(scored, keep)
    except DatabaseUnavailable as exc:
        return _unavailable(exc)
    return JSONResponse({**intake_json(scored, view), "models": refs})


def _listing_config(store):
    """The scorecard as the served models' candidates are scored with it (a profile's
    percentiles compare with its own past projects); before any load, the scorecard's own."""
    config, model_set = load_config(), store.current
    if model_set is None:
        return config
    return for_profile(config, model_set.manifest.profile,
                       carried(model_set.family_models()), [])[0]


@router.get("/v1/intake/pipeline", response_model=PipelineListing,
            responses={503: {"model": ErrorResponse}},
            summary="The open intake pipeline, ranked by score")
def intake_pipeline(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Open candidates scored with the current scorecard against the reference population
    the served models score with (`reference_digest`: the scorecard's, or a dataset profile's
    past projects), ranked under its weights; entries scored with another scorecard or
    reference population are counted in `not_comparable`."""
    config = _listing_config(store)
    try:
        listing, stale = Pipeline.from_url(settings.database_url).listing(config)
    except DatabaseUnavailable as exc:
        return _unavailable(exc)
    return JSONResponse(pipeline_json(listing, stale, config))


@router.delete("/v1/intake/pipeline/{project_id}", response_model=ClosedEntry,
               responses={404: {"model": ErrorResponse, "description": "no open candidate"},
                          503: {"model": ErrorResponse}},
               summary="Close a candidate: it leaves the open pipeline, stays on record")
def intake_close(
    project_id: str, settings: SettingsDep,
    reason: Annotated[str, Query(min_length=1, max_length=200,
                                 description="approved, rejected, withdrawn ...")] = "closed",
) -> JSONResponse:
    try:
        closed = Pipeline.from_url(settings.database_url).close(project_id, reason)
    except DatabaseUnavailable as exc:
        return _unavailable(exc)
    if closed is None:
        raise HTTPException(404, f"no open candidate {project_id!r} in the pipeline")
    return JSONResponse(record(closed))


def check_work(body, settings) -> None:
    """422 before any scoring when the problem or its solver time exceeds this server's bounds.

    The size counts what the solve and its report hold densely: candidates x constraint rows.
    """
    c, problems = body.constraints, []
    rows = len(c.budget) + len(c.capacity) * c.months + len(c.dependencies) + len(c.exclusions)
    size = len(body.candidates) * rows
    if size > settings.max_portfolio_cells:
        problems.append({
            "type": "problem_too_large", "loc": ("body", "constraints"), "input": None,
            "msg": f"the problem has {size:,} cells ({len(body.candidates):,} candidates x "
                   f"{rows:,} rows: budget years + roles x months + dependencies + exclusions);"
                   f" this server solves at most {settings.max_portfolio_cells:,} "
                   "(OPM_ML_MAX_PORTFOLIO_CELLS): fewer candidates, months or roles"})
    # The frontier's re-solves share the same limit again (selection.select_portfolio).
    total = body.time_limit_seconds * (2 if c.frontier_scales else 1)
    if total > settings.max_solver_seconds:
        most = settings.max_solver_seconds / (2 if c.frontier_scales else 1)
        problems.append({
            "type": "solver_time_too_long", "loc": ("body", "time_limit_seconds"), "input": None,
            "msg": f"time_limit_seconds {body.time_limit_seconds:g} allows {total:g} s of "
                   "solving (the optimisation, then the frontier's re-solves sharing the limit "
                   f"again); this server allows {settings.max_solver_seconds:g} s per call "
                   f"(OPM_ML_MAX_SOLVER_SECONDS): use at most {most:g}"})
    if problems:
        raise RequestValidationError(problems)


@router.post("/v1/portfolio/optimize", response_model=PortfolioResult,
             responses=ERRORS,
             summary="Pick the portfolio maximising risk-adjusted value under budget and capacity",
             dependencies=[counted_first(candidates_in)])
def portfolio_optimize(body: PortfolioBody, store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Exact 0/1 integer program (HiGHS): must-do forced in, dependencies and exclusions kept.
    Infeasible constraints get a 422 naming the violated one, as does a problem larger or a
    time limit longer than the server allows (OPM_ML_MAX_PORTFOLIO_CELLS, _MAX_SOLVER_SECONDS).

    With a dataset profile the candidates are in its fields; capacity by role needs a resource
    model forecasting hours by role: without one, a capacity is a 422 saying so (leave it
    `{}`), and the answer's `notes` name what the missing families change."""
    model_set, bodies = _served(store, settings)
    body = _parsed(bodies.parse_portfolio, body)
    check_work(body, settings)
    try:
        models = require(model_set, store)
        scored, refs = _score(models, body.candidates, body, ("body", "candidates"))
        constraints = Constraints.from_dict(body.constraints.model_dump(), scored.roles,
                                            scored.no_roles)
        report = select_portfolio(scored, constraints, body.time_limit_seconds)
    except InfeasiblePortfolio as exc:
        return _unprocessable("infeasible_portfolio", exc)
    except ValueError as exc:
        return _unprocessable("invalid_portfolio_input", exc)
    return JSONResponse({**portfolio_json(report), "models": refs})
