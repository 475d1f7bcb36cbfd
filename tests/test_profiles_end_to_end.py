"""Real exports, end to end: the shipped profiles train, register, serve and batch-score.

One registry per session: kitchenham (delay, resource demand), sip (resource demand at task
level) and nyc_capital (overrun and delay, with monthly re-forecasts as status snapshots) are
trained through `opm-ml train --profile`, exactly as the README shows. The real files come
from `../shared/data/real/`; the module skips, saying so, only when that folder is absent.
"""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from opm_ml.cli import app
from opm_ml.intake.scorecard import load_config
from opm_ml.settings import Settings, get_settings
from serving.app import create_app
from support import REAL, WIDE, needs_real

pytestmark = needs_real
runner = CliRunner()
EXPORTS = {
    "kitchenham": ["--data", str(REAL / "kitchenham.arff")],
    "sip": ["--data", str(REAL / "eseur_Sip-task-info.csv")],
    "nyc_capital": ["--data", str(REAL / "NYC_capital_projects_20190901.csv")],
}


@pytest.fixture(scope="module")
def real_registry(tmp_path_factory):
    """(settings, {profile: train output}): the three profiles trained into one registry."""
    root = tmp_path_factory.mktemp("real_registry")
    env = {"OPM_ML_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
           "OPM_ML_MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    outputs = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        try:
            for profile, args in EXPORTS.items():
                result = runner.invoke(app, ["train", "--profile", profile, *args,
                                             "--allow-rejects"], env=WIDE)
                assert result.exit_code == 0, result.output
                outputs[profile] = result.output
        finally:
            get_settings.cache_clear()
    settings = Settings(_env_file=None, mlflow_tracking_uri=env["OPM_ML_MLFLOW_TRACKING_URI"],
                        mlflow_artifact_root=root / "artifacts", registry_poll_seconds=0,
                        database_url=f"sqlite:///{root / 'opm-ml.db'}")
    return settings, outputs


def serving(settings: Settings, profile: str, until: str = "", **changes) -> TestClient:
    """A started API on `profile`'s champions, once /readyz says they are in (or, given
    `until`, once its answer says that)."""
    client = TestClient(create_app(settings.model_copy(update={"profile": profile, **changes})))
    client.__enter__()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = client.get("/readyz")
        if (until in ready.text) if until else ready.status_code == 200:
            break
        time.sleep(0.1)
    return client


@pytest.fixture(scope="module")
def kitchenham(real_registry):
    client = serving(real_registry[0], "kitchenham")
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def nyc(real_registry):
    client = serving(real_registry[0], "nyc_capital")
    yield client
    client.__exit__(None, None, None)


def example(client: TestClient) -> tuple[dict, dict]:
    """The profile's real example (an intake row, a status report), as /docs shows it."""
    project, in_flight = client.get("/openapi.json").json()["components"]["schemas"][
        "ProjectRequest"]["examples"]
    return project, in_flight["status"]


def test_each_profile_trains_the_families_its_data_supports(real_registry):
    _, outputs = real_registry
    # A family without its target in the data is a one-line reason, not an error.
    assert ("overrun: not trained: profile kitchenham does not map both budget_at_completion "
            "and actual_cost") in outputs["kitchenham"]
    for profile, families in {"kitchenham": ("delay", "resource"), "sip": ("resource",),
                              "nyc_capital": ("delay", "overrun")}.items():
        for family in families:
            assert f"{family}: no champion yet: challenger v1" in outputs[profile]
        assert "Held-out results" in outputs[profile] and "MAE" in outputs[profile]


def test_docs_show_the_organisations_own_fields_with_a_real_example(kitchenham):
    project, _ = example(kitchenham)
    fields = kitchenham.get("/openapi.json").json()["components"]["schemas"][
        "ProjectRequest"]["properties"]
    assert {"function_points", "project_type", "client", "planned_effort_hours"} <= set(fields)
    assert "strategic_fit" not in fields  # the contract's fields are not asked for
    assert project["function_points"] > 0 and project["project_id"]


def test_a_real_project_gets_an_explained_forecast(kitchenham):
    project, _ = example(kitchenham)
    for task, quantity in (("delay", "duration_days"), ("resource-demand", "effort_hours")):
        response = kitchenham.post(f"/v1/predictions/{task}", json=project)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"]["name"] == f"opm-kitchenham-{task}"
        assert body["quantity"] == quantity and body["stage"] == "intake"
        interval = body["interval"]
        assert 0 < interval["p10"] <= interval["p50"] <= interval["p90"]
        shap = body["explanation"]
        total = (shap["base_value"] + sum(c["contribution"] for c in shap["contributions"])
                 + shap["other_features_contribution"])
        # The explanation adds up to the forecast itself: log(P50 / planned).
        planned = project["planned_duration_days" if task == "delay" else "planned_effort_hours"]
        assert total == pytest.approx(math.log(interval["p50"] / planned), abs=1e-9)
        assert {c["feature"] for c in shap["contributions"]} <= set(project) | {
            "log_planned_effort", "log_planned_duration", "log_function_points",
            "hours_per_day", "hours_per_function_point", "start_year"}


def test_an_unseen_category_is_answered_with_a_warning(kitchenham):
    project, _ = example(kitchenham)
    response = kitchenham.post("/v1/predictions/resource-demand", json={**project, "client": "Z9"})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [
        "client 'Z9' was not seen in training: the models treat it as missing"]


def test_a_numeric_code_is_its_level_whatever_its_json_type(kitchenham):
    project, _ = example(kitchenham)
    answers = [kitchenham.post("/v1/predictions/resource-demand",
                               json={**project, "client": code}).json() for code in (2, "2", 2.0)]
    assert all("warnings" not in a for a in answers), answers
    assert len({a["prediction"] for a in answers}) == 1


@pytest.mark.parametrize("change, field", [
    ({"function_points": "many"}, "function_points"),
    ({"function_points": -5}, "function_points"),
    ({"planned_effort_hours": None}, "planned_effort_hours"),  # what resource demand scales
    ({"planned_effort_hours": 0}, "planned_effort_hours"),  # no plan: nothing to scale
])
def test_a_wrong_value_is_a_422_naming_the_field(kitchenham, change, field):
    project, _ = example(kitchenham)
    response = kitchenham.post("/v1/predictions/resource-demand", json={**project, **change})
    assert response.status_code == 422
    assert field in response.text


@pytest.mark.parametrize("path", ["/v1/predictions/resource-demand", "/v1/projects/assess"])
def test_a_plan_of_zero_is_a_422_in_a_batch_too(kitchenham, path):
    """Unlike a missing plan (that family is left out of /assess), a plan of 0 is a wrong value
    wherever it is sent: the item and field are named, nothing is scored."""
    project, _ = example(kitchenham)
    response = kitchenham.post(path, json=[project, {**project, "planned_duration_days": 0}])
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["field"] == "body[1].planned_duration_days"
    assert problem["problem"] == "Input should be greater than 0 (got 0)"


def test_a_family_the_profile_has_no_data_for_is_a_clear_503(kitchenham):
    project, _ = example(kitchenham)
    response = kitchenham.post("/v1/predictions/overrun", json=project)
    assert response.status_code == 503
    assert response.json()["message"] == (
        "no overrun model is served: profile kitchenham has no overrun model (it does not map "
        "both budget_at_completion and actual_cost)")


def test_a_family_needs_only_its_own_planned_value(nyc):
    project, _ = example(nyc)
    budget_only = {k: v for k, v in project.items()
                   if k not in ("start_date", "planned_duration_days")}
    response = nyc.post("/v1/predictions/overrun", json=budget_only)
    assert response.status_code == 200, response.text
    response = nyc.post("/v1/predictions/delay", json=budget_only)
    assert response.status_code == 422 and "planned_duration_days" in response.text
    body = nyc.post("/v1/projects/assess", json=budget_only).json()
    assert set(body["forecasts"]) == {"overrun"}
    assert body["warnings"] == ["no delay forecast: planned_duration_days is missing"]


def test_a_status_report_is_assessed_with_the_in_flight_models(nyc):
    project, status = example(nyc)
    response = nyc.post("/v1/projects/assess", json={**project, "status": status})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["forecasts"]) == {"delay", "overrun"}
    for forecast in body["forecasts"].values():
        assert forecast["stage"] == "inflight"
        assert forecast["interval"]["p10"] <= forecast["interval"]["p50"] <= forecast[
            "interval"]["p90"]
    # The report's own re-forecast (finish forecast / plan) is what explains the delay most.
    top = body["forecasts"]["delay"]["explanation"]["contributions"][0]
    assert top["feature"] == "finish_forecast_ratio"
    assert body["opm_metrics"] is None  # NYC reports carry no PV/EV/AC: no EVM to compute


