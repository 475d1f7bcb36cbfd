"""The prediction log: every served forecast recorded, off the hot path, never silently lost.

Against the session's small real models: what the API answered is what the database holds
(versions, quantiles, P(late), the features the models saw); a full queue drops with a
counter and a log line; committed records survive a crash; the database unavailable at
start-up, or a real PostgreSQL server stopped mid-run, never stops the API from answering.
"""

import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import pg_cluster
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from opm_ml.monitoring import scenario
from opm_ml.monitoring.log import PredictionLog
from serving.app import create_app
from serving.model_store import ModelStore

DOWN = "postgresql+psycopg2://opm@127.0.0.1:1/opm?connect_timeout=1"  # nothing listens


@pytest.fixture(scope="module")
def bodies():
    """Six intake and in-flight project bodies from generated projects."""
    rows = scenario.forecast_rows(scenario.future(40, seed=5, shifted=False))
    return scenario.request_bodies(rows)[:3] + scenario.request_bodies(rows)[-3:]


def app_for(small_registry, tmp_path, **overrides):
    settings, _ = small_registry
    settings = settings.model_copy(update={
        "database_url": f"sqlite:///{tmp_path / 'log.db'}", **overrides})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    return create_app(settings, store), settings


def rows(url: str, sql: str) -> list:
    with create_engine(url).connect() as conn:
        return conn.execute(text(sql)).all()


def metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not on /metrics")


def test_every_answer_is_recorded_as_answered(small_registry, tmp_path, bodies):
    app, settings = app_for(small_registry, tmp_path)
    with TestClient(app) as client:
        assessed = client.post("/v1/projects/assess", json=bodies).json()
        delay = client.post("/v1/predictions/delay", json=bodies[-1]).json()
        assert app.state.prediction_log.flush(10)
        assert metric(client, "opm_prediction_log_written_total") == len(bodies) + 1
    logged = rows(settings.database_url, "SELECT l.project_id, l.stage, l.source, l.progress, "
                  "l.features, f.family, f.model_version, f.p10, f.p50, f.p90, "
                  "f.probability_late FROM prediction_log l JOIN prediction_log_forecast f "
                  "ON f.prediction_id = l.id ORDER BY l.logged_at, f.family")
    assert len(logged) == 3 * len(bodies) + 1
    answers = [(item["project_id"], slug, item["forecasts"][slug], assessed["models"][slug])
               for item in assessed["items"] for slug in item["forecasts"]]
    answers.append((delay["project_id"], "delay", delay, delay["model"]))
    by_key = {(r.project_id, r.family, r.p50): r for r in logged}
    for pid, slug, forecast, model in answers:
        family = "resource" if slug == "resource-demand" else slug
        row = by_key[(pid, family, forecast["interval"]["p50"])]
        assert (row.p10, row.p90) == (forecast["interval"]["p10"], forecast["interval"]["p90"])
        assert row.model_version == model["version"] and row.stage == forecast["stage"]
        assert row.source == "api"
        assert row.probability_late == forecast.get("probability_late")
    # The features are the model's own inputs: what the explanation reports for a feature.
    first = assessed["items"][0]["forecasts"]["delay"]["explanation"]["contributions"]
    features = json.loads(next(r.features for r in logged
                               if r.project_id == assessed["items"][0]["project_id"]))
    numeric = [c for c in first if isinstance(c["value"], float)]
    assert numeric and all(features[c["feature"]] == pytest.approx(c["value"]) for c in numeric)
    inflight = [r for r in logged if r.stage == "inflight"]
    assert inflight and all(r.progress is not None for r in inflight)


def test_a_full_queue_drops_with_a_counter_and_a_log_line(small_registry, tmp_path, bodies,
                                                          caplog):
    app, _ = app_for(small_registry, tmp_path, database_url=DOWN, prediction_log_capacity=6)
    app.state.prediction_log.retry_seconds = 0.2
    app.state.prediction_log.shutdown_seconds = 0.5
    with caplog.at_level(logging.WARNING, "opm_ml.monitoring"), TestClient(app) as client:
        for _ in range(3):  # 6 rows fit; the next two requests' 12 do not
            assert client.post("/v1/projects/assess", json=bodies).status_code == 200
        assert metric(client, 'opm_prediction_log_dropped_total{reason="queue_full"}') == 12
        assert metric(client, "opm_prediction_log_queue_rows") == 6
    # One line for the first drop, then at most one every LOG_EVERY seconds: no log flood.
    lines = [r.message for r in caplog.records if "queue full" in r.message]
    assert len(lines) == 1 and "6 records dropped so far" in lines[0], caplog.text


def test_database_unavailable_at_start_up_the_api_keeps_answering(small_registry, tmp_path,
                                                                  bodies, caplog):
    app, _ = app_for(small_registry, tmp_path, database_url=DOWN)
    app.state.prediction_log.shutdown_seconds = 0.5  # how long shutdown waits for the database
    with caplog.at_level(logging.WARNING, "opm_ml.monitoring"), TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/projects/assess", json=bodies).status_code == 200
        deadline = time.monotonic() + 10
        while "database unavailable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metric(client, "opm_prediction_log_database_up") == 0
        assert client.get("/v1/monitoring").status_code == 503  # names the database
    assert "database unavailable" in caplog.text and "127.0.0.1" in caplog.text
    # Stopping with the database still down says how many records it could not write.
    assert f"{len(bodies)} records not written" in caplog.text


