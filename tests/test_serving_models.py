"""Serving against real models: trained once here on small generated data, registered in a
temporary MLflow registry, loaded by the service exactly as in production (no model mocks).

Checks every forecast endpoint, that serving answers what the registered pyfunc returns, SHAP
additivity in the stated output space, the OPM metrics next to the forecasts, /v1/models against
the registry, an atomic reload to a new version under load (every assessment from one model set)
and the registry poller, each on its own copy of the registry (`private_registry`), and serving
with a model missing.
"""

import hashlib
import math
import threading
import time
from datetime import datetime, timezone

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pydantic import SecretStr

from opm_ml import mlflow_access
from opm_ml.contract import INTAKE_COLUMNS, ROLES
from opm_ml.features import build_features, contract_manifest
from opm_ml.forecasting.inputs import ProjectInputs, model_columns
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS, project_request

KEY = "admin-key-for-tests"
TASKS = {"delay": "delay", "overrun": "overrun", "resource-demand": "resource"}
PLANNED = {"delay": "planned_duration_days", "overrun": "budget_at_completion",
           "resource-demand": "planned_effort_hours"}


@pytest.fixture(scope="module")
def trained(small_registry):
    """Settings of a temporary registry holding champion v1 of the three families (conftest)."""
    settings, history = small_registry
    return settings.model_copy(update={"api_key": SecretStr(KEY)}), history


@pytest.fixture(scope="module")
def client(trained):
    settings, _ = trained
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    return TestClient(create_app(settings, store))


def request_rows(history, n: int, seed: int = 0) -> list[dict]:
    """JSON bodies of `n` history projects; every other one with a mid-project status report."""
    projects = history.projects.sample(n, random_state=seed).reset_index(drop=True)
    snaps = history.snapshots
    middle = snaps.groupby("project_id").nth(1).set_index("project_id")
    rows = []
    for i, record in enumerate(projects.to_dict("records")):
        body = {c: record[c] for c in INTAKE_COLUMNS}
        body = {k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else
                    v.item() if hasattr(v, "item") else v) for k, v in body.items()}
        body["project_id"] = record["project_id"]
        if i % 2 and record["project_id"] in middle.index:
            s = middle.loc[record["project_id"]]
            body["status"] = {"status_date": s["status_date"].date().isoformat(),
                              "pv": float(s["pv"]), "ev": float(s["ev"]), "ac": float(s["ac"]),
                              "percent_complete": float(s["percent_complete"])}
        rows.append(body)
    return rows


def as_frame(rows: list[dict]) -> pd.DataFrame:
    """The same projects as a raw contract frame (intake columns + status columns)."""
    flat = [{**{k: v for k, v in r.items() if k != "status"}, **(r.get("status") or {})}
            for r in rows]
    frame = pd.DataFrame(flat)
    for name in ("start_date", "status_date"):
        frame[name] = pd.to_datetime(frame[name])
    return frame