def test_models_of_different_profiles_are_refused_together(real_registry):
    settings, _ = real_registry
    mixed = {"delay": "opm-kitchenham-delay", "resource": "opm-sip-resource-demand"}
    client = serving(settings, "kitchenham", until="different dataset profiles",
                     model_names=mixed)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "different dataset profiles" in ready.text
    finally:
        client.__exit__(None, None, None)


def score(registry, monkeypatch, out, export: str, profile: str, *options: str):
    """(`opm-ml score` of a real export through the registry's champions, its scores and
    its rejects)."""
    settings, _ = registry
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("OPM_ML_MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root))
    monkeypatch.setenv("OPM_ML_DATABASE_URL", settings.database_url)  # the prediction log
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["score", str(REAL / export), "--profile", profile, "--out",
                                     str(out), "--allow-rejects", *options], env=WIDE)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    # Every scored project is in the prediction log, those without one family's planned value
    # too (the family they have no forecast of is left out of their record).
    assert "not recorded" not in result.output, result.output
    return pd.read_parquet(out), pd.read_csv(out.with_name(f"{out.stem}.rejects.csv"))


def test_batch_scoring_reads_the_export_through_the_profile(real_registry, tmp_path,
                                                            monkeypatch):
    scores, rejects = score(real_registry, monkeypatch, tmp_path / "scores.parquet",
                            "kitchenham.arff", "kitchenham")
    assert len(scores) == 144  # 145 projects, 1 rejected with its reason beside the output
    assert rejects["row"].tolist() == [141] and "before the start" in rejects["reason"][0]
    assert {"delay__duration_days_p50", "resource__effort_hours_p50",
            "resource__shap__function_points"} <= set(scores.columns)
    # Projects 18, 54 and 121 have no planned finish: a resource forecast, no delay one.
    unplanned = scores["project_id"].isin(["18", "54", "121"])
    assert scores.loc[unplanned, "resource__effort_hours_p50"].notna().all()
    assert scores.loc[unplanned, "delay__duration_days_p50"].isna().all()
    assert (scores.loc[unplanned, "warnings"]
            == "no delay forecast: planned_duration_days is missing").all()
    assert scores.loc[~unplanned, "warnings"].isna().all()