def test_committed_records_survive_a_crash(tmp_path):
    """A record counted as written is committed: a killed process loses none of them."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    script = textwrap.dedent(f"""
        import os
        from opm_ml.monitoring import scenario
        from opm_ml.monitoring.log import PredictionLog
        from opm_ml.forecasting.inputs import ProjectInputs
        from opm_ml.features import contract_manifest
        rows = scenario.forecast_rows(scenario.future(30, seed=3, shifted=False))
        inputs = ProjectInputs.from_frame(rows, contract_manifest())
        log = PredictionLog({url!r})
        for _ in range(5):
            log.record("api", inputs, {{}}, {{}})
        assert log.flush(30)
        print(log.stats.written, flush=True)
        os._exit(9)  # no clean shutdown: nothing runs after this
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ})
    assert done.returncode == 9, done.stderr
    written = int(done.stdout.strip())
    assert written > 0 and rows(url, "SELECT count(*) FROM prediction_log")[0][0] == written


def test_postgres_stopped_mid_run_then_back(small_registry, tmp_path, bodies, caplog):
    """A real PostgreSQL server goes away and comes back while the API serves."""
    try:
        pg_cluster.server_bin()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    control: dict = {}
    with pg_cluster.postgres_cluster("opm", control) as url:
        app, _ = app_for(small_registry, tmp_path, database_url=url,
                         prediction_log_capacity=2 * len(bodies))
        plog: PredictionLog = app.state.prediction_log
        plog.retry_seconds = 0.3
        with caplog.at_level(logging.WARNING, "opm_ml.monitoring"), TestClient(app) as client:
            assert client.post("/v1/projects/assess", json=bodies).status_code == 200
            assert plog.flush(20) and plog.stats.written == len(bodies)
            control["stop"]()
            assert client.post("/v1/projects/assess", json=bodies).status_code == 200
            deadline = time.monotonic() + 20
            while plog.stats.database_up and time.monotonic() < deadline:
                time.sleep(0.05)  # the writer finds the database gone
            assert metric(client, "opm_prediction_log_database_up") == 0
            for _ in range(3):  # the queue holds one more request; two are dropped, counted
                assert client.post("/v1/projects/assess", json=bodies).status_code == 200
            assert plog.stats.dropped == {"queue_full": 2 * len(bodies)}
            control["start"]()
            assert plog.flush(30), plog.stats
            assert plog.stats.written == 3 * len(bodies)
            assert metric(client, "opm_prediction_log_database_up") == 1
        assert rows(url, "SELECT count(*) FROM prediction_log")[0][0] == 3 * len(bodies)
    assert "database unavailable" in caplog.text and "is back after" in caplog.text
    assert f"{2 * len(bodies)} records dropped during the outage" in caplog.text


def test_batch_scoring_records_every_scored_row(small_registry, tmp_path, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    from opm_ml.batch_scoring import cli as score_cli
    from opm_ml.cli import app as cli
    from opm_ml.settings import get_settings

    settings, _ = small_registry
    url = f"sqlite:///{tmp_path / 'score.db'}"
    for name, value in (("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri),
                        ("MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root)),
                        ("DATABASE_URL", url)):
        monkeypatch.setenv(f"OPM_ML_{name}", value)
    monkeypatch.setattr(score_cli, "console", Console(width=250))
    frame = scenario.forecast_rows(scenario.future(30, seed=8, shifted=False))
    frame.to_csv(tmp_path / "in.csv", index=False)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli, ["score", str(tmp_path / "in.csv"), "--out",
                                        str(tmp_path / "out.parquet"), "--chunk-rows", "40"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert f"prediction log: {len(frame):,} forecasts recorded" in done.output
    logged = rows(url, "SELECT l.source, count(*), count(DISTINCT f.model_version) FROM "
                       "prediction_log l JOIN prediction_log_forecast f ON f.prediction_id = l.id "
                       "GROUP BY l.source")
    assert logged == [("score", 3 * len(frame), 1)]


def test_no_write_starts_while_held_unless_the_queue_is_half_full(tmp_path):
    """A batch chunk holds the log (`BatchLane`'s quiet): records wait, then are written;
    a queue half full is written at once anyway, so a long batch never drops records."""
    from opm_ml.features import contract_manifest
    from opm_ml.forecasting.inputs import ProjectInputs

    frame = scenario.forecast_rows(scenario.future(30, seed=3, shifted=False))
    inputs = ProjectInputs.from_frame(frame, contract_manifest())
    log = PredictionLog(f"sqlite:///{tmp_path / 'held.db'}", linger_seconds=0.05)
    log.start()
    assert log.record("api", inputs, {}, {}) and log.flush(30)
    written = log.stats.written
    with log.held():
        log.record("api", inputs, {}, {})
        time.sleep(1.0)  # twenty lingers: the writer would have written by now
        assert log.stats.written == written and log.stats.queued > 0
    assert log.flush(30) and log.stats.written > written
    log.stop()

    small = PredictionLog(f"sqlite:///{tmp_path / 'half.db'}", capacity=2 * inputs.n,
                          linger_seconds=0.05)
    small.start()
    with small.held():
        assert small.record("api", inputs, {}, {})  # half the capacity: written while held
        assert small.flush(30)
    small.stop()