def assert_close(a, b, path="body"):
    """Equal JSON trees, floats up to rounding (batch and single take different EVM paths)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), path
    else:
        assert a == b, path


def test_request_columns_give_the_features_of_the_same_rows_as_a_frame(trained):
    """Requests -> column arrays (dates, category codes, missing percent_complete) loses nothing."""
    _, history = trained
    rows = request_rows(history, 400, seed=1)
    first = next(i for i, row in enumerate(rows) if "status" in row)
    rows[first]["status"]["percent_complete"] = None  # optional in a status report
    manifest = contract_manifest()
    request = project_request(manifest)
    parsed = ProjectInputs.from_requests([request.model_validate(r) for r in rows], manifest)
    frame = as_frame(rows)
    for stage in ("intake", "inflight"):
        positions = parsed.rows_of(stage)
        assert len(positions) > 100
        mine = parsed.features(stage)
        reference = build_features(frame.iloc[positions], stage)
        for name in reference.columns:
            ref = reference[name]
            ref = ref.cat.codes.to_numpy(float) if hasattr(ref, "cat") else ref.to_numpy(float)
            np.testing.assert_array_equal(mine[name], ref, err_msg=f"{stage} {name}")
    assert np.isnan(parsed.features("inflight")["percent_complete"][0])


def test_request_objects_without_some_fields_read_them_as_missing():
    """An object lacking a manifest field (an intake candidate of another shape, a status
    without percent_complete) reads it as missing, exactly as the field set to None."""
    manifest = contract_manifest()
    request = project_request(manifest)
    project = request.model_validate({**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS})
    values = project.model_dump()
    lacking = ("sector", "expected_roi", "percent_complete")

    class Lacking:  # the validated values less `lacking`, as plain attributes
        def __init__(self, fields: dict):
            self.__dict__.update({k: v for k, v in fields.items() if k not in lacking})

    blank = project.model_copy(update={  # the same fields set to None (not validated)
        "sector": None, "expected_roi": None,
        "status": project.status.model_copy(update={"percent_complete": None})})
    bare = Lacking(values)
    bare.status = Lacking(values["status"])
    for objects in ([bare], [bare, project]):
        read = ProjectInputs.from_requests(objects, manifest)
        want = ProjectInputs.from_requests([blank, project][:len(objects)], manifest)
        assert read.columns.keys() == want.columns.keys()
        for name, column in want.columns.items():
            np.testing.assert_array_equal(read.columns[name], column, err_msg=name)
    assert read.columns["sector"][0] is None and np.isnan(read.columns["expected_roi"][0])
    assert read.columns["sector"][1] is not None and not np.isnan(read.columns["expected_roi"][1])


def test_fields_read_one_or_several_names_and_blanks():
    """`_fields`: one column per name, None for a None object, a missing field or no objects."""
    from types import SimpleNamespace

    from opm_ml.forecasting.inputs import _fields

    a, b = SimpleNamespace(x=1, y=2.5), SimpleNamespace(x=3)
    assert _fields([a, None], ["x"]) == [(1, None)]
    assert _fields([a, None, a], ["x", "y"]) == [(1, None, 1), (2.5, None, 2.5)]
    assert _fields([a, b], ["y"]) == [(2.5, None)]
    assert _fields([], ["x", "y"]) == [(), ()]
    assert _fields([a], []) == []


@pytest.mark.parametrize("task", list(TASKS))
def test_forecasts_equal_the_registered_pyfunc(client, trained, task):
    settings, history = trained
    rows = request_rows(history, 120, seed=2)
    response = client.post(f"/v1/predictions/{task}", json=rows)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": mlflow_access.registered_name(task, settings),
                             "version": "1", "alias": "champion"}
    items = body["items"]
    with mlflow_access.tracking(settings):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{body['model']['name']}@champion")
    reference = pyfunc.predict(model_columns(as_frame(rows)))
    quantity = items[0]["quantity"]
    for item, (_, ref) in zip(items, reference.iterrows(), strict=True):
        assert item["stage"] == ref["stage"]
        for level in ("p10", "p50", "p90"):
            assert math.isclose(item["interval"][level], ref[f"{quantity}_{level}"], rel_tol=1e-9)
        shap = {c["feature"]: c["contribution"] for c in item["explanation"]["contributions"]}
        assert math.isclose(item["explanation"]["base_value"], ref["shap_base"], rel_tol=1e-9)
        for feature, value in shap.items():
            assert math.isclose(value, ref[f"shap__{feature}"], rel_tol=1e-9, abs_tol=1e-12)
        if task == "delay":
            assert math.isclose(item["probability_late"], ref["probability_late"], abs_tol=1e-12)
            assert math.isclose(item["delay_days"]["p50"], ref["delay_days_p50"], rel_tol=1e-9)
        if task == "overrun":
            assert math.isclose(item["overrun_pct"]["p90"], ref["overrun_pct_p90"], rel_tol=1e-9)
        if task == "resource-demand":
            for role in ROLES:
                assert math.isclose(item["effort_by_role"][role]["p50"],
                                    ref[f"effort_{role}_hours_p50"], rel_tol=1e-9)
            months = item["monthly_profile"]["hours"]
            assert math.isclose(sum(months["build"]), ref["effort_build_hours_p50"], rel_tol=1e-9)


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("status", [None, EXAMPLE_STATUS])
def test_shap_adds_up_to_the_prediction_in_its_output_space(client, task, status):
    project = {**EXAMPLE_PROJECT, "status": status}
    response = client.post(f"/v1/predictions/{task}", params={"top_k": 5}, json=project)
    assert response.status_code == 200
    body = response.json()
    explained = body["explanation"]
    assert body["stage"] == ("intake" if status is None else "inflight")
    assert explained["output_space"] == f"log({body['quantity']} / {PLANNED[task]})"
    contributions = [c["contribution"] for c in explained["contributions"]]
    assert len(contributions) == 5
    assert [abs(c) for c in contributions] == sorted(map(abs, contributions), reverse=True)
    total = explained["base_value"] + sum(contributions) + explained["other_features_contribution"]
    log_ratio = math.log(body["prediction"] / EXAMPLE_PROJECT[PLANNED[task]])
    assert math.isclose(total, log_ratio, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(explained["prediction"], log_ratio, rel_tol=1e-9, abs_tol=1e-9)
    assert body["prediction"] == body["interval"]["p50"]
    assert body["interval"]["p10"] <= body["interval"]["p50"] <= body["interval"]["p90"]
    full = client.post(f"/v1/predictions/{task}", json=project).json()["explanation"]
    assert full["other_features_contribution"] == pytest.approx(0, abs=1e-12)
    assert math.isclose(full["base_value"] + sum(c["contribution"] for c in full["contributions"]),
                        log_ratio, rel_tol=1e-9, abs_tol=1e-9)
    values = {c["feature"]: c["value"] for c in full["contributions"]}
    assert values["project_type"] == "it_software"
    assert values["budget_at_completion"] == 2_400_000.0


def test_single_requests_equal_the_batch(client, trained):
    rows = request_rows(trained[1], 6, seed=3)
    batch = client.post("/v1/projects/assess", json=rows).json()
    assert batch["count"] == 6
    for row, item in zip(rows, batch["items"]):
        single = client.post("/v1/projects/assess", json=row).json()
        assert single.pop("models") == batch["models"]
        assert_close(single, item)


def test_assessment_puts_opm_metrics_next_to_the_forecasts(client):
    project = {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}
    body = client.post("/v1/projects/assess", json=project).json()
    assert set(body["forecasts"]) == set(TASKS)
    assert {f["stage"] for f in body["forecasts"].values()} == {"inflight"}
    assert set(body["models"]) == set(TASKS)
    evm = client.post("/v1/metrics/evm", json={
        "project_id": project["project_id"], "bac": project["budget_at_completion"],
        "start_date": project["start_date"], "status_date": EXAMPLE_STATUS["status_date"],
        "planned_duration_days": project["planned_duration_days"],
        **{k: EXAMPLE_STATUS[k] for k in ("pv", "ev", "ac")},
    }).json()
    assert body["opm_metrics"] == evm
    bac, ev, ac = project["budget_at_completion"], EXAMPLE_STATUS["ev"], EXAMPLE_STATUS["ac"]
    cpi, spi_t = ev / ac, evm["metrics"]["spi_t"]
    comparison = body["evm_comparison"]
    assert comparison["cost"]["evm"]["eac_cpi"] == pytest.approx(bac / cpi)
    assert comparison["cost"]["evm"]["eac_cpi_spi"] == pytest.approx(
        ac + (bac - ev) / (cpi * evm["metrics"]["spi"]))
    assert comparison["effort_hours"]["evm"]["eac_cpi"] == pytest.approx(
        project["planned_effort_hours"] / cpi)
    assert comparison["duration_days"]["evm"]["ieac_t"] == pytest.approx(
        project["planned_duration_days"] / spi_t)
    assert comparison["duration_days"]["model_p50"] == body["forecasts"]["delay"]["prediction"]
    assert comparison["cost"]["planned"] == bac
    assert body["evm_forecast_finish_date"] == evm["metrics"]["forecast_finish_date"]

    intake = client.post("/v1/projects/assess", json=EXAMPLE_PROJECT).json()
    assert intake["opm_metrics"] is None and intake["evm_comparison"] is None
    assert {f["stage"] for f in intake["forecasts"].values()} == {"intake"}


def test_models_endpoint_reports_the_registry(client, trained):
    settings, _ = trained
    body = client.get("/v1/models").json()
    registry = MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                            registry_uri=settings.mlflow_tracking_uri)
    assert [m["task"] for m in body["models"]] == list(TASKS)
    for info in body["models"]:
        version = registry.get_model_version_by_alias(info["name"], "champion")
        run = registry.get_run(version.run_id)
        assert (info["version"], info["alias"]) == ("1", "champion")
        assert info["run_id"] == run.info.run_id
        assert info["metrics"] == run.data.metrics and info["metrics"]
        ended = datetime.fromtimestamp(run.info.end_time / 1000, tz=timezone.utc)
        assert info["trained_at"] == ended.isoformat(timespec="seconds")
        logged = sorted((t.value, d.dataset.name, d.dataset.digest)
                        for d in run.inputs.dataset_inputs for t in d.tags
                        if t.key == "mlflow.data.context")
        assert len(logged) >= 3  # train, calibration and test projects
        digest = hashlib.sha256("\n".join(":".join(x) for x in logged).encode()).hexdigest()
        assert info["lineage_digest"] == digest


def test_readiness_and_prometheus_report_the_served_models(client, trained):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {task: "1" for task in TASKS}
    series = 'opm_prediction_count{output="cost_ratio",task="overrun"}'

    def count() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(series):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(series)

    before = count()
    client.post("/v1/predictions/overrun", json=request_rows(trained[1], 7, seed=4))
    assert count() == before + 7
    text = client.get("/metrics").text
    assert ('opm_model_info{alias="champion",model="opm-overrun",task="overrun",version="1"} 1.0'
            in text)


def test_a_missing_model_leaves_the_others_served_until_it_is_registered(trained):
    settings, _ = trained
    settings = settings.model_copy(update={"model_names": {"overrun": "opm-overrun-later"}})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings, store))
    in_flight = {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}

    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert set(body["models"]) == {"delay", "resource-demand"}
    assert list(body["missing"]) == ["overrun"]
    assert body["missing"]["overrun"].startswith("opm-overrun-later@champion is not in the registry")
    assert body["detail"].startswith("not every model is served: overrun (opm-overrun-later@")
    for task in ("delay", "resource-demand"):
        assert client.post(f"/v1/predictions/{task}", json=in_flight).status_code == 200
    for path in ("/v1/predictions/overrun", "/v1/projects/assess"):
        response = client.post(path, json=in_flight)
        assert response.status_code == 503, path
        assert response.json()["error"] == "models_not_ready"
        assert "overrun" in response.json()["message"]
        assert "opm-overrun-later@champion" in response.json()["message"]
    assert {m["task"] for m in client.get("/v1/models").json()["models"]} == {
        "delay", "resource-demand"}
    assert store.check_registry() is False  # nothing moved: no reload

    registry = MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                            registry_uri=settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    overrun = registry.get_model_version_by_alias(
        mlflow_access.registered_name("overrun", trained[0]), "champion").source
    registry.set_registered_model_alias(
        "opm-overrun-later", "champion", mlflow.register_model(overrun, "opm-overrun-later").version)
    assert store.check_registry() is True
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["missing"] == {}
    assert set(ready.json()["models"]) == set(TASKS)
    assert client.post("/v1/projects/assess", json=in_flight).status_code == 200


def registry_on(settings) -> MlflowClient:
    """A client on `settings`' registry; `mlflow.register_model` writes there too."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                        registry_uri=settings.mlflow_tracking_uri)


