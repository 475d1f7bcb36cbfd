"""POST /v1/schedules/check and /risk: the uploaded file as the body, limits before parsing,
422 naming what is wrong with a file (never a 500, fuzzed), the served activity-duration
champion used when loaded and the template otherwise, said in every answer."""

from __future__ import annotations

from dataclasses import replace

import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import registry_settings
from test_schedule_files import SCHEDULES, XER_FAULTS, _xer, needs_files

from opm_ml import mlflow_access
from opm_ml.schedule import analysis, files
from opm_ml.schedule.activity_features import activity_features
from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.distributions import Uncertainty
from opm_ml.schedule.montecarlo import run_monte_carlo
from opm_ml.schedule.uncertainty import ActivityDurationModel
from opm_ml.synthetic.schedules import FEATURES, generate_schedule, generate_schedules
from serving.app import create_app
from serving.model_store import ModelStore

LIMITS = {"max_schedule_bytes": 400_000, "max_schedule_activities": 80,
          "max_schedule_iterations": 4_000, "max_schedule_samples": 200_000}


def make_client(tmp_path_factory, **overrides) -> TestClient:
    config = registry_settings(tmp_path_factory.mktemp("schedules_api"),
                               **{**LIMITS, **overrides})
    return TestClient(create_app(config, ModelStore(config)))  # no models: the template


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    return make_client(tmp_path_factory)


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """A generated 40-activity schedule: (Schedule, XER bytes, MSPDI bytes)."""
    root = tmp_path_factory.mktemp("plan")
    schedule, _ = generate_schedule(40, seed=3)
    xer = files.write_schedule(schedule, root / "plan.xer").read_bytes()
    xml = files.write_schedule(schedule, root / "plan.xml").read_bytes()
    return schedule, xer, xml


def refused(response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "problems"}
    assert "Traceback" not in body["message"] and "\n" not in body["message"]
    return body["message"]


def test_check_gives_cpm_dcma_and_the_critical_path(client, plan):
    schedule, xer, xml = plan
    cpm = run_cpm(schedule)
    for body, name in ((xer, "plan.xer"), (xml, "plan.xml")):
        got = client.post(f"/v1/schedules/check?filename={name}", content=body)
        assert got.status_code == 200, got.text
        answer = got.json()
        assert answer["schedule"]["format"] == ("xer" if name.endswith("xer") else "mspdi")
        assert answer["schedule"]["activities"] == 40
        assert answer["schedule"]["finish"] == f"{cpm.project_finish:%Y-%m-%dT%H:%M}"
        assert [a["activity_id"] for a in answer["critical_path"]] == cpm.critical_path
        assert [c["number"] for c in answer["dcma"]] == list(range(1, 15))
        lags = next(c for c in answer["dcma"] if c["number"] == 3)
        assert lags["offender_count"] == len(lags["offenders"]) > 0  # the generator adds lags


@needs_files
def test_check_reads_the_real_exports(client):
    got = client.post("/v1/schedules/check?filename=invalid-8.4.xer",
                      content=(SCHEDULES / "invalid-8.4.xer").read_bytes()).json()
    assert got["agreement"] == {"compared": 24, "agree": 24, "activities": 12}
    assert any("calendar 180" in w for w in got["warnings"])
    empty = client.post("/v1/schedules/check?filename=calendars.xml", content=(
        SCHEDULES / "calendar-calendars-project2019-mspdi.xml").read_bytes()).json()
    assert empty["schedule"]["activities"] == 0 and "no activities" in empty["warnings"][-1]
    message = refused(client.post("/v1/schedules/risk?filename=calendars.xml", content=(
        SCHEDULES / "calendar-calendars-project2019-mspdi.xml").read_bytes()))
    assert "no activities to simulate" in message


