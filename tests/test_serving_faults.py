"""Serving when the registry lets it down: no served alias, a corrupted or deleted artifact, an
unreachable tracking store, a reload failing half-way.

Each time the process stays up (/healthz 200). With nothing loaded, /readyz is 503 with the
reason; after a failed reload the previous set keeps serving, /readyz stays 200, and the admin
answer and the log say what failed. Anonymous answers give a public reason (which model, and
whether it was missing, refused or unreadable) and a reference id; the cause is in the log only,
credentials masked. Faulty artifacts are copies registered under their own names,
so the shared session registry is never damaged.
"""

import logging
import re
import shutil
import socket
import time
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pydantic import SecretStr

from opm_ml.settings import Settings
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

KEY = "faults-admin-key"
ADMIN = {"X-API-Key": KEY}
IN_FLIGHT = {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}
FAILED = "loading the model set failed; keeping the set in use"


@pytest.fixture()
def base(small_registry, monkeypatch) -> Settings:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return small_registry[0].model_copy(update={"api_key": SecretStr(KEY)})


def registry(settings: Settings) -> MlflowClient:
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                        registry_uri=settings.mlflow_tracking_uri)


def register_copy(settings: Settings, name: str, new_name: str, folder: Path) -> Path:
    """Copy `name@champion`'s artifacts into `folder`, register it as new_name@champion."""
    client = registry(settings)
    source = client.get_model_version_by_alias(name, "champion")
    path = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{source.version}",
                                                    dst_path=str(folder)))
    if not client.search_registered_models(f"name = '{new_name}'"):
        client.create_registered_model(new_name)
    version = client.create_model_version(new_name, source=str(path), run_id=source.run_id)
    client.set_registered_model_alias(new_name, "champion", version.version)
    return path


def garble(model_dir: Path) -> None:
    """Overwrite the pickled family model with bytes that are not a pickle."""
    (model_dir / "artifacts" / "family_model.joblib").write_bytes(b"\x00not a pickle\xff" * 64)


