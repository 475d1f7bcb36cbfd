"""Training pipelines end to end on generated data, in a throw-away MLflow store.

One module-scoped run trains all three families (few trees, ~2,000 projects); the tests then
check splits, coverage, SHAP additivity, the logged runs, the pyfunc round trip and the gate.
"""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest

from opm_ml import mlflow_access
from opm_ml.contract import ROLES
from opm_ml.features import feature_matrix
from opm_ml.forecasting import FAMILY_NAMES as FAMILIES
from opm_ml.forecasting import family as family_spec
from opm_ml.forecasting.inputs import model_columns
from opm_ml.model_set import load_model_set
from opm_ml.settings import Settings
from opm_ml.synthetic import generate_history
from opm_ml.validation import History
from training import tracking
from training.datasets import SPLITS, completed_projects, inflight_examples, outcome_targets
from training.evaluation import heldout_frame, score_predictions
from training.pipeline import train_family, train_models
from training.registry import Decision, is_better, register_and_gate, settle_profile_set
from training.specs import load_spec

FAST = {"n_estimators": 120, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("mlflow")
    return Settings(mlflow_tracking_uri=f"sqlite:///{root}/mlflow.db",
                    mlflow_artifact_root=root / "artifacts", data_dir=root / "history")


@pytest.fixture(scope="module")
def history() -> History:
    g = generate_history(2000, seed=11)
    rejections = pd.DataFrame({"table": ["projects"], "row": [7], "column": ["complexity"],
                               "value": ["9"], "reason": ["must be <= 5"]})
    return History(g.projects, g.snapshots, g.resource_usage, rejections)


@pytest.fixture(scope="module")
def specs():
    return {f: load_spec(f).with_hyperparameters(**FAST) for f in FAMILIES}


@pytest.fixture(scope="module")
def trained(history, settings, specs):
    result = train_models(history, FAMILIES, seed=5, settings=settings, specs=specs,
                          data_source="generated:2000:seed11")
    return result, {r.family: r for r in result.results}


def test_split_is_by_project_and_ordered_in_time(trained):
    _, by_family = trained
    data = by_family["delay"].data
    ids = data.split_ids
    assert not set(ids["train"]) & set(ids["test"])
    assert not set(ids["calibration"]) & (set(ids["train"]) | set(ids["test"]))
    starts = {s: data.intake[s]["start_date"] for s in SPLITS}
    assert starts["train"].max() <= starts["calibration"].min()
    assert starts["calibration"].max() <= starts["test"].min()
    for split in SPLITS:  # every in-flight example belongs to a project of the same split
        assert set(data.inflight[split]["project_id"]) <= set(ids[split])
    test_projects = set(ids["test"])
    for split in ("train", "calibration"):
        assert not test_projects & set(data.inflight[split]["project_id"])


def test_inflight_examples_take_the_snapshot_nearest_each_progress_point(history):
    done = completed_projects(history.projects).head(200)
    picked = inflight_examples(done, history.snapshots, (25.0, 50.0, 75.0), 12.5)
    snaps = history.snapshots[history.snapshots["project_id"].isin(done["project_id"])]
    expected = []
    for pid, group in snaps.groupby("project_id"):
        used = set()
        for point in (25.0, 50.0, 75.0):
            dist = (group["percent_complete"] - point).abs()
            if dist.min() <= 12.5 and group.loc[dist.idxmin(), "status_date"] not in used:
                used.add(group.loc[dist.idxmin(), "status_date"])
                expected.append((pid, point, group.loc[dist.idxmin(), "status_date"]))
    got = sorted(zip(picked["project_id"], picked["progress_point"], picked["status_date"]))
    assert got == sorted(expected)
    assert (picked["status_date"] < picked["actual_finish_date"]).all()


def test_targets_are_log_ratios_of_actual_to_planned(history):
    done = completed_projects(history.projects).head(50)
    t = outcome_targets(done, late_threshold=0.1)
    days = (done["actual_finish_date"] - done["start_date"]).dt.days
    np.testing.assert_allclose(t["log_duration_ratio"], np.log(days / done["planned_duration_days"]))
    np.testing.assert_allclose(t["log_cost_ratio"],
                               np.log(done["actual_cost"] / done["budget_at_completion"]))
    assert (t["late"] == (days > 1.1 * done["planned_duration_days"])).all()
    np.testing.assert_allclose(t[[f"actual_share_{r}" for r in ROLES]].sum(axis=1), 1.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_intervals_cover_held_out_projects(trained, family):
    _, by_family = trained
    m = by_family[family].metrics
    for stage in ("intake", "inflight", "heldout"):
        assert 0.72 <= m[f"{stage}/coverage_80"] <= 0.88, (stage, m[f"{stage}/coverage_80"])
        assert 0.03 <= m[f"{stage}/coverage_p10"] <= 0.17
        # The P50 is not conformalised (accuracy first), so it is only roughly calibrated.
        assert 0.35 <= m[f"{stage}/coverage_p50"] <= 0.65
        assert 0.83 <= m[f"{stage}/coverage_p90"] <= 0.97
    if family == "resource":
        for role in ROLES:
            assert 0.70 <= m[f"heldout/coverage_80_{role}"] <= 0.90


def test_models_beat_their_intake_baselines(trained):
    _, by_family = trained
    for family, r in by_family.items():
        m = r.metrics
        assert m["intake/mape"] < m["intake/baseline_refclass/mape"], family
        assert m["intake/mape"] < m["intake/baseline_loglinear/mape"], family
    assert by_family["delay"].metrics["intake/auc"] > 0.7


@pytest.mark.parametrize("family", FAMILIES)
def test_shap_values_add_up_to_the_model_output(trained, family):
    _, by_family = trained
    r = by_family[family]
    rows = heldout_frame(r.data.intake.test.head(30), r.data.inflight.test.head(30))
    out = r.model.predict(rows).to_frame()
    planned_col, qty = family_spec(family).planned, family_spec(family).quantity
    shap_cols = [c for c in out.columns if c.startswith("shap__")]
    total = out["shap_base"] + out[shap_cols].sum(axis=1, skipna=True)
    np.testing.assert_allclose(total, np.log(out[f"{qty}_p50"] / rows[planned_col]), atol=1e-9)
    assert out.loc[out["stage"] == "intake", "shap__spi"].isna().all()
    assert out.loc[out["stage"] == "inflight", "shap__spi"].notna().all()
    if family == "delay":
        late_cols = [c for c in out.columns if c.startswith("late_shap__")]
        logit = out["late_shap_base"] + out[late_cols].sum(axis=1, skipna=True)
        for stage in ("intake", "inflight"):
            at = (out["stage"] == stage).to_numpy()
            raw = r.model.stages[stage].classifier_.model_.predict(
                tracking.stage_features(r.model, stage, rows[at]), raw_score=True)
            np.testing.assert_allclose(logit[at], raw, atol=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_numpy_prediction_path_matches_the_fitted_scikit_learn_models(trained, family):
    """`predict_arrays` (what the pyfunc and serving run on the feature matrix) equals the
    LightGBM / scikit-learn objects' own predictions on the feature frame."""
    _, by_family = trained
    r = by_family[family]
    for stage, rows in (("intake", r.data.intake.test), ("inflight", r.data.inflight.test)):
        X = tracking.stage_features(r.model, stage, rows.head(60))
        model = r.model.stages[stage]
        got = model.predict(X, shap=True)
        regressor = model.regressor_
        start = np.zeros(len(X))
        if regressor.anchor and regressor.base != "weighted":
            ratio = X[regressor.anchor].to_numpy(float)
            start[ratio > 0] = np.log(ratio[ratio > 0])
        elif regressor.start_ is not None:  # the start the calibration slice chose
            start = regressor.start_.start(feature_matrix(X, model.feature_names_))
        trees = np.column_stack([m.predict(X) for m in regressor.models_])
        if not regressor.trees_:  # the start alone beat the trees on calibration
            trees = np.broadcast_to(regressor.flat_, trees.shape)
        q = trees + start[:, None]
        q += regressor.offsets_
        q[:, 0], q[:, 2] = np.minimum(q[:, 0], q[:, 1]), np.maximum(q[:, 2], q[:, 1])
        np.testing.assert_allclose(got["log_quantiles"], q, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got["shap"].sum(axis=1), q[:, 1], rtol=1e-12, atol=1e-12)
        if model.classifier_ is not None:
            np.testing.assert_allclose(got["probability_late"],
                                       model.classifier_.calibrator_.predict_proba(X)[:, 1],
                                       rtol=1e-12, atol=1e-12)
        if model.shares_ is not None:
            raw = np.clip(np.column_stack([m.predict(X) for m in model.shares_.models_]), 0, None)
            np.testing.assert_allclose(got["role_shares"], raw / raw.sum(axis=1, keepdims=True),
                                       rtol=1e-12)


def test_monthly_profile_sums_to_each_role_total(trained):
    _, by_family = trained
    r = by_family["resource"]
    rows = heldout_frame(r.data.intake.test.head(10), r.data.inflight.test.head(10))
    out = r.model.predict(rows, shap=False).to_frame(shap=False)
    for i, text in enumerate(out["monthly_profile"]):
        profile = json.loads(text)
        months = int(np.ceil(rows["planned_duration_days"].iloc[i] / (365.25 / 12)))
        assert profile["months"] == months
        for role in ROLES:
            hours = profile["hours"][role]
            assert len(hours) == months and min(hours) >= 0
            assert sum(hours) == pytest.approx(out[f"effort_{role}_hours_p50"].iloc[i], rel=1e-9)


def test_runs_lineage_and_artifacts_are_logged(trained, settings):
    result, by_family = trained
    client = mlflow_access.client(settings)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["seed"] == "5"
    assert parent.data.tags["git_commit"]
    assert {i.dataset.name for i in parent.inputs.dataset_inputs} == {
        "projects", "snapshots", "resource_usage"}
    assert all(i.dataset.digest for i in parent.inputs.dataset_inputs)
    rejected = client.download_artifacts(result.parent_run_id, "rejected_rows.csv")
    assert pd.read_csv(rejected)["reason"].tolist() == ["must be <= 5"]
    children = client.search_runs(
        [result.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'")
    assert sorted(c.info.run_name for c in children) == sorted(FAMILIES)
    for child in children:
        plots = {a.path for a in client.list_artifacts(child.info.run_id, "plots")}
        expected = {"plots/shap_summary_intake.png", "plots/shap_summary_inflight.png",
                    "plots/feature_importance_intake.png", "plots/residuals_vs_prediction.png"}
        assert expected <= plots
        if child.info.run_name == "delay":
            assert "plots/calibration_curve.png" in plots
            assert child.data.metrics["heldout/auc"] > 0.7
        assert "intake/baseline_refclass/mape" in child.data.metrics
        assert {"train", "calibration", "test"} <= {
            tag.value for i in child.inputs.dataset_inputs for tag in i.tags}
        assert child.data.tags["promotion.registered"] in ("true", "false")


@pytest.mark.parametrize("family", FAMILIES)
def test_pyfunc_loaded_back_gives_the_same_predictions(trained, settings, family):
    _, by_family = trained
    r = by_family[family]
    rows = heldout_frame(r.data.intake.test.head(25), r.data.inflight.test.head(25))
    with mlflow_access.tracking(settings):
        loaded = mlflow.pyfunc.load_model(r.model_uri)
    served = loaded.predict(model_columns(rows))
    expected = r.model.predict(rows).to_frame()
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected, check_dtype=False)
    signature = loaded.metadata.get_input_schema()
    optional = {c.name for c in signature.inputs if not c.required}
    assert optional == {"status_date", "pv", "ev", "ac", "percent_complete"}
    quick = loaded.predict(model_columns(rows), params={"shap": False})
    assert not any(c.startswith("shap") for c in quick.columns)
    expected = expected[quick.columns]
    if "monthly_profile" in quick.columns:
        # JSON text of floats: with SHAP the P50 is its TreeSHAP row sum (one ulp from the
        # booster's own prediction), so the hours agree to 1e-12, not always to the last digit.
        for ours, theirs in zip(quick.pop("monthly_profile"), expected.pop("monthly_profile")):
            ours, theirs = json.loads(ours), json.loads(theirs)
            assert ours["months"] == theirs["months"]
            assert ours["hours"].keys() == theirs["hours"].keys()
            for role, hours in ours["hours"].items():
                np.testing.assert_allclose(hours, theirs["hours"][role], rtol=1e-12)
    pd.testing.assert_frame_equal(quick, expected, check_dtype=False)


def test_champion_alias_serves_the_registered_delay_model(trained, settings):
    _, by_family = trained
    r = by_family["delay"]
    assert r.decision.registered and r.decision.promoted, r.decision.reason
    rows = r.data.intake.test.head(5)
    champion = load_model_set(settings, ["delay"]).model("delay").model
    np.testing.assert_allclose(champion.predict(rows).to_frame()["duration_days_p50"],
                               r.model.predict(rows).to_frame()["duration_days_p50"])


def test_is_better_needs_the_margin():
    assert is_better(9.0, 10.0, 0.05, greater_is_better=False)
    assert not is_better(9.6, 10.0, 0.05, greater_is_better=False)
    assert is_better(10.0, 10.0, 0.0, greater_is_better=False)  # a tie passes only at margin 0
    assert not is_better(10.0, 10.0, 0.01, greater_is_better=False)
    assert is_better(0.85, 0.80, 0.05, greater_is_better=True)
    assert not is_better(0.83, 0.80, 0.05, greater_is_better=True)


def test_promotion_gate_keeps_the_champion_against_a_worse_challenger(
        trained, history, settings, specs):
    _, by_family = trained
    good = by_family["delay"]
    spec = replace(specs["delay"], must_beat_baselines=False)
    name = "gate-test-delay"
    heldout = heldout_frame(good.data.intake.test, good.data.inflight.test)
    # A deliberately worse model: two shallow trees barely move off the plan.
    weak_spec = spec.with_hyperparameters(n_estimators=2, num_leaves=2)
    weak_model, _ = train_family(weak_spec, history, seed=5)
    weak_score = score_predictions("delay", weak_model.predict(heldout, shap=False).to_frame(),
                                   heldout)["mape"]
    good_score = good.metrics["heldout/mape"]
    assert weak_score > good_score * 1.1
    with mlflow_access.tracking(settings):
        with mlflow.start_run(experiment_id=trained[0].experiment_id, run_name="weak"):
            weak_uri = tracking.log_family_model(weak_model, heldout.head(4)).model_uri

        first = register_and_gate(weak_uri, name, spec, heldout, weak_score, [], settings)
        assert first.promoted and first.reason.startswith("no champion yet")
        second = register_and_gate(good.model_uri, name, spec, heldout, good_score, [],
                                   settings)
        assert second.promoted and second.champion_score == pytest.approx(weak_score)
        third = register_and_gate(weak_uri, name, spec, heldout, weak_score, [], settings)
    assert not third.promoted
    assert third.champion_version == second.version
    # The champion was re-scored from the registry on the same held-out rows.
    assert third.champion_score == pytest.approx(good_score)
    client = mlflow_access.client(settings)
    assert client.get_model_version_by_alias(name, "champion").version == second.version
    assert client.get_model_version_by_alias(name, "challenger").version == third.version
    assert client.get_model_version(name, third.version).tags["promotion.promoted"] == "false"


def test_a_model_that_fails_its_baselines_is_not_registered(trained, settings, specs):
    _, by_family = trained
    r = by_family["overrun"]
    heldout = heldout_frame(r.data.intake.test, r.data.inflight.test)
    decision = register_and_gate(r.model_uri, "gate-test-baselines", specs["overrun"], heldout,
                                 1.0, ["in flight 50% vs eac_cpi (mape 2 vs 1)"], settings)
    assert not decision.registered and not decision.promoted
    assert "did not beat in flight 50% vs eac_cpi" in decision.reason
    assert not mlflow_access.client(settings).search_registered_models(
        "name = 'gate-test-baselines'")


def test_a_failure_part_way_moves_no_alias(trained, history, settings, specs, monkeypatch):
    """Aliases move after every family is decided: overrun failing leaves delay's champion."""
    import training.pipeline as pipeline

    client = mlflow_access.client(settings)
    before = client.get_model_version_by_alias("opm-delay", "champion").version
    fit = pipeline.train_family

    def failing(spec, *args, **kwargs):
        if spec.family == "overrun":
            raise RuntimeError("disk full")
        return fit(spec, *args, **kwargs)

    monkeypatch.setattr(pipeline, "train_family", failing)
    cheap = {f: replace(specs[f].with_hyperparameters(n_estimators=3), margin=-1.0)
             for f in ("delay", "overrun")}  # margin -1: the gate would promote anything
    with pytest.raises(RuntimeError, match="disk full"):
        train_models(history, ["delay", "overrun"], seed=6, settings=settings, specs=cheap)
    assert client.get_model_version_by_alias("opm-delay", "champion").version == before
    newest = max(int(v.version) for v in client.search_model_versions("name = 'opm-delay'"))
    assert str(client.get_model_version_by_alias("opm-delay", "challenger").version) == str(newest)


def _decision(family, promoted, champion_digest="old"):
    return Decision(family, True, promoted, "judged", "2", 1.0, 2.0, "1", "new",
                    champion_digest)


@pytest.mark.parametrize("decisions, others, promoted", [
    # Same profile: each family follows its own gate.
    ([_decision("delay", True, "new"), _decision("overrun", False, "new")], {}, [True, False]),
    # A changed profile with every family trained and promoted: the set moves.
    ([_decision("delay", True), _decision("overrun", True)], {}, [True, True]),
    # A changed profile and one family kept by its gate: none moves.
    ([_decision("delay", True), _decision("overrun", False)], {}, [False, False]),
    # A changed profile and a family of the profile not trained in this run: none moves.
    ([_decision("delay", True)], {"overrun": "old"}, [False]),
    # No champions yet anywhere: nothing to keep consistent with.
    ([_decision("delay", True, None)], {"overrun": None}, [True]),
])
def test_a_changed_profile_replaces_the_served_set_whole_or_not_at_all(decisions, others,
                                                                        promoted):
    settled = settle_profile_set(decisions, others, "new")
    assert [d.promoted for d in settled] == promoted
    for before, after in zip(decisions, settled):
        if before.promoted and not after.promoted:
            assert "champions must share one profile" in after.reason


def test_registered_names_come_from_settings(settings):
    assert mlflow_access.registered_name("resource", settings) == "opm-resource-demand"
    renamed = settings.model_copy(update={"model_names": {"resource": "org-effort"},
                                          "model_prefix": "acme"})
    assert mlflow_access.registered_name("resource", renamed) == "org-effort"
    assert mlflow_access.registered_name("delay", renamed) == "acme-delay"
    with pytest.raises(ValueError, match="unknown model family"):
        mlflow_access.registered_name("budget", settings)