def test_risk_on_the_template_says_so_and_matches_the_library(client, plan):
    schedule, xer, _ = plan
    got = client.post("/v1/schedules/risk?filename=plan.xer&iterations=500&seed=7", content=xer)
    assert got.status_code == 200, got.text
    answer = got.json()
    source = answer["uncertainty"]
    assert source["source"] == "template" and source["model"] is None
    assert "PERT(90 %, 100 %, 130 %)" in source["description"]
    assert "no models are loaded" in source["note"]
    assert source["activities"] == {"planner": 0, "model": 0, "template": 38}
    # The same analysis through the library: identical percentiles.
    uncertainty, _ = analysis.build_uncertainty(schedule)
    expected = run_monte_carlo(schedule, uncertainty, 500, seed=7).finish_percentiles()
    assert answer["finish"]["p80"] == f"{expected[80]:%Y-%m-%dT%H:%M}"
    finish = [answer["finish"][k] for k in ("p10", "p50", "p80", "p90")]
    assert finish == sorted(finish) and answer["iterations"] == 500
    curve = [p["probability"] for p in answer["s_curve"]]
    assert len(curve) == 101 and curve == sorted(curve)
    assert sum(b["count"] for b in answer["histogram"]) == 500
    assert answer["tornado"] and answer["critical_path"]
    assert all(0 <= a["criticality_index"] <= 1 for a in answer["critical_path"])


# --- limits, checked before anything is parsed ----------------------------------------------


def test_size_limit_by_header_and_while_streaming(client, plan, monkeypatch):
    monkeypatch.setattr(files, "read_schedule", _never)
    big = plan[1] + b" " * LIMITS["max_schedule_bytes"]
    message = refused(client.post("/v1/schedules/check", content=big), 413)
    assert "400,000 bytes (OPM_ML_MAX_SCHEDULE_BYTES)" in message
    chunks = (big[i:i + 10_000] for i in range(0, len(big), 10_000))  # no Content-Length
    assert "400,000 bytes" in refused(client.post("/v1/schedules/risk", content=chunks), 413)


def test_activity_limit_is_counted_in_the_raw_file(client, tmp_path, monkeypatch):
    schedule, _ = generate_schedule(90, seed=5)
    for suffix in (".xer", ".xml"):
        body = files.write_schedule(schedule, tmp_path / f"big{suffix}").read_bytes()
        assert files.count_activities(body, f"big{suffix}") >= 90
        monkeypatch.setattr(files, "read_schedule", _never)
        message = refused(client.post(f"/v1/schedules/check?filename=big{suffix}",
                                      content=body), 413)
        assert "more than the limit of 80 (OPM_ML_MAX_SCHEDULE_ACTIVITIES)" in message
        monkeypatch.undo()


def _never(*args, **kwargs):
    raise AssertionError("the file was parsed although a limit refuses it")


def test_iterations_are_bounded(client, plan, tmp_path):
    xer = plan[1]
    found = client.post("/v1/schedules/risk?iterations=4001", content=xer).json()
    assert found["problems"][0]["field"] == "query.iterations"
    assert "OPM_ML_MAX_SCHEDULE_ITERATIONS" in found["problems"][0]["problem"]
    # 70 activities x 3,000 iterations is over the 200,000 samples one request may draw.
    schedule, _ = generate_schedule(70, seed=6)
    big = files.write_schedule(schedule, tmp_path / "big.xer").read_bytes()
    problem = client.post("/v1/schedules/risk?iterations=3000", content=big).json()
    assert problem["problems"][0]["problem"] == (
        "iterations must be at most 2,857 for 70 activities: activities x iterations is "
        "limited to 200,000 (OPM_ML_MAX_SCHEDULE_SAMPLES) (got 3000)")
    # Without `iterations`, a large network gets as many as the limits allow.
    assert client.post("/v1/schedules/risk", content=big).json()["iterations"] == 2857
    for bad in ("iterations=0", "correlation=1", "group_by=colour", "seed=-1"):
        assert client.post(f"/v1/schedules/risk?{bad}", content=xer).status_code == 422


