"""Issue 14: a candidate's score and class are the same alone and in any batch; weights per call.

The reproduced case: "CRM replacement" (the API example) scored alone, then next to a candidate
with three times its benefits. With batch min-max scaling it went from should to won't.
"""

import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_intake_scoring import CANDIDATES, api_candidates

from opm_ml.intake.ahp import priorities
from opm_ml.intake.candidates import parse_candidates, read_candidates
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scorecard import CRITERIA, load_config
from opm_ml.intake.scoring import score_candidates
from opm_ml.model_set import load_model_set
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.intake import EXAMPLE_CANDIDATE

CRM = EXAMPLE_CANDIDATE
BIGGER = {**CRM, "project_id": "C-BIG", "name": "CRM replacement, three times the benefits",
          "benefits_by_year": [3 * b for b in CRM["benefits_by_year"]]}
# Everything an item says about the candidate itself; `rank` and `pipeline` are comparisons.
OWN = ("moscow", "score", "points", "criterion_scores", "measures", "sensitivity", "finance",
       "risk", "top_drivers")
AHP = [["financial_value", "strategic_fit", 2], ["financial_value", "risk", 3],
       ["financial_value", "resource_load", 5], ["strategic_fit", "risk", 2],
       ["strategic_fit", "resource_load", 3], ["risk", "resource_load", 2]]


@pytest.fixture(scope="module")
def client(small_registry):
    store = ModelStore(small_registry[0])
    assert store.reload(wait=True), store.last_error
    return TestClient(create_app(small_registry[0], store))


def score(client, body, **params):
    response = client.post("/v1/intake/score", json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def item(answer, project_id="C-001"):
    return next(i for i in answer["items"] if i["project_id"] == project_id)


def test_the_issue_case_scores_the_same_alone_and_in_any_batch(client):
    alone = score(client, [CRM])
    config = load_config()
    assert alone["scorecard_version"] == config.version
    assert alone["scorecard_digest"] == config.digest
    assert alone["reference_digest"] == config.reference_digest
    crm = item(alone)
    for batch in ([CRM, BIGGER], [BIGGER, CRM], [BIGGER, *api_candidates(), CRM]):
        answer = score(client, batch)
        assert answer["scorecard_digest"] == alone["scorecard_digest"]
        assert {k: item(answer)[k] for k in OWN} == {k: crm[k] for k in OWN}
    # The bigger business case still scores higher, by its own figures.
    bigger = item(score(client, [CRM, BIGGER]), "C-BIG")
    assert bigger["measures"]["financial_value"] > crm["measures"]["financial_value"]
    assert bigger["score"] > crm["score"]


def test_every_example_candidate_scores_the_same_alone_as_in_the_batch(small_registry):
    settings = small_registry[0]
    forecaster = model_forecaster(load_model_set(settings).family_models())
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    batch = score_candidates(read_candidates(CANDIDATES), forecaster).table
    own = ["moscow", "score", *(f"{p}_{c}" for c in CRITERIA for p in ("points", "score")),
           *(f"stable_{e}_{c}" for c in CRITERIA for e in ("low", "high"))]
    for i in range(len(frame)):
        # One row as its own CSV would have it: no empty year columns.
        one = parse_candidates(frame.iloc[[i]].dropna(axis=1, how="all"))
        single = score_candidates(one, forecaster).table
        assert single[own].iloc[0].tolist() == batch[own].iloc[i].tolist(), frame["name"][i]


def test_ahp_weights_for_one_call(client):
    answer = score(client, {"candidates": [CRM], "criteria_comparisons": AHP})
    expected = priorities(AHP, CRITERIA)
    used = answer["weights"]["criteria"]
    assert used["source"] == "pairwise comparisons"
    assert used["consistency_ratio"] == pytest.approx(expected.consistency_ratio, abs=1e-6)
    assert used["weights"] == pytest.approx(expected.weights, abs=1e-6)
    crm, default = item(answer), item(score(client, [CRM]))
    assert crm["criterion_scores"] == default["criterion_scores"]  # weights move points only
    points = {c: 100 * expected.weights[c] * crm["criterion_scores"][c] for c in CRITERIA}
    assert crm["score"] == pytest.approx(sum(points.values()), abs=0.01)
    # Strategic drivers compared as equals: strategic fit is the plain mean alignment / 10.
    drivers = ["customer_experience", "cost_efficiency", "compliance"]
    equal = score(client, {"candidates": [CRM], "objective_comparisons": [
        [a, b, 1] for i, a in enumerate(drivers) for b in drivers[i + 1:]]})
    assert equal["weights"]["objectives"]["source"] == "pairwise comparisons"
    assert item(equal)["criterion_scores"]["strategic_fit"] == pytest.approx(
        sum(CRM["alignment"].values()) / 3 / 10, abs=1e-4)
    typed = score(client, {"candidates": [CRM], "weights": dict.fromkeys(CRITERIA, 1)})
    assert typed["weights"]["criteria"]["weights"] == dict.fromkeys(CRITERIA, 0.25)
    assert item(typed)["score"] == pytest.approx(
        25 * sum(crm["criterion_scores"].values()), abs=0.01)


@pytest.mark.parametrize("extra, field, message", [
    ({"criteria_comparisons": [*AHP[:5], ["risk", "resource_load", "1/9"]]},
     "body.criteria_comparisons", "most inconsistent is .* vs .*: judged"),
    ({"criteria_comparisons": AHP[:5]}, "body.criteria_comparisons",
     "missing judgement\\(s\\) risk / resource_load"),
    ({"criteria_comparisons": AHP, "weights": dict.fromkeys(CRITERIA, 1)},
     "body.criteria_comparisons", "give weights or criteria_comparisons, not both"),
    ({"weights": {"financial_value": 1}}, "body.weights", "missing resource_load, risk"),
    ({"objective_comparisons": [["growth", "compliance", 3]]}, "body.objective_comparisons",
     "unknown objective 'growth'"),
    ({"criteria_comparisons": [["financial_value", "risk", 11]]},
     "body.criteria_comparisons", "financial_value vs risk: 11 is outside Saaty's scale"),
])
def test_bad_weights_are_a_422_naming_the_field(client, extra, field, message):
    response = client.post("/v1/intake/score", json={"candidates": [CRM], **extra})
    assert response.status_code == 422, response.text
    body = response.json()
    assert [p["field"] for p in body["problems"]] == [field], body
    assert re.search(message, body["problems"][0]["problem"]), body
    assert "Traceback" not in response.text


def test_portfolio_takes_the_same_weights_and_reports_the_scorecard(client):
    from test_intake_scoring import CONSTRAINTS

    from opm_ml.intake.selection import tomllib

    constraints = tomllib.loads(CONSTRAINTS.read_text())
    body = {"candidates": api_candidates(), "constraints": constraints,
            "criteria_comparisons": AHP}
    response = client.post("/v1/portfolio/optimize", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["scorecard_digest"] == load_config().digest
    scores = {i["project_id"]: i["score"] for i in score(client, {
        "candidates": api_candidates(), "criteria_comparisons": AHP})["items"]}
    assert {d["project_id"]: d["score"] for d in got["decisions"]} == scores
    assert np.isfinite([d["risk_adjusted_npv"] for d in got["decisions"]]).all()