def test_reload_swaps_versions_atomically_under_load(private_registry):
    settings, history = private_registry
    settings = settings.model_copy(update={"api_key": SecretStr(KEY)})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings, store))
    registry = registry_on(settings)
    names = {task: mlflow_access.registered_name(task, settings) for task in TASKS}
    for name in names.values():  # version 2 of each model: the same artifact registered again
        source = registry.get_model_version_by_alias(name, "champion").source
        registry.set_registered_model_alias(name, "champion",
                                            mlflow.register_model(source, name).version)
    assert client.get("/v1/models").json()["models"][0]["version"] == "1"  # not before reload

    # In flight, so one answer uses all three families: each names the versions that made it.
    in_flight = next(r for r in request_rows(history, 10, seed=8) if "status" in r)
    seen, stop = [], threading.Event()

    def hammer():
        while not stop.is_set():
            response = client.post("/v1/projects/assess", json=in_flight)
            models = response.json().get("models", {})
            seen.append((response.status_code,
                         {task: ref["version"] for task, ref in models.items()}))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        while len(seen) < 3:  # the old set is answering before the reload starts
            time.sleep(0.01)
        response = client.post("/v1/admin/reload", params={"wait": True},
                               headers={"X-API-Key": KEY})
        deadline = time.monotonic() + 30
        while sum(v.get("delay") == "2" for _, v in seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # let a few requests run on the new set
    finally:
        stop.set()
        worker.join()
    assert response.status_code == 200
    assert response.json() == {"status": "reloaded", "models": {t: "2" for t in TASKS},
                               "error": None}
    assert {status for status, _ in seen} == {200}
    # Every answer: all three families from ONE set, never a mix; the old set, then the new.
    sets = [versions for _, versions in seen]
    assert all(set(v) == set(TASKS) for v in sets)
    mixed = [v for v in sets if len(set(v.values())) != 1]
    assert not mixed, f"{len(mixed)} answers from a mixed model set, e.g. {mixed[:3]}"
    assert {v["delay"] for v in sets} == {"1", "2"}
    order = [v["delay"] for v in sets]
    assert order == sorted(order)  # no way back
    assert {m["version"] for m in client.get("/v1/models").json()["models"]} == {"2"}
    text = client.get("/metrics").text
    assert 'model="opm-delay",task="delay",version="2"} 1.0' in text
    assert 'version="1"' not in text

    # The poller's check: an alias moved back is picked up, an unchanged alias is not.
    for name in names.values():
        registry.set_registered_model_alias(name, "champion", "1")
    assert store.check_registry() is True
    assert store.current.versions() == {task: "1" for task in TASKS}
    assert store.check_registry() is False


def test_the_poller_loads_a_moved_alias_in_the_background(private_registry):
    settings, _ = private_registry
    settings = settings.model_copy(update={"registry_poll_seconds": 0.2})
    registry = registry_on(settings)

    def served(client) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = client.get("/readyz")
            if ready.status_code == 200:
                return ready.json()["models"]
            time.sleep(0.05)
        raise AssertionError(ready.json())

    with TestClient(create_app(settings)) as client:  # lifespan: background load + poller
        before = served(client)
        name = mlflow_access.registered_name("delay", settings)
        source = registry.get_model_version_by_alias(name, "champion").source
        new = str(mlflow.register_model(source, name).version)
        registry.set_registered_model_alias(name, "champion", new)
        deadline = time.monotonic() + 60
        while served(client)["delay"] != new and time.monotonic() < deadline:
            time.sleep(0.05)
        after = served(client)
    assert after == {**before, "delay": new}


def test_one_project_alone_gets_the_numbers_of_the_batch(trained):
    """One project takes the single-row paths (LightGBM's single-row API, one output row per
    stage's boosters, `evm_columns` on one snapshot); a batch takes `Booster.predict` and the
    vectorised metrics. Every family's arrays and the whole answer agree, intake and in flight."""
    from opm_ml.forecasting.assessment import assess
    from opm_ml.model_set import load_model_set

    settings, history = trained
    model_set = load_model_set(settings)
    models, manifest = model_set.family_models(), model_set.manifest
    request = project_request(manifest)
    rows = request_rows(history, 60, seed=11)
    items = [request.model_validate(r) for r in rows]
    batch_inputs = ProjectInputs.from_requests(items, manifest)
    assert 20 < len(batch_inputs.inflight) < 40
    batch = assess(models, batch_inputs).to_json(3)
    for i, item in enumerate(items):
        inputs = ProjectInputs.from_requests([item], manifest)
        assert_close(assess(models, inputs).to_json(3)[0], batch[i], f"project {i}")
        stage = "inflight" if inputs.inflight_mask[0] else "intake"
        position = int(np.flatnonzero(batch_inputs.rows_of(stage) == i)[0])
        for name, model in models.items():
            estimator = model.stages[stage]
            one = estimator.predict_arrays(inputs.matrix(stage, model.manifest,
                                                         estimator.feature_names_))
            many = estimator.predict_arrays(batch_inputs.matrix(stage, model.manifest,
                                                                estimator.feature_names_))
            assert one.keys() == many.keys()
            for key, values in one.items():
                np.testing.assert_allclose(values[0], many[key][position], rtol=1e-9,
                                           atol=1e-12, err_msg=f"{name} {stage} {key} {i}")
