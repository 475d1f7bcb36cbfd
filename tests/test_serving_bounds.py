"""Bounds on what one request may ask: finite numbers within the contract's ranges, batches
counted before any item is validated, portfolio problems and solver time capped, and a
server-wide limit on scoring so a burst waits or gets a 503, never the out-of-memory killer.

Issue 13, items 4 and 8: each test reproduces what a client could do before the fix.
"""

import asyncio
import json
import math
import re

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.evm import EXAMPLE_EVM
from serving.schemas.intake import EXAMPLE_CANDIDATE
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

CONSTRAINTS = {"start_month": "2025-01", "months": 24, "budget": {"2025": 6e6, "2026": 2e6},
               "capacity": {"build": 4000, "testing": 2000}}


@pytest.fixture(scope="module")
def loaded(small_registry):
    settings, _ = small_registry
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    return settings, store


def client_for(loaded, **overrides) -> TestClient:
    settings, store = loaded
    return TestClient(create_app(settings.model_copy(update=overrides), store))


@pytest.fixture(scope="module")
def client(loaded) -> TestClient:
    return client_for(loaded, max_batch=20)


def post_text(client: TestClient, path: str, body) -> httpx.Response:
    """POST `body` as Python's JSON writes it: NaN and Infinity as the bare words a hostile or
    careless client sends (the standard library's parser accepts them)."""
    return client.post(path, content=json.dumps(body),
                       headers={"content-type": "application/json"})


