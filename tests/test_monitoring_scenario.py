"""The drift scenario end to end: train on history, serve a future, let it finish, judge.

A champion (25 trees) learns from projects started 2012-2022. Projects starting in 2023-24
are then forecast through the API (at intake and near 25/50/75 % complete) and finish; their
outcomes are ingested with `opm-ml data ingest`. On an unshifted future nothing crosses the
specs' thresholds and `opm-ml retrain --if-needed` trains nothing. On a shifted one (twice the
IT share, more volatile requirements, a regime change raising overruns) the monitor flags the
shifted features and the error rise, the retrain runs the promotion gate, and the new champion
beats the old one on fresh shifted projects. Each test works on its own copy of the registry.
"""

from dataclasses import replace

import numpy as np
import pytest
from conftest import copy_registry
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from opm_ml import mlflow_access, validation
from opm_ml.cli import app as cli
from opm_ml.forecasting import FAMILY_NAMES
from opm_ml.monitoring import scenario
from opm_ml.monitoring.outcomes import actual_values
from opm_ml.settings import Settings, get_settings
from opm_ml.synthetic import write_history
from serving.app import create_app
from serving.model_store import ModelStore
from training.pipeline import train_models
from training.retrain import retrain_if_needed
from training.specs import load_spec

runner = CliRunner()
SHIFTED_FEATURES = {"project_type", "requirements_volatility"}


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """(settings, history, specs): champion v1 of each family trained on the 2012-22 history."""
    root = tmp_path_factory.mktemp("scenario")
    settings = Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                        mlflow_artifact_root=root / "artifacts", data_dir=root / "history",
                        registry_poll_seconds=0)
    history = scenario.history(800, seed=1)
    write_history(history, settings.data_dir)
    specs = {f: replace(load_spec(f).with_hyperparameters(n_estimators=25),
                        must_beat_baselines=False) for f in FAMILY_NAMES}
    train_models(validation.load_history(settings.data_dir), settings=settings, specs=specs,
                 seed=3)
    return settings, history, specs


@pytest.fixture
def world(champion, tmp_path, monkeypatch):
    """This test's registry copy and database, also as the CLI's OPM_ML_* environment."""
    base, history, specs = champion
    settings = copy_registry(base, tmp_path).model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'opm-ml.db'}"})
    for name in ("mlflow_tracking_uri", "mlflow_artifact_root", "database_url"):
        monkeypatch.setenv(f"OPM_ML_{name.upper()}", str(getattr(settings, name)))
    for module in ("opm_ml.monitoring.cli", "serving.dashboard.monitor",
                   "training.retrain_cli"):
        monkeypatch.setattr(f"{module}.console", Console(width=250))
    get_settings.cache_clear()
    yield settings, history, specs, tmp_path
    get_settings.cache_clear()


def serve_and_finish(settings, history, future, folder):
    """Forecast the future through the API, then ingest its outcomes with the CLI; returns
    the combined history folder (what the data team's history folder holds by then)."""
    bodies = scenario.request_bodies(scenario.forecast_rows(future))
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    app = create_app(settings, store)
    with TestClient(app) as client:
        for start in range(0, len(bodies), 500):
            answer = client.post("/v1/projects/assess", json=bodies[start:start + 500])
            assert answer.status_code == 200, answer.text
        assert app.state.prediction_log.flush(60)
        assert app.state.prediction_log.stats.written == len(bodies)
    write_history(future, folder / "future")
    done = runner.invoke(cli, ["data", "ingest", str(folder / "future")])
    assert done.exit_code == 0, done.output
    finished = int(future.projects["actual_finish_date"].notna().sum())
    assert f"{finished:,} finished projects stored" in done.output
    write_history(scenario.combine(history, future), folder / "combined")
    return folder / "combined"


def test_an_unshifted_future_is_not_retrained(world):
    settings, history, specs, folder = world
    combined = serve_and_finish(settings, history, scenario.future(600, seed=2, shifted=False),
                                folder)
    done = runner.invoke(cli, ["retrain", "--if-needed", "--data", str(combined)])
    assert done.exit_code == 0, done.output
    for family in FAMILY_NAMES:
        assert f"{family}: not retrained: no threshold crossed" in done.output
    assert "0 feature(s) drifted" in done.output and "realised MAPE" in done.output
    client = mlflow_access.client(settings)
    for family in FAMILY_NAMES:  # nothing new registered
        name = mlflow_access.registered_name(family, settings)
        assert [str(v.version) for v in client.search_model_versions(f"name='{name}'")] == ["1"]


def test_a_shifted_future_is_flagged_and_the_retrained_champion_is_better(world):
    settings, history, specs, folder = world
    combined = serve_and_finish(settings, history, scenario.future(600, seed=2, shifted=True),
                                folder)
    # The monitor: drift and error rise, printed, as HTML and as an MLflow run.
    html = folder / "monitoring.html"
    done = runner.invoke(cli, ["monitor", "--out", str(html)])
    assert done.exit_code == 0, done.output
    assert "window.OPM_DATA" in html.read_text() and "requirements_volatility" in done.output
    store = ModelStore(settings)
    assert store.reload(wait=True)
    report = TestClient(create_app(settings, store)).get("/v1/monitoring").json()
    drifted = {row["feature"] for row in report["drift"] if row["drifted"]}
    assert SHIFTED_FEATURES <= drifted, drifted
    calm = {row["feature"] for row in report["drift"] if row["judged"] and row["psi"] < 0.05}
    assert calm, "some features must stay put: the monitor flags what moved, not everything"
    for family in ("delay", "overrun"):
        realised = report["families"][family]["realised"]
        assert realised["n"] >= 1000
        assert realised["mape"] > realised["heldout_mape"] * 1.25, realised
        assert report["families"][family]["decision"]["retrain"]
    run = mlflow_access.client(settings).search_runs(
        [mlflow_access.client(settings).get_experiment_by_name(
            settings.mlflow_experiment).experiment_id],
        "tags.`opm_ml.kind` = 'monitor'")[0]
    assert run.data.tags["champion.delay.version"] == "1"
    assert run.data.tags["retrain.delay"] == "true"
    assert run.data.metrics["drift/intake/requirements_volatility/psi"] > 0.2

    # Retrain when needed: the gate promotes a better model, judged on the shifted projects.
    outcome = retrain_if_needed(settings, combined, specs=specs, seed=3)
    assert set(outcome.retrained) == set(FAMILY_NAMES)
    fresh = scenario.future(600, seed=7, shifted=True)
    finished = fresh.projects[fresh.projects["actual_finish_date"].notna()]
    rows = scenario.forecast_rows(fresh)
    rows = rows[rows["project_id"].isin(finished["project_id"])].reset_index(drop=True)
    client = mlflow_access.client(settings)
    for result in outcome.training.results:
        assert result.decision.promoted, result.decision.reason
        name = mlflow_access.registered_name(result.family, settings)
        old, new = (mlflow_access.load_family_model(client, name, v, settings.mlflow_tracking_uri)
                    for v in ("1", result.decision.version))
        actual = actual_values(finished)[old.spec.actual].set_axis(finished["project_id"])
        truth = actual.loc[rows["project_id"]].to_numpy()
        mape = [float(np.mean(np.abs(m.predict(rows, shap=False).quantiles[:, 1] - truth)
                              / truth)) for m in (old, new)]
        assert mape[1] < mape[0], (result.family, mape)
    # The decision run says what the retrain did.
    tags = client.get_run(outcome.decision_run_id).data.tags
    assert tags["retrain.training_run_id"] == outcome.training.parent_run_id
    assert "promoted" in tags["retrain.delay.promotion"]