# --- files that cannot be used: 422 naming why -------------------------------------------------


@needs_files
@pytest.mark.parametrize("fault, message", XER_FAULTS)
@pytest.mark.parametrize("endpoint", ["check", "risk"])
def test_a_bad_file_is_422_naming_the_problem(client, tmp_path, fault, message, endpoint):
    body = _xer(tmp_path, **fault).read_bytes()
    got = client.post(f"/v1/schedules/{endpoint}?filename=bad.xer&iterations=50", content=body)
    assert message in refused(got)
    assert got.json()["error"] == "invalid_schedule"


@pytest.mark.parametrize("body, message", [
    (b"", "the file is empty"),
    (b"%PDF-1.7 \x00\x01", "not a schedule file this tool reads"),
    (b"<Project><Tasks><Task><UID>1</UID>", "the file is truncated: the XML ends"),
    (b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa">]><Project><Name>&a;</Name>'
     b"</Project>", "refused unsafe XML"),
    (b"ERMHDR\t8.4\n%T\tTASK\n%F\ttask_id\n%R\t\x81\x8d\x9d\n", "truncated"),
])
def test_garbage_is_422(client, body, message):
    assert message in refused(client.post("/v1/schedules/check?filename=up.xml", content=body))


def test_unforeseen_content_is_422_with_a_reference_not_a_500(client, plan, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise KeyError("clndr_id")

    monkeypatch.setattr(files, "read_schedule", broken)
    message = refused(client.post("/v1/schedules/check?filename=../../etc/x.xer",
                                  content=plan[1]))
    assert message.startswith("x.xer: cannot read the file (unforeseen content; reference ")
    assert "unforeseen content in x.xer" in caplog.text and "KeyError" in caplog.text


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(how=st.sampled_from(["cut", "flip", "drop", "double"]), at=st.floats(0, 0.999),
       value=st.integers(0, 255), fmt=st.sampled_from(["xer", "xml"]),
       endpoint=st.sampled_from(["check", "risk"]))
def test_fuzzed_files_are_200_or_422_never_500(fuzz_client, how, at, value, fmt, endpoint):
    client, bodies = fuzz_client
    data = bodies[fmt]
    i = int(at * len(data))
    if how == "cut":
        data = data[:i]
    elif how == "flip":
        data = data[:i] + bytes([value]) + data[i + 1:]
    else:
        lines = data.split(b"\n")
        j = int(at * len(lines))
        data = b"\n".join(lines[:j] + lines[j + 1:] if how == "drop"
                          else lines[:j + 1] + lines[j:])
    got = client.post(f"/v1/schedules/{endpoint}?filename=f.{fmt}&iterations=30", content=data)
    assert got.status_code in (200, 422), (got.status_code, got.text)
    if got.status_code == 422:
        refused(got)


@pytest.fixture(scope="module")
def fuzz_client(client, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    schedule, _ = generate_schedule(12, seed=9)
    return client, {fmt: files.write_schedule(schedule, root / f"s.{fmt}").read_bytes()
                    for fmt in ("xer", "xml")}


# --- the served activity-duration champion -----------------------------------------------------


@pytest.fixture(scope="module")
def served(small_registry, tmp_path_factory):
    """An app on a copy of the session registry plus a registered activity-duration champion
    (a small model, trained once here)."""
    import sqlite3

    from training.schedule import load_activity_spec, train_activity_model

    base, _ = small_registry
    root = tmp_path_factory.mktemp("served_schedules")
    source = sqlite3.connect(base.mlflow_tracking_uri.removeprefix("sqlite:///"))
    copy = sqlite3.connect(root / "mlflow.db")
    try:
        source.backup(copy)  # the families' versions; their artifacts are only read
    finally:
        source.close()
        copy.close()
    config = base.model_copy(update={
        "mlflow_tracking_uri": f"sqlite:///{root / 'mlflow.db'}", **LIMITS,
        # New artifacts (the activity model) in this copy's own folder; the families' stay put.
        "mlflow_experiment": "schedules-api"})
    config = config.model_copy(update={"mlflow_artifact_root": root / "artifacts"})
    spec = replace(load_activity_spec(), projects=24, min_activities=15, max_activities=25,
                   hyperparameters={"n_estimators": 40, "min_child_samples": 10},
                   must_beat_baselines=False)
    result = train_activity_model("synthetic", config, seed=4, spec=spec)
    assert result.decision.promoted, result.decision.reason
    store = ModelStore(config)
    assert store.reload(wait=True), store.last_error
    return TestClient(create_app(config, store)), config, result


def test_the_served_champion_gives_every_remaining_activity_its_distribution(served, plan):
    client, config, result = served
    assert client.app.state.model_store.current.activity.version == "1"
    schedule, xer, _ = plan
    got = client.post("/v1/schedules/risk?filename=plan.xer&iterations=400&seed=2", content=xer)
    assert got.status_code == 200, got.text
    source = got.json()["uncertainty"]
    assert source["source"] == "activity-duration model" and source["note"] == ""
    assert source["model"] == {"name": "opm-activity-duration", "version": "1",
                               "alias": "champion"}
    assert source["activities"] == {"planner": 0, "model": 38, "template": 0}
    assert "opm-activity-duration v1 (champion)" in source["description"]
    # The served answer is the library's run with the model's own estimates.
    features = activity_features(schedule)
    estimates = result.model.estimates(features, np.exp(features["log_planned_hours"]))
    groups = {a.id: a.wbs_id or "" for a in schedule.activities
              if a.status != "complete" and a.remaining > 0}
    expected = run_monte_carlo(schedule, Uncertainty(estimates, groups, 0.3), 400, seed=2)
    assert got.json()["finish"]["p50"] == f"{expected.finish_percentiles()[50]:%Y-%m-%dT%H:%M}"


def test_a_moved_activity_alias_is_picked_up_by_the_poller(served):
    client, config, result = served
    store = client.app.state.model_store
    assert not store.check_registry()  # nothing moved
    with mlflow_access.tracking(config):
        version = mlflow.register_model(result.model_uri, result.name).version
    mlflow_access.client(config).set_registered_model_alias(result.name, "champion", version)
    assert store.check_registry()
    assert store.current.activity.version == str(version)
    assert store.current.registry_state()["activity-duration"] == str(version)


def test_a_model_needing_project_fields_falls_back_to_the_template_and_says_why(plan):
    schedule, _, _ = plan
    history = generate_schedules(12, seed=8, activities=(15, 20))
    needs_project = ActivityDurationModel(n_estimators=20, min_child_samples=5).fit(
        history.activities[list(FEATURES)], history.activities["ratio"],
        history.activities["project_id"])
    ref = {"name": "opm-activity-duration", "version": "3", "alias": "champion"}
    _, source = analysis.build_uncertainty(schedule, model=needs_project, model_ref=ref,
                                           fallback=True)
    assert source.source == "template" and source.model is None
    assert source.note.startswith("opm-activity-duration v3 (champion) not used: the "
                                  "activity-duration model also needs the project fields")
    with pytest.raises(analysis.ScheduleError, match="--project KEY=VALUE"):
        analysis.build_uncertainty(schedule, model=needs_project, model_ref=ref)


def test_openapi_documents_the_upload_and_its_errors(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/schedules/check", "/v1/schedules/risk"):
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/octet-stream"]["schema"][
            "format"] == "binary"
        assert {"200", "413", "422"} <= set(operation["responses"])


def test_hostile_filenames_only_name_the_file(client):
    message = refused(client.post("/v1/schedules/check?filename=..%2F..%2Fetc%2Fpasswd",
                                  content=b"hello"))
    assert message.startswith("passwd: not a schedule file")