def test_batch_scoring_warns_of_unseen_snapshot_levels_as_the_api_does(real_registry, tmp_path,
                                                                      monkeypatch):
    scores, rejects = score(real_registry, monkeypatch, tmp_path / "nyc.parquet",
                            "NYC_capital_projects_20190901.csv", "nyc_capital", "--no-shap")
    assert not rejects["reason"].str.contains("phase_now").any()
    unseen = scores["warnings"].str.contains("phase_now 'Scoping/Planning' was not seen",
                                             na=False)
    assert unseen.any() and scores.loc[unseen, "overrun__cost_p50"].notna().all()


def test_the_dashboard_reads_an_uploaded_export_through_the_profile(nyc):
    """The Portfolio view's upload takes the organisation's own file: each project once, at
    its latest report, with the profile's families. Rows the profile rejects are a 422 naming
    their row in the file, or, with `allow_rejects`, listed beside the projects kept."""
    export = REAL / "NYC_capital_projects_20190901.csv"
    url = "/v1/dashboard/portfolio?filename=nyc.csv"
    refused = nyc.post(url, content=export.read_bytes())
    assert refused.status_code == 422 and "row(s) rejected: row " in refused.json()["message"]
    response = nyc.post(url + "&allow_rejects=true", content=export.read_bytes())
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    ids = [p["project_id"] for p in body["projects"]]
    assert len(ids) == len(set(ids)) == body["count"] > 300
    assert all(p["status_date"] for p in body["projects"])
    # A project without a planned duration is listed with its overrun, and says why it has no
    # delay numbers; every other project has them.
    why = "no delay forecast: planned_duration_days is missing"
    unplanned = [p for p in body["projects"] if why in p.get("warnings", [])]
    assert 0 < len(unplanned) < len(ids)
    assert all(p["probability_late"] is None for p in unplanned)
    assert any(p["overrun_pct_p50"] is not None for p in unplanned)
    assert all(p["probability_late"] is not None for p in body["projects"]
               if p not in unplanned)
    assert body["rejected_rows"] > 0
    first = body["rejections"][0]
    assert first["row"] >= 1 and first["column"] and first["reason"]


@pytest.mark.parametrize("method, path", [
    ("get", "/v1/dashboard/portfolio"), ("get", "/v1/dashboard/intake"),
    ("get", "/v1/dashboard/projects/P1")])
def test_views_built_on_the_contract_say_so_for_a_profile(nyc, method, path):
    """The sample history and the example intake candidates are in the contract's fields: a
    profile's models answer 409 saying what to use instead."""
    response = getattr(nyc, method)(path)
    assert response.status_code == 409, response.text
    message = response.json()["message"]
    assert "'nyc_capital' profile" in message
    assert ("POST /v1/dashboard/portfolio" in message or "POST /v1/projects/assess" in message
            or "POST /v1/intake/score" in message)