def wait_not_ready(client: TestClient, timeout: float = 60) -> dict:
    """/readyz once the background load has given up (503 with a reason other than loading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = client.get("/readyz")
        detail = ready.json()["detail"] or ""
        if ready.status_code == 503 and "loading" in detail and detail != "models are loading":
            return ready.json()
        assert ready.status_code == 503, ready.text
        time.sleep(0.05)
    raise AssertionError(f"still loading: {ready.json()}")


def logged_reference(detail: str, log_text: str) -> str:
    """The reference id an anonymous answer quotes, checked to lead to the logged failure."""
    found = re.search(r"; reference ([0-9a-f]{12}) in the log$", detail)
    assert found, detail
    assert f"{FAILED} (reference {found.group(1)})" in log_text
    return found.group(1)


def assert_down_but_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None, "models": {},
                                             "missing": {}}
    answer = client.post("/v1/predictions/delay", json=IN_FLIGHT)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert answer.json()["error"] == "models_not_ready"
    assert client.post("/v1/metrics/evm", json={  # what needs no model keeps working
        "bac": 100.0, "pv": 50.0, "ev": 40.0, "ac": 45.0, "start_date": "2025-01-01",
        "planned_duration_days": 100, "status_date": "2025-02-20"}).status_code == 200


def test_no_served_alias_at_start_up_is_503_with_the_reason(base, caplog):
    settings = base.model_copy(update={"serve_alias": "no-such-alias"})
    with caplog.at_level(logging.ERROR, "opm_ml.serving"), \
            TestClient(create_app(settings)) as client:  # lifespan: background load
        ready = wait_not_ready(client)
        assert_down_but_alive(client)
    assert ready["status"] == "not_ready"
    assert ready["detail"].startswith(
        "loading the models failed: none of the models is in the registry")
    for name in ("opm-delay", "opm-overrun", "opm-resource-demand"):
        assert f"{name}@no-such-alias is not in the registry" in ready["detail"]
    logged_reference(ready["detail"], caplog.text)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["sqlite in a missing folder", "http on a closed port"])
def test_unreachable_tracking_store_at_start_up(kind, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    missing = tmp_path / "gone" / "deeper"
    if kind.startswith("sqlite"):
        uri, error = f"sqlite:///{missing / 'mlflow.db'}", "FileNotFoundError: the tracking store"
    else:
        uri, error = f"http://127.0.0.1:{closed_port()}", "MlflowException: "
    settings = Settings(_env_file=None, mlflow_tracking_uri=uri, registry_poll_seconds=0,
                        mlflow_artifact_root=tmp_path / "artifacts")
    with caplog.at_level(logging.WARNING, "opm_ml.serving"), \
            TestClient(create_app(settings)) as client:
        ready = wait_not_ready(client)
        assert_down_but_alive(client)
        store = client.app.state.model_store
        assert store.check_registry() is False  # the poller survives the outage
    # The cause names the store (a path, a host): only the log has it.
    assert re.fullmatch(r"loading the models failed; reference \w+ in the log", ready["detail"])
    reference = logged_reference(ready["detail"], caplog.text)
    assert error in caplog.text.split(reference, 1)[1]
    assert "registry check failed" in caplog.text
    assert not missing.exists()  # serving never creates a tracking store


def test_corrupted_artifact_at_start_up_is_503_naming_the_model(base, tmp_path, caplog):
    garble(register_copy(base, "opm-delay", "opm-delay-garbled", tmp_path))
    settings = base.model_copy(update={"model_names": {"delay": "opm-delay-garbled"}})
    store = ModelStore(settings)
    with caplog.at_level(logging.ERROR, "opm_ml.serving"):
        assert store.reload(wait=True) is False
    client = TestClient(create_app(settings, store))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert detail.startswith(
        "loading the models failed: opm-delay-garbled v1 (delay) cannot be loaded; reference")
    assert "KeyError" not in detail  # the cause's text stays in the log
    assert_down_but_alive(client)
    logged_reference(detail, caplog.text)
    assert "opm-delay-garbled v1 (delay) cannot be loaded: KeyError" in caplog.text


def test_artifact_deleted_after_start_up_keeps_the_old_set_serving(base, tmp_path, caplog):
    copy = register_copy(base, "opm-delay", "opm-delay-deleted", tmp_path)
    settings = base.model_copy(update={"model_names": {"delay": "opm-delay-deleted"}})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings, store))
    before = client.get("/readyz").json()["models"]
    shutil.rmtree(copy)

    with caplog.at_level(logging.ERROR, "opm_ml.serving"):
        answer = client.post("/v1/admin/reload", params={"wait": True}, headers=ADMIN)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "failed" and body["models"] == before
    assert body["error"].startswith("ModelLoadError: opm-delay-deleted v1 (delay) cannot be loaded")
    assert FAILED in caplog.text and "opm-delay-deleted v1 (delay)" in caplog.text
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == before
    forecast = client.post("/v1/predictions/delay", json=IN_FLIGHT)
    assert forecast.status_code == 200
    assert forecast.json()["model"] == {"name": "opm-delay-deleted", "version": "1",
                                        "alias": "champion"}
    assert 'opm_model_reloads_total{outcome="failed"} 1.0' in client.get("/metrics").text


def test_reload_failing_half_way_swaps_nothing(base, tmp_path, caplog):
    """v2 of delay loads, v2 of overrun (second of three) is corrupt: all stay on v1."""
    names = {"delay": "opm-delay-half", "overrun": "opm-overrun-half"}
    for family, name in names.items():
        register_copy(base, f"opm-{family}", name, tmp_path / f"{family}-v1")
    settings = base.model_copy(update={"model_names": names})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings, store))
    before = client.get("/readyz").json()["models"]
    assert before["delay"] == before["overrun"] == "1"

    register_copy(base, names["delay"], names["delay"], tmp_path / "delay-v2")
    garble(register_copy(base, names["overrun"], names["overrun"], tmp_path / "overrun-v2"))
    with caplog.at_level(logging.INFO, "opm_ml.serving"):
        answer = client.post("/v1/admin/reload", params={"wait": True}, headers=ADMIN)
    body = answer.json()
    assert answer.status_code == 503 and body["status"] == "failed"
    assert body["models"] == before  # not delay v2 with overrun v1: no mixed set
    assert body["error"].startswith("ModelLoadError: opm-overrun-half v2 (overrun) cannot be loaded")
    assert FAILED in caplog.text and "opm-overrun-half v2 (overrun)" in caplog.text
    assert "serving model set" not in caplog.text  # no swap was logged
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == before
    assessed = client.post("/v1/projects/assess", json=IN_FLIGHT)
    assert assessed.status_code == 200
    assert {t: m["version"] for t, m in assessed.json()["models"].items()} == before