def problem_fields(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {p["field"]: p["problem"] for p in response.json()["problems"]}


def assert_finite_json(response: httpx.Response) -> None:
    """Strict JSON: a bare NaN or Infinity anywhere would fail this parse."""
    json.loads(response.text, parse_constant=lambda word: pytest.fail(f"{word} in the answer"))


# --- item 4: valid JSON, no 500, no infinity ----------------------------------------------------


def test_the_issues_overflowing_status_is_a_422_on_ac_not_a_500(client):
    body = {**EXAMPLE_PROJECT, "budget_at_completion": 1, "planned_effort_hours": 1e8,
            "status": {**EXAMPLE_STATUS, "pv": 0.5, "ev": 0.5, "ac": 1e300}}
    fields = problem_fields(client.post("/v1/projects/assess", json=body))
    assert list(fields) == ["body.status.ac"]
    assert "less than or equal to 1000000000000" in fields["body.status.ac"]


def test_an_effort_forecast_that_overflows_is_null_not_infinity(client):
    """Within every bound, EAC = BAC x AC / EV is finite (1e302) but scaling it to effort hours
    (x 1e8 hours per currency unit) overflows: the comparison says null instead of a 500."""
    body = {**EXAMPLE_PROJECT, "budget_at_completion": 1, "planned_effort_hours": 1e8,
            "status": {**EXAMPLE_STATUS, "pv": 0.5, "ev": 1e-290, "ac": 1e12,
                       "percent_complete": 0.0}}
    response = client.post("/v1/projects/assess", json=body)
    assert response.status_code == 200, response.text
    assert_finite_json(response)
    answer = response.json()
    assert answer["opm_metrics"]["metrics"]["eac_cpi"] == pytest.approx(1e302)
    effort = answer["evm_comparison"]["effort_hours"]["evm"]
    assert effort and all(v is None for v in effort.values()), effort
    cost = answer["evm_comparison"]["cost"]["evm"]
    assert cost["eac_cpi"] == pytest.approx(1e302)  # unscaled, still a number


@pytest.mark.parametrize("field", ["cost_by_year", "benefits_by_year"])
def test_yearly_amounts_are_bounded(client, field):
    response = client.post("/v1/intake/score", json=[{**EXAMPLE_CANDIDATE, field: [1e308, 1e308]}])
    fields = problem_fields(response)
    assert set(fields) == {f"body[0].{field}[0]", f"body[0].{field}[1]"}


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_infinity_and_nan_are_refused_in_every_intake_number(client, bad):
    candidate = {**EXAMPLE_CANDIDATE, "cost_by_year": [bad, 1.0], "benefits_by_year": [1.0, bad]}
    fields = problem_fields(post_text(client, "/v1/intake/score", [candidate]))
    assert set(fields) == {"body[0].cost_by_year[0]", "body[0].benefits_by_year[1]"}
    assert all("finite number" in p or "greater than or equal" in p for p in fields.values())

    constraints = {**CONSTRAINTS, "budget": {"2025": bad}, "frontier_scales": [1.0, bad],
                   "capacity": {"build": bad, "testing": [bad] * 24}}
    body = {"candidates": [EXAMPLE_CANDIDATE], "constraints": constraints}
    fields = problem_fields(post_text(client, "/v1/portfolio/optimize", body))
    for name in ("budget.2025", "frontier_scales[1]", "capacity.build", "capacity.testing"):
        assert any(f.startswith(f"body.constraints.{name}") for f in fields), (name, fields)
    weights = {"candidates": [EXAMPLE_CANDIDATE], "weights": {"financial_value": bad}}
    assert "body.weights.financial_value" in problem_fields(
        post_text(client, "/v1/intake/score", weights))


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_infinity_and_nan_are_refused_in_project_and_evm_bodies(client, bad):
    body = {**EXAMPLE_PROJECT, "status": {**EXAMPLE_STATUS, "ac": bad}}
    assert "body.status.ac" in problem_fields(post_text(client, "/v1/projects/assess", body))
    assert "body.bac" in problem_fields(post_text(client, "/v1/metrics/evm",
                                                  {**EXAMPLE_EVM, "bac": bad}))


# --- item 8: work bounds before the work ----------------------------------------------------------


@pytest.mark.parametrize(("path", "wrap"), [
    ("/v1/metrics/evm", lambda items: items),
    ("/v1/intake/score", lambda items: items),
    ("/v1/intake/score", lambda items: {"candidates": items}),
    ("/v1/portfolio/optimize", lambda items: {"candidates": items, "constraints": CONSTRAINTS}),
])
def test_a_batch_over_the_limit_is_counted_before_any_item_is_validated(client, path, wrap):
    """21 invalid items: validating them first answered a 422 listing 21 items' problems;
    counting first refuses the batch without looking inside it."""
    response = client.post(path, json=wrap([{"not": "an item"}] * 21))
    assert response.status_code == 413, response.text
    assert "batch of 21 items exceeds the limit of 20" in response.json()["message"]
    assert client.post(path, json=wrap([{"not": "an item"}] * 20)).status_code == 422


def test_a_portfolio_problem_too_large_is_refused_before_scoring(loaded):
    client = client_for(loaded, max_portfolio_cells=1_000)
    candidates = [{**EXAMPLE_CANDIDATE, "project_id": f"C-{i}"} for i in range(20)]
    body = {"candidates": candidates, "constraints": CONSTRAINTS}
    # 20 candidates x (2 budget years + 2 roles x 24 months) = 1,000 fits; a third role does not.
    assert client.post("/v1/portfolio/optimize", json=body).status_code == 200
    bigger = {**CONSTRAINTS, "capacity": {**CONSTRAINTS["capacity"], "design": 100}}
    fields = problem_fields(client.post("/v1/portfolio/optimize",
                                        json={**body, "constraints": bigger}))
    assert list(fields) == ["body.constraints"]
    assert re.search(r"1,480 cells \(20 candidates x 74 rows.*at most 1,000 "
                     r"\(OPM_ML_MAX_PORTFOLIO_CELLS\)", fields["body.constraints"])


def test_the_total_solver_time_is_capped_and_the_422_says_so(loaded):
    client = client_for(loaded, max_solver_seconds=30)
    body = {"candidates": [EXAMPLE_CANDIDATE], "constraints": CONSTRAINTS,
            "time_limit_seconds": 120}
    fields = problem_fields(client.post("/v1/portfolio/optimize", json=body))
    assert fields == {"body.time_limit_seconds": (
        "time_limit_seconds 120 allows 240 s of solving (the optimisation, then the frontier's "
        "re-solves sharing the limit again); this server allows 30 s per call "
        "(OPM_ML_MAX_SOLVER_SECONDS): use at most 15")}
    no_frontier = {**body, "time_limit_seconds": 20,
                   "constraints": {**CONSTRAINTS, "frontier_scales": []}}
    assert client.post("/v1/portfolio/optimize", json=no_frontier).status_code == 200


async def with_slot_held(app, then):
    """Run `then(api)` while one request holds a scoring slot: its body is still on its way
    (the limit is taken before the body is read). Returns (holder's answer, then's result)."""
    release = asyncio.Event()

    async def slow_body():
        await release.wait()
        yield json.dumps(EXAMPLE_EVM).encode()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as api:
        holder = asyncio.create_task(api.post("/v1/metrics/evm", content=slow_body(),
                                              headers={"content-type": "application/json"}))
        await asyncio.sleep(0.2)  # the holder takes the slot and waits for its body
        result = await then(api, release)
        release.set()
        return await holder, result


def test_a_burst_of_scoring_waits_for_a_slot_or_gets_503_with_retry_after(loaded):
    """One slot and one queue place: the first request holds the slot, the second waits, the
    third is refused at once; liveness never waits."""
    app = client_for(loaded, scoring_concurrency=1, scoring_queue=1,
                     scoring_queue_seconds=30).app

    async def burst(api, release):
        waiter = asyncio.create_task(api.post("/v1/metrics/evm", json=EXAMPLE_EVM))
        await asyncio.sleep(0.2)
        refused = await api.post("/v1/projects/assess", json=EXAMPLE_PROJECT)
        alive = await api.get("/healthz")
        assert not waiter.done()
        release.set()
        return await waiter, refused, alive

    holder, (waiter, refused, alive) = asyncio.run(with_slot_held(app, burst))
    assert holder.status_code == waiter.status_code == 200, (holder.text, waiter.text)
    assert alive.status_code == 200
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "15"
    assert refused.json()["error"] == "overloaded"
    assert "(1 running, 1 waiting) and the queue is full" in refused.json()["message"]


def test_a_request_that_waits_too_long_for_its_turn_gets_503(loaded):
    app = client_for(loaded, scoring_concurrency=1, scoring_queue=4,
                     scoring_queue_seconds=0.3).app

    async def late(api, release):
        return await api.post("/v1/metrics/evm", json=EXAMPLE_EVM)

    holder, late = asyncio.run(with_slot_held(app, late))
    assert holder.status_code == 200
    assert late.status_code == 503 and late.headers["Retry-After"] == "1"
    assert "no turn came within 0.3 s" in late.json()["message"]