def candidate(api: TestClient, pid: str, **changes) -> dict:
    """A candidate in the profile's own fields: its real example project, a business case."""
    project, _ = example(api)
    return {**project, "project_id": pid, "discount_rate": 0.08,
            "cost_by_year": [400_000.0, 200_000.0],
            "benefits_by_year": [0.0, 500_000.0, 500_000.0, 500_000.0],
            "strategic_fit": 7.0, **changes}


def test_intake_candidates_in_a_profiles_fields_are_scored_with_its_families(nyc, kitchenham):
    """Intake scoring works with whatever the served models read: the candidate is the
    profile's project plus its business case, and a family the profile lacks counts neutrally,
    the answer saying so."""
    # nyc_capital: delay + overrun, no resource model.
    weak = candidate(nyc, "N-2", benefits_by_year=[0.0, 100_000.0], strategic_fit=2.0)
    response = nyc.post("/v1/intake/score", json=[weak, candidate(nyc, "N-1")])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile"] == "nyc_capital" and body["count"] == 2
    assert [i["project_id"] for i in body["items"]] == ["N-1", "N-2"]
    assert [i["rank"] for i in body["items"]] == [1, 2]
    assert any(n.startswith("no resource model in profile nyc_capital") for n in body["notes"])
    first = body["items"][0]
    assert first["criterion_scores"]["resource_load"] == 0.5
    assert body["reference_digest"] is None  # no resource model: no population compared with
    assert first["risk"]["effort_hours_p50"] is None
    assert first["risk"]["overrun_pct_p90"] is not None and set(first["top_drivers"]) == {
        "delay", "overrun"}
    # kitchenham: delay + resource, no overrun model and no budget: cost = its costs by year.
    response = kitchenham.post("/v1/intake/score", json={
        "candidates": [candidate(kitchenham, "K-1", client="Z9")],
        "weights": {"financial_value": 1, "strategic_fit": 1, "risk": 1, "resource_load": 1}})
    assert response.status_code == 200, response.text
    body = response.json()
    item = body["items"][0]
    # Effort is ranked among kitchenham's own past projects, not the scorecard's reference.
    assert body["reference_digest"].startswith("sha256:")
    assert body["reference_digest"] != load_config().reference_digest
    assert any(n.startswith("no overrun model in profile kitchenham: expected cost = planned "
                            "cost") for n in body["notes"])
    assert item["risk"]["expected_cost"] == item["finance"]["total_cost"] == 600_000.0
    assert item["risk"]["overrun_pct_p90"] is None and item["risk"]["effort_hours_p50"] > 0
    assert item["warnings"] == [
        "client 'Z9' was not seen in training: the models treat it as missing"]
    # Portfolio selection: no hours by role, so a capacity is refused saying why.
    constraints = {"start_month": "1997-01", "months": 24, "budget": {"1997": 1e7}}
    ok = kitchenham.post("/v1/portfolio/optimize", json={
        "candidates": [candidate(kitchenham, "K-1")], "constraints": {**constraints,
                                                                       "capacity": {}}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["selected"] == ["K-1"] and ok.json()["notes"]
    refused = kitchenham.post("/v1/portfolio/optimize", json={
        "candidates": [candidate(kitchenham, "K-1")],
        "constraints": {**constraints, "capacity": {"build": 100}}})
    assert refused.status_code == 422
    assert "forecasts no hours by role" in refused.json()["message"]


@pytest.mark.parametrize("change, field", [
    ({"function_points": "many"}, "function_points"),
    ({"strategic_fit": 11}, "strategic_fit"),
    ({"budget_at_completion": 1e6}, "budget_at_completion"),  # not a kitchenham field
    ({"cost_by_year": None}, "cost_by_year"),  # no budget to spread: required
    ({"planned_duration_days": None}, "planned_duration_days"),  # intake weighs delay
    ({"planned_effort_hours": 0}, "planned_effort_hours"),  # and resource demand
])
def test_a_wrong_candidate_field_is_a_422_naming_it(kitchenham, change, field):
    response = kitchenham.post("/v1/intake/score", json=[candidate(kitchenham, "K-1", **change)])
    assert response.status_code == 422, response.text
    assert field in response.text


def test_the_docs_show_the_profiles_candidate(kitchenham):
    spec = kitchenham.get("/openapi.json").json()
    fields = spec["components"]["schemas"]["IntakeCandidate"]["properties"]
    assert {"function_points", "client", "cost_by_year", "strategic_fit"} <= set(fields)
    assert "budget_at_completion" not in fields and "role_share_build" not in fields
    for path in ("/v1/intake/score", "/v1/portfolio/optimize"):
        cases = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"][
            "examples"]
        for name, case in cases.items():
            response = kitchenham.post(path, json=case["value"])
            assert response.status_code == 200, (path, name, response.text)
