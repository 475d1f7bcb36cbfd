"""Intake scoring and portfolio selection end to end, on small real models trained here once.

Risk-adjusted value, the scorecard and the selected portfolio are checked against values
recomputed independently from the registered pyfuncs' raw outputs; then the API and the CLI.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opm_ml.contract import ROLES
from opm_ml.forecasting.inputs import model_columns
from opm_ml.intake import cli as intake_cli
from opm_ml.intake.candidates import parse_candidates, read_candidates
from opm_ml.intake.portfolio import InfeasiblePortfolio
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scorecard import CRITERIA, load_config
from opm_ml.intake.scoring import score_candidates
from opm_ml.intake.selection import Constraints, select_portfolio
from opm_ml.model_set import load_model_set
from serving.app import create_app
from serving.model_store import ModelStore

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
CANDIDATES = EXAMPLES / "candidates.csv"
CONSTRAINTS = EXAMPLES / "portfolio_constraints.toml"
REFERENCE = Path(__file__).resolve().parents[1] / "models" / "intake_reference.csv"


@pytest.fixture(scope="module")
def settings(small_registry):
    """A temporary registry holding champion v1 of the three families (conftest)."""
    return small_registry[0]


@pytest.fixture(scope="module")
def models(settings):
    return load_model_set(settings).family_models()


@pytest.fixture(scope="module")
def scored(models):
    return score_candidates(read_candidates(CANDIDATES), model_forecaster(models))


def test_risk_adjusted_value_recomputed_from_the_raw_forecasts(scored, models):
    c = scored.candidates
    x = model_columns(c.frame)
    delay = models["delay"].predict(x).to_frame()
    cost = models["overrun"].predict(x).to_frame()
    t = scored.table
    for i in range(len(t)):
        expected_cost = (0.185 * cost["cost_p10"][i] + 0.63 * cost["cost_p50"][i]
                         + 0.185 * cost["cost_p90"][i])
        factor = expected_cost / c.frame["budget_at_completion"][i]
        r, shift = c.discount_rate[i], delay["delay_days_p50"][i] / 365.25
        value = sum(b / (1 + r) ** (k + 1 + shift) - factor * k_cost / (1 + r) ** (k + 1)
                    for k, (b, k_cost) in enumerate(zip(c.benefits[i], c.costs[i])))
        assert t["risk_adjusted_npv"][i] == pytest.approx(value, rel=1e-9)
        assert t["expected_cost"][i] == pytest.approx(expected_cost, rel=1e-12)
        cost_pv = sum(factor * k_cost / (1 + r) ** (k + 1) for k, k_cost in enumerate(c.costs[i]))
        assert t["expected_cost_pv"][i] == pytest.approx(cost_pv, rel=1e-9)
        assert t["probability_late"][i] == pytest.approx(delay["probability_late"][i])


def test_explicit_cash_flows_give_the_hand_npv(scored):
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    row = frame.iloc[0]
    flows = [row[f"benefit_year_{k}"] - row[f"cost_year_{k}"] for k in range(1, 7)]
    npv = sum(f / (1 + row["discount_rate"]) ** k for k, f in enumerate(flows, start=1))
    assert scored.table["npv"][0] == pytest.approx(npv, rel=1e-12)


def test_scorecard_points_ranking_and_moscow_rules(scored):
    t = scored.table
    config = load_config()
    points = t[[f"points_{c}" for c in CRITERIA]].sum(axis=1)
    np.testing.assert_allclose(points, t["score"], atol=0.02)
    for c in CRITERIA:
        np.testing.assert_allclose(t[f"points_{c}"], 100 * config.weights[c] * t[f"score_{c}"],
                                   atol=0.01)
    # Fixed scales, recomputed from each candidate's own figures (no batch minimum or maximum):
    # value / cost on the 0 -> 1 curve, effort against the scorecard's reference population.
    ratio = t["risk_adjusted_npv"] / t["expected_cost_pv"]
    np.testing.assert_allclose(t["score_financial_value"], ratio.clip(0, 1), atol=1e-4)
    past = pd.read_csv(REFERENCE)["effort_hours"].to_numpy()
    lighter = [((past > e).sum() + (past == e).sum() / 2) / len(past) for e in t["effort_hours_p50"]]
    np.testing.assert_allclose(t["score_resource_load"], lighter, atol=1e-4)
    assert 0 < t["score_financial_value"].max() < 1  # no candidate is pinned to 1 by the batch
    # Rules: mandatory/regulatory -> must; negative risk-adjusted value -> won't; thresholds.
    assert set(t.loc[t["mandatory"], "project_id"]) == {"C004", "C012"}
    assert (t.loc[t["mandatory"], "moscow"] == "must").all()
    rest = t[~t["mandatory"]]
    expected = np.where(rest["risk_adjusted_npv"] < 0, "won't",
                        np.where(rest["score"] >= config.should_min_score, "should",
                                 np.where(rest["score"] >= config.could_min_score, "could",
                                          "won't")))
    assert (rest["moscow"].to_numpy() == expected).all()
    ranked = scored.ranked()
    assert ranked["rank"].tolist() == list(range(1, len(t) + 1))
    assert ranked["moscow"].iloc[:2].tolist() == ["must", "must"]
    order = ranked["moscow"].map({"must": 0, "should": 1, "could": 2, "won't": 3})
    assert order.is_monotonic_increasing
    for _, group in ranked.groupby("moscow"):
        assert group["score"].is_monotonic_decreasing


def test_top_drivers_are_the_largest_shap_values(scored, models):
    x = model_columns(scored.candidates.frame)
    out = models["delay"].predict(x).to_frame()
    shap = out[[c for c in out.columns if c.startswith("shap__")]].iloc[3].dropna()
    largest = shap.abs().sort_values(ascending=False).index[:3]
    assert [d["feature"] for d in scored.drivers["delay"][3]] == [
        name.removeprefix("shap__") for name in largest]


def test_portfolio_respects_every_constraint(scored):
    constraints = Constraints.read(CONSTRAINTS)
    report = select_portfolio(scored, constraints)
    d = report["decisions"].set_index("project_id")
    chosen = d.index[d["selected"]]
    assert {"C004", "C012"} <= set(chosen)
    assert not ({"C009", "C010"} <= set(chosen))
    assert "C007" not in chosen or "C002" in chosen
    # Independent recomputation of every role's monthly load from the resource profiles.
    start = np.datetime64(constraints.start_month, "M")
    load = {(r, m): 0.0 for r in ROLES for m in range(constraints.months)}
    for i, pid in enumerate(scored.candidates.ids):
        if pid not in chosen:
            continue
        offset = int((scored.candidates.start_month[i] - start).astype(int))
        for r, role in enumerate(ROLES):
            for k, hours in enumerate(scored.monthly_hours[i][r]):
                if 0 <= offset + k < constraints.months:
                    load[role, offset + k] += hours
    table = report["resource_load"]
    for row in table.itertuples():
        m = int((np.datetime64(row.month, "M") - start).astype(int))
        assert row.load_hours == pytest.approx(load[row.role, m], rel=1e-9, abs=1e-6)
        assert row.load_hours <= row.capacity_hours + 1e-6
    assert (report["budget"]["used"] <= report["budget"]["limit"] + 1e-6).all()
    assert report["total_value"] == pytest.approx(d.loc[chosen, "risk_adjusted_npv"].sum())
    frontier = report["frontier"]
    assert frontier["total_value"].is_monotonic_increasing  # more budget never loses value
    one = frontier[frontier["budget_scale"] == 1.0]["total_value"].iloc[0]
    assert one == pytest.approx(report["total_value"], rel=1e-6)


def test_infeasible_must_do_names_role_and_month(scored):
    data = Constraints.read(CONSTRAINTS)
    data.capacity["build"] = [10.0] * data.months
    with pytest.raises(InfeasiblePortfolio, match=r"must-do projects need [\d,]+ h of build in "
                                                  r"20\d\d-\d\d, capacity is 10 h"):
        select_portfolio(scored, data)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="discount_rate"), "missing column discount_rate"),
    (lambda f: f.assign(cost_year_2=-5.0), "cost_year_2 must not be negative"),
    (lambda f: f.assign(mandatory="maybe"), "mandatory must be 1/0"),
    (lambda f: f.assign(alignment_compliance=11), "alignment_compliance must be a score"),
    (lambda f: f.drop(columns="complexity"), "missing intake column"),
    (lambda f: f.assign(**{f"cost_year_{k}": 0.0 for k in range(1, 7)}),
     r"cost_year_1..6 \(cost_by_year\) add up to 0 \(row 1\)"),
    (lambda f: f.assign(alignment_compliance=np.nan), r"alignment_compliance is empty \(row 1\)"),
])
def test_bad_candidates_name_the_field(change, message):
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    with pytest.raises(ValueError, match=message):
        parse_candidates(change(frame))


@pytest.fixture(scope="module")
def client(settings):
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    return TestClient(create_app(settings, store))


def api_candidates() -> list[dict]:
    """The example CSV as API bodies (lists and the alignment mapping)."""
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    bodies = []
    for row in json.loads(frame.to_json(orient="records")):
        body = {k: v for k, v in row.items()
                if not k.startswith(("cost_year_", "benefit_year_", "alignment_"))}
        body["mandatory"], body["regulatory"] = bool(row["mandatory"]), bool(row["regulatory"])
        for key, prefix in (("cost_by_year", "cost_year_"), ("benefits_by_year", "benefit_year_")):
            values = [row[f"{prefix}{k}"] for k in range(1, 7)]
            if any(v is not None for v in values):
                body[key] = values
        body["alignment"] = {k.removeprefix("alignment_"): v for k, v in row.items()
                             if k.startswith("alignment_")}
        bodies.append(body)
    return bodies


def test_api_score_matches_the_library(client, scored):
    response = client.post("/v1/intake/score", json=api_candidates())
    assert response.status_code == 200, response.text
    body = response.json()
    ranked = scored.ranked()
    assert body["scorecard_version"] == load_config().version
    assert [i["project_id"] for i in body["items"]] == ranked["project_id"].tolist()
    first = body["items"][0]
    assert first["score"] == pytest.approx(sum(first["points"].values()), abs=0.02)
    assert first["risk"]["risk_adjusted_npv"] == pytest.approx(ranked["risk_adjusted_npv"][0])
    assert len(first["top_drivers"]["delay"]) == 3


def test_api_portfolio_and_its_errors(client):
    from opm_ml.intake.selection import tomllib

    constraints = tomllib.loads(CONSTRAINTS.read_text())
    response = client.post("/v1/portfolio/optimize",
                           json={"candidates": api_candidates(), "constraints": constraints})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"C004", "C012"} <= set(body["selected"]) and body["status"] == "optimal"
    assert len(body["resource_load"]) == 6 * constraints["months"]
    constraints["capacity"]["testing"] = 1
    response = client.post("/v1/portfolio/optimize",
                           json={"candidates": api_candidates(), "constraints": constraints})
    assert response.status_code == 422
    assert response.json()["error"] == "infeasible_portfolio"
    assert "h of testing in" in response.json()["message"]
    bad = api_candidates()
    for body in bad:
        body["alignment"]["growth"] = 5  # not an objective of the scorecard
    response = client.post("/v1/intake/score", json=bad)
    assert response.status_code == 422 and "objectives" in response.json()["message"]
    bad[1]["alignment"].pop("compliance")
    response = client.post("/v1/intake/score", json=bad)
    assert response.status_code == 422
    assert response.json()["message"].startswith("alignment_compliance is empty (row 2)")


def test_cli_commands_write_their_files(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(intake_cli, "get_settings", lambda: settings)
    app = typer.Typer()
    app.command("score")(intake_cli.intake_score)
    app.command("optimize")(intake_cli.portfolio_optimize)
    runner = CliRunner()
    out = tmp_path / "ranked.csv"
    result = runner.invoke(app, ["score", str(CANDIDATES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["rank"].tolist() == list(range(1, 21))
    result = runner.invoke(app, ["optimize", str(CANDIDATES), "--constraints", str(CONSTRAINTS),
                                 "--out-dir", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "p").iterdir()} == {
        "decisions.csv", "binding.csv", "budget.csv", "resource_load.csv", "frontier.csv",
        "resource_load.png", "frontier.png"}
    tight = tmp_path / "tight.toml"
    tight.write_text(CONSTRAINTS.read_text().replace("build = 4_000", "build = 5"))
    result = runner.invoke(app, ["optimize", str(CANDIDATES), "--constraints", str(tight),
                                 "--out-dir", str(tmp_path / "q")])
    assert result.exit_code == 2 and "h of build in" in result.output
    assert "Traceback" not in result.output


def test_openapi_examples_are_answered(client):
    spec = client.get("/openapi.json").json()
    for path in ("/v1/intake/score", "/v1/portfolio/optimize"):
        examples = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "examples"]
        assert len(examples) >= 2
        for name, example in examples.items():
            response = client.post(path, json=example["value"])
            assert response.status_code == 200, (path, name, response.text)


def test_without_alignment_the_contract_strategic_fit_is_used(models):
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("alignment_")])
    scored = score_candidates(parse_candidates(frame), model_forecaster(models))
    np.testing.assert_allclose(scored.table["score_strategic_fit"],
                               (frame["strategic_fit"] / 10).round(4))
    # Rows 6 and 15 state only expected_benefits: spread over the 3 years after the finish.
    basis = scored.table["benefit_basis"]
    assert basis[5].startswith("stated benefits") and basis[0] == "benefit stream"
    c = scored.candidates
    assert c.benefits[5].sum() == pytest.approx(frame["expected_benefits"][5])
    assert c.costs[5].sum() == pytest.approx(frame["budget_at_completion"][5])
