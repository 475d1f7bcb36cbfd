"""`opm-ml schedule train`: the activity-duration model tracked in MLflow, registered only when
it beats "the estimate is right" and the reference class, and made champion only when it beats
the champion on the same held-out activities; `opm-ml schedule check|risk` through the main
app, with the registered champion used by `risk` unless a pickle overrides it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import joblib
import mlflow
import numpy as np
import pytest
from rich.console import Console
from support import REAL, WIDE, registry_settings
from typer.testing import CliRunner

from opm_ml import cli, mlflow_access
from opm_ml.schedule.files import write_schedule
from opm_ml.settings import Settings, get_settings
from opm_ml.synthetic.schedules import generate_schedule
from training.registry import register_and_judge
from training.schedule import (
    load_activity_spec,
    split_by_project,
    train_activity_model,
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return registry_settings(tmp_path_factory.mktemp("schedule_registry"))


@pytest.fixture(scope="module")
def spec():
    """Small: 30 projects of 15-25 activities, 40 trees (a few seconds)."""
    return replace(load_activity_spec(), projects=30, min_activities=15, max_activities=25,
                   hyperparameters={"n_estimators": 40, "learning_rate": 0.1,
                                    "num_leaves": 7, "min_child_samples": 10})


@pytest.fixture(scope="module")
def gated(settings, spec):
    """Three trainings on one registry: a weak model, a good one, the weak one again."""
    weak = replace(spec, hyperparameters={"n_estimators": 1, "learning_rate": 0.01},
                   must_beat_baselines=False)
    return [train_activity_model("synthetic", settings, seed=5, spec=s)
            for s in (weak, spec, weak)]


def test_the_champion_moves_only_to_a_better_model(gated, settings):
    weak, good, weak_again = gated
    assert weak.decision.promoted and weak.decision.reason.startswith("no champion yet")
    assert good.decision.promoted and good.decision.champion_version == weak.decision.version
    assert good.decision.champion_score == pytest.approx(weak.metrics["heldout/pinball_log"])
    assert not weak_again.decision.promoted and weak_again.decision.registered
    assert "kept champion" in weak_again.decision.reason
    # The champion was re-scored from the registry on the same held-out activities.
    assert weak_again.decision.champion_score == pytest.approx(
        good.metrics["heldout/pinball_log"])
    client = mlflow_access.client(settings)
    assert client.get_model_version_by_alias("opm-activity-duration",
                                             "champion").version == good.decision.version
    assert client.get_model_version_by_alias("opm-activity-duration",
                                             "challenger").version == weak_again.decision.version


def test_a_champion_that_cannot_score_is_replaced_saying_why(gated, settings, spec):
    """A champion the run cannot score (unreadable, incompatible) is no bar: the challenger is
    promoted and the reason names the champion and the error. Runs last on this registry."""
    def broken(version):
        raise ValueError(f"v{version} has no predict_log_quantiles")

    with mlflow_access.tracking(settings):
        decision = register_and_judge(gated[1].model_uri, "opm-activity-duration", spec, None,
                                      0.5, [], settings, score_champion=broken)
    champion = gated[1].decision.version
    assert decision.promoted and decision.champion_version == champion
    assert decision.champion_score is None
    assert decision.reason == (f"champion v{champion} could not score the held-out set: "
                               f"v{champion} has no predict_log_quantiles")


def test_the_good_model_beats_both_baselines_on_held_out_projects(gated):
    m = gated[1].metrics
    for baseline in ("ratio_one", "refclass"):
        assert m["heldout/pinball_log"] < m[f"heldout/baseline_{baseline}/pinball_log"]
    assert 0.6 <= m["heldout/p10_p90_coverage"] <= 0.95
    assert m["heldout/baseline_ratio_one/p10_p90_coverage"] < 0.2  # a point has no spread


def test_a_model_that_loses_to_a_baseline_is_not_registered(settings, spec):
    weak = replace(spec, hyperparameters={"n_estimators": 1, "learning_rate": 0.01})
    result = train_activity_model("synthetic", settings.model_copy(
        update={"model_names": {"activity-duration": "gate-test-activity"}}), seed=5, spec=weak)
    assert not result.decision.registered
    assert "did not beat refclass (pinball_log" in result.decision.reason
    assert not mlflow_access.client(settings).search_registered_models(
        "name = 'gate-test-activity'")


def test_the_run_is_tracked_with_lineage_plots_and_a_signed_pyfunc(gated, settings):
    good = gated[1]
    client = mlflow_access.client(settings)
    run = client.get_run(good.run_id)
    assert run.data.params["source"] == "synthetic"
    assert run.data.params["features"] == ("activity_type,wbs_area,log_planned_hours,"
                                           "total_float_days,resource_load")
    assert run.data.tags["git_commit"] and run.data.tags["opm_ml.family"] == "activity-duration"
    for key in ("heldout/pinball_log", "heldout/baseline_refclass/pinball_log",
                "heldout/baseline_ratio_one/mae_log", "check/beats_refclass"):
        assert key in run.data.metrics
    contexts = {d.tags[0].value for d in run.inputs.dataset_inputs}
    assert contexts == {"train", "test"}
    artifacts = {a.path for a in client.list_artifacts(good.run_id, "plots")}
    assert {"plots/shap_summary.png", "plots/feature_importance.png",
            "plots/residuals_vs_prediction.png"} <= artifacts
    with mlflow_access.tracking(settings):
        loaded = mlflow.pyfunc.load_model(good.model_uri)
    X = good.data.X.head(20)
    out = loaded.predict(X.astype({"activity_type": str, "wbs_area": str}))
    np.testing.assert_allclose(out["ratio_p50"], good.model.predict(X))
    shap = out[[c for c in out.columns if c.startswith("shap_")]].sum(axis=1)
    np.testing.assert_allclose(shap, np.log(out["ratio_p50"]), atol=1e-9)
    assert [c.name for c in loaded.metadata.get_input_schema().inputs] == list(X.columns)


def test_split_keeps_projects_whole_and_holds_out_the_last():
    groups = np.repeat(["a", "b", "c", "d", "e"], 3)
    test = split_by_project(groups, 0.2)
    assert set(groups[test]) == {"e"} and test.sum() == 3
    with pytest.raises(ValueError, match="at least 3 projects"):
        split_by_project(np.array(["a", "b"]), 0.2)


def test_a_bad_spec_names_the_file_and_field(tmp_path):
    path = tmp_path / "activity-duration.toml"
    text = load_activity_spec().source
    path.write_text(Path(text).read_text().replace('metric = "pinball_log"', 'metric = "r2"'))
    with pytest.raises(ValueError, match="activity-duration.toml: promotion.metric must be"):
        load_activity_spec(path)
    path.write_text(Path(text).read_text() + "\n[extra]\nx = 1\n")
    with pytest.raises(ValueError, match="extra is not a spec field"):
        load_activity_spec(path)


@pytest.mark.skipif(not (REAL / "eseur_Sip-task-info.csv").is_file(),
                    reason=f"SiP task data not present in {REAL}")
def test_the_sip_tasks_train_their_own_registered_model(settings):
    spec = replace(load_activity_spec(), hyperparameters={"n_estimators": 60})
    result = train_activity_model("sip", settings, seed=1, spec=spec)
    m = result.metrics
    print(f"\nSiP held-out projects: pinball {m['heldout/pinball_log']:.4f} vs ratio 1 "
          f"{m['heldout/baseline_ratio_one/pinball_log']:.4f}, reference class "
          f"{m['heldout/baseline_refclass/pinball_log']:.4f}; MAE log "
          f"{m['heldout/mae_log']:.3f} vs {m['heldout/baseline_ratio_one/mae_log']:.3f}; "
          f"P10-P90 cover {m['heldout/p10_p90_coverage']:.1%}")
    assert result.name == "opm-sip-activity-duration"
    assert result.decision.registered, result.decision.reason
    assert m["heldout/pinball_log"] < m["heldout/baseline_ratio_one/pinball_log"]


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture
def env(settings, monkeypatch):
    """The main app's settings point at the module's registry (get_settings is cached)."""
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("OPM_ML_MLFLOW_ARTIFACT_ROOT", str(settings.mlflow_artifact_root))
    monkeypatch.setattr(cli, "console", Console(width=250))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_plan")
    schedule, _ = generate_schedule(30, seed=3)
    return write_schedule(schedule, root / "plan.xer")


def run(*args):
    return CliRunner(env=WIDE).invoke(cli.app, [str(a) for a in args])


def test_schedule_commands_through_the_main_app(env, gated, plan, tmp_path):
    assert run("schedule", "--help").exit_code == 0
    checked = run("schedule", "check", plan)
    assert checked.exit_code == 0 and "DCMA 14-point assessment" in checked.output
    champion = gated[1].decision.version
    learned = run("schedule", "risk", plan, "--iterations", "200")
    assert learned.exit_code == 0, learned.output
    assert (f"uncertainty: learned P10/P50/P90 of opm-activity-duration v{champion} "
            "(champion)") in learned.output
    template = run("schedule", "risk", plan, "--iterations", "200", "--no-registry")
    assert "uncertainty: default template PERT(90 %, 100 %, 130 %)" in template.output
    joblib.dump(gated[0].model, tmp_path / "weak.pkl")
    override = run("schedule", "risk", plan, "--iterations", "200", "--model",
                   tmp_path / "weak.pkl")
    assert "the activity-duration model in weak.pkl" in override.output
    listed = run("models")
    assert "opm-activity-duration" in listed.output and "champion" in listed.output


def test_without_a_registry_risk_runs_on_the_template_and_says_why(plan, monkeypatch, tmp_path):
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    get_settings.cache_clear()
    try:
        result = run("schedule", "risk", plan, "--iterations", "100")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "default template" in result.output and "no model registry at" in result.output
    assert not (tmp_path / "none.db").exists()  # looking did not create a store


@pytest.mark.parametrize("args, message", [
    (["schedule", "check", "missing.xer"], "cannot read the file"),
    (["schedule", "risk", "PLAN", "--iterations", "0"], "iterations must be between 1"),
    (["schedule", "train", "--source", "erp"], "--source must be synthetic or sip"),
])
def test_bad_input_is_one_error_line_and_exit_2(env, plan, args, message):
    result = run(*[plan if a == "PLAN" else a for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("error:") == 1
    assert "Traceback" not in result.output


def test_train_command_prints_the_table_and_the_decision(env, monkeypatch):
    import training.schedule as module

    small = replace(load_activity_spec(), projects=20, min_activities=12, max_activities=16,
                    hyperparameters={"n_estimators": 20, "min_child_samples": 10},
                    must_beat_baselines=False)
    monkeypatch.setattr(module, "load_activity_spec", lambda: small)
    result = run("schedule", "train", "--seed", "9")
    assert result.exit_code == 0, result.output
    for text in ("Held-out activities", "estimate is right", "reference class",
                 "opm-activity-duration:", "held-out pinball_log", "MLflow run"):
        assert text in result.output
