"""The team set-up end to end: an MLflow tracking server on PostgreSQL with an artifact folder.

A throwaway PostgreSQL cluster (tests/pg_cluster.py) backs a real `mlflow server` on loopback.
The three families are trained small against it, the rows are checked in PostgreSQL and the
artifacts in the server's folder (none on the client's disk), the API serves them, a second run
goes through the champion gate and an admin reload serves what the alias then points to.
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import mlflow
import pg_cluster
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pg_cluster import connect, free_port, postgres_cluster
from pydantic import SecretStr

from opm_ml import mlflow_access, validation
from opm_ml.forecasting import FAMILY_NAMES as FAMILIES
from opm_ml.model_set import load_model_set
from opm_ml.settings import Settings
from opm_ml.synthetic import generate_history, write_history
from serving.app import create_app
from serving.model_store import registry_versions
from serving.schemas.projects import EXAMPLE_PROJECT
from training.pipeline import train_models
from training.registry import registry_listing
from training.specs import load_spec
from training.tracking import is_tracking_server, setup_experiment

KEY = "team-admin-key-0123"  # OPM_ML_API_KEY needs 16+ characters
NAMES = {"delay": "opm-delay", "overrun": "opm-overrun", "resource-demand": "opm-resource-demand"}
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
# MLflow's job runner (GenAI evaluation jobs, 8 processes) is not used by opm-ml: off, as in README.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@pytest.fixture(scope="module", autouse=True)
def restore_mlflow_uris():
    """Later modules must not inherit this module's (by then stopped) tracking server."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


@pytest.fixture(scope="module")
def pg_uri():
    try:
        with postgres_cluster("mlflow") as uri:
            yield uri
    except RuntimeError as exc:  # binaries missing or the cluster would not start: say why
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def server(pg_uri, tmp_path_factory, request):
    """(URL, artifact folder) of `mlflow server` on the PostgreSQL store; its log shown on failure."""
    failed_before = request.session.testsfailed
    root = tmp_path_factory.mktemp("mlflow_server")
    artifacts, log_path = root / "artifacts", root / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        # Own session: the server's uvicorn workers are stopped with it, by its process group.
        proc = subprocess.Popen(
            [MLFLOW, "server", "--backend-store-uri", pg_uri, "--artifacts-destination",
             str(artifacts), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True,
            env={**os.environ, **SERVER_ENV})
    try:
        deadline = time.monotonic() + 90  # schema migrations on an empty database come first
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not become healthy at {url}:\n"
                            f"{log_path.read_text(errors='replace')[-4000:]}", pytrace=False)
            time.sleep(0.25)
        yield url, artifacts
    finally:
        if request.session.testsfailed > failed_before:  # past pytest's capture, at the end
            request.config.pluginmanager.getplugin("terminalreporter").write_line(
                f"--- mlflow server log ({log_path}) ---\n"
                f"{log_path.read_text(errors='replace')[-4000:]}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _specs(margins: dict[str, float] | None = None) -> dict:
    """Small models (25 trees), registered even if they lose to a baseline, as conftest does."""
    margins = margins or {}
    return {f: replace(load_spec(f).with_hyperparameters(n_estimators=25),
                       must_beat_baselines=False,
                       **({"margin": margins[f]} if f in margins else {}))
            for f in FAMILIES}


@pytest.fixture(scope="module")
def team(server, tmp_path_factory):
    """(settings, history, first training result) against the team server; API key set."""
    url, _ = server
    root = tmp_path_factory.mktemp("team_client")
    settings = Settings(_env_file=None, mlflow_tracking_uri=url, data_dir=root / "history",
                        mlflow_artifact_root=root / "client_artifacts", registry_poll_seconds=0,
                        api_key=SecretStr(KEY))
    write_history(generate_history(1500, seed=11), settings.data_dir)
    history = validation.load_history(settings.data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as `opm-ml train` does
        result = train_models(history, settings=settings, specs=_specs(), seed=3)
        yield settings, history, result


def registry_rows(pg_uri: str) -> dict[str, dict]:
    """Registered name -> versions, champion and where each version's files are, from PostgreSQL."""
    with contextlib.closing(connect(pg_uri)) as conn, conn.cursor() as cur:
        cur.execute("SELECT name, version, storage_location FROM model_versions "
                    "ORDER BY name, version")
        versions = cur.fetchall()
        cur.execute("SELECT name, version FROM registered_model_aliases WHERE alias = 'champion'")
        champions = dict(cur.fetchall())
    return {name: {"versions": [str(v) for n, v, _ in versions if n == name],
                   "champion": str(champions.get(name)),
                   "stored_on_server": all(where.startswith("mlflow-artifacts:/")
                                           for n, _, where in versions if n == name)}
            for name in NAMES.values()}


def champions(settings: Settings) -> dict[str, str]:
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                          registry_uri=settings.mlflow_tracking_uri)
    return {task: str(client.get_model_version_by_alias(name, "champion").version)
            for task, name in NAMES.items()}


def test_missing_server_binaries_name_the_install_script(monkeypatch, tmp_path):
    monkeypatch.setattr(pg_cluster, "BIN_GLOB", f"{tmp_path}/*/bin")
    with pytest.raises(RuntimeError, match="sh scripts/install_os_packages.sh installs them"):
        pg_cluster.server_bin()
    (tmp_path / "16" / "bin").mkdir(parents=True)
    (tmp_path / "16" / "bin" / "initdb").touch()
    assert pg_cluster.server_bin() == tmp_path / "16" / "bin"


def test_experiment_artifacts_go_to_the_server_not_the_client(server, pg_uri, tmp_path,
                                                               caplog):
    url, _ = server
    # A store this process opens itself (here the database directly, as with SQLite) keeps
    # its artifacts in the configured local folder.
    local = Settings(_env_file=None, mlflow_tracking_uri=pg_uri, mlflow_experiment="local",
                     mlflow_artifact_root=tmp_path / "local_artifacts")
    experiment = MlflowClient(pg_uri).get_experiment(setup_experiment(local))
    assert experiment.artifact_location == (tmp_path / "local_artifacts").resolve().as_uri()

    remote = Settings(_env_file=None, mlflow_tracking_uri=url, mlflow_experiment="remote",
                      mlflow_artifact_root=tmp_path / "unused")
    experiment = MlflowClient(url).get_experiment(setup_experiment(remote))
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")
    assert not (tmp_path / "unused").exists()
    assert [is_tracking_server(u) for u in (url, "HTTPS://mlflow.example", pg_uri,
                                            "sqlite:///mlflow.db", "file:///tmp/mlruns")] == \
        [True, True, False, False, False]

    # An experiment an older client created on the server with a local folder is called out.
    MlflowClient(url).create_experiment("legacy", artifact_location=tmp_path.as_uri())
    caplog.set_level("WARNING", logger="opm_ml.training")
    setup_experiment(remote.model_copy(update={"mlflow_experiment": "legacy"}))
    assert "other machines cannot load its models" in caplog.text


def test_training_registers_champions_in_postgres_and_artifacts_on_the_server(
        team, server, pg_uri):
    settings, _, result = team
    _, artifacts = server
    assert [r.decision.promoted for r in result.results] == [True, True, True]
    assert champions(settings) == {task: "1" for task in NAMES}
    rows = registry_rows(pg_uri)  # the registry really is the PostgreSQL database
    assert rows == {name: {"versions": ["1"], "champion": "1", "stored_on_server": True}
                    for name in NAMES.values()}
    # Every model's files are in the server's artifact folder; nothing on the client's disk.
    assert len(list(artifacts.rglob("family_model.joblib"))) == 3
    assert len(list(artifacts.rglob("MLmodel"))) == 3
    assert not settings.mlflow_artifact_root.exists()


@pytest.fixture(scope="module")
def client(team):
    """The API as `opm-ml serve` builds it: models loaded in the background at start-up."""
    settings, _, _ = team
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.json()
            time.sleep(0.1)
        yield client


def test_api_serves_the_champions_from_the_team_server(client):
    ready = client.get("/readyz").json()
    assert (ready["status"], ready["models"]) == ("ready", {t: "1" for t in NAMES})
    response = client.post("/v1/projects/assess", json=EXAMPLE_PROJECT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {t: m["version"] for t, m in body["models"].items()} == {t: "1" for t in NAMES}
    assert set(body["forecasts"]) == set(NAMES)
    for forecast in body["forecasts"].values():
        interval = forecast["interval"]
        assert 0 < interval["p10"] <= interval["p50"] <= interval["p90"]
        assert forecast["prediction"] == interval["p50"]
        assert forecast["explanation"]


def test_second_run_goes_through_the_gate_and_reload_serves_the_alias(team, client, pg_uri):
    settings, history, _ = team
    # The gate's margins make its decision certain: the delay challenger wins with any MAPE up
    # to 11x the champion's, the overrun one would need a MAPE <= 0. Resource is not retrained.
    second = train_models(history, ("delay", "overrun"), settings=settings, seed=4,
                          specs=_specs({"delay": -10.0, "overrun": 1.0}))
    decided = {r.family: r.decision for r in second.results}
    assert all(d.registered and d.version == "2" for d in decided.values())
    assert {f: d.promoted for f, d in decided.items()} == {"delay": True, "overrun": False}
    # Both champions v1 were loaded back from the server's artifacts and scored.
    assert all(d.champion_version == "1" and d.champion_score > 0 for d in decided.values())
    expected = {"delay": "2", "overrun": "1", "resource-demand": "1"}
    assert champions(settings) == expected
    rows = registry_rows(pg_uri)
    assert {task: rows[name]["champion"] for task, name in NAMES.items()} == expected
    assert {name: rows[name]["versions"] for name in NAMES.values()} == {
        "opm-delay": ["1", "2"], "opm-overrun": ["1", "2"], "opm-resource-demand": ["1"]}
    assert all(rows[name]["stored_on_server"] for name in NAMES.values())

    # What `opm-ml models` lists and what each replica's poller compares with, over HTTP.
    listing = registry_listing(mlflow_access.client(settings), list(NAMES.values()))
    assert {(r["name"], r["version"]) for r in listing if "champion" in r["aliases"]} == \
        {(name, int(expected[task])) for task, name in NAMES.items()}
    assert registry_versions(settings) == expected
    assert client.get("/readyz").json()["models"] == {t: "1" for t in NAMES}  # not yet polled
    response = client.post("/v1/admin/reload", params={"wait": True}, headers={"X-API-Key": KEY})
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "reloaded", "models": expected, "error": None}
    assert client.get("/readyz").json()["models"] == expected
    answer = client.post("/v1/projects/assess", json=EXAMPLE_PROJECT).json()
    assert {t: m["version"] for t, m in answer["models"].items()} == expected


def test_loading_from_the_server_leaves_no_downloaded_copies(team, tmp_path, monkeypatch):
    """MLflow downloads each version from the server into a temp folder it never removes, so a
    replica reloading whenever the alias moves would fill its disk; the loader deletes them."""
    settings, _, _ = team
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for _ in range(2):
        assert set(load_model_set(settings).versions()) == set(NAMES)
    assert list(scratch.iterdir()) == []
