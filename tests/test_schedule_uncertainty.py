"""The learned activity-duration model: calibrated intervals, exact SHAP, overrides, pickling;
its Monte Carlo P50 project ratio against the generator's project-level delay; and its
accuracy on the real SiP tasks against "the estimate is right" and the reference class."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opm_ml.schedule.activity_features import activity_features
from opm_ml.schedule.calendars import to_minutes
from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.distributions import Estimate, Uncertainty
from opm_ml.schedule.evaluation import evaluate_ratio_model
from opm_ml.schedule.model import ScheduleError
from opm_ml.schedule.montecarlo import run_monte_carlo
from opm_ml.schedule.uncertainty import ActivityDurationModel
from opm_ml.synthetic.schedules import FEATURES, generate_schedules, project_fields

REAL = Path(__file__).resolve().parents[2] / "shared/data/real"


@pytest.fixture(scope="module")
def history():
    return (generate_schedules(80, seed=11, activities=(20, 50)),
            generate_schedules(30, seed=12, activities=(20, 50)))


@pytest.fixture(scope="module")
def model(history):
    train, _ = history
    return ActivityDurationModel(n_estimators=200).fit(
        train.activities[list(FEATURES)], train.activities["ratio"],
        train.activities["project_id"])


def test_intervals_cover_and_the_median_beats_the_baselines(history, model):
    train, test = history
    X, ratio = test.activities[list(FEATURES)], test.activities["ratio"].to_numpy()
    q = model.predict_quantiles(X).to_numpy()
    coverage = np.mean((ratio >= q[:, 0]) & (ratio <= q[:, 2]))
    assert 0.72 <= coverage <= 0.88
    error = np.abs(np.log(q[:, 1] / ratio)).mean()
    by_type = train.activities.groupby("activity_type")["ratio"].median()
    reference = np.abs(np.log(X["activity_type"].map(by_type).to_numpy() / ratio)).mean()
    assert error < 0.9 * reference < 0.9 * np.abs(np.log(ratio)).mean()


def test_shap_adds_up_to_the_log_median_exactly(history, model):
    X = history[1].activities[list(FEATURES)].head(50)
    shap = model.explain(X)
    np.testing.assert_allclose(shap.sum(axis=1), np.log(model.predict(X)), rtol=0, atol=1e-9)
    assert shap["base"].nunique() == 1
    assert shap.drop(columns="base").abs().sum().idxmax() in FEATURES


def test_estimates_overrides_and_pickling(history, model):
    X = history[1].activities.set_index("activity_id")[list(FEATURES)].head(5)
    hours = np.exp(X["log_planned_hours"]).to_numpy()
    planner = Estimate.three_point(10, 12, 30)
    found = model.estimates(X, hours, {X.index[0]: planner})
    assert found[X.index[0]] is planner
    q = model.predict_quantiles(X).to_numpy()[1] * hours[1]
    lognormal = found[X.index[1]]
    assert lognormal.kind == "lognormal" and lognormal.a == pytest.approx(q[1])
    # the two-piece lognormal passes through the model's P10 and P90
    assert lognormal.a * np.exp(-1.2815515655446004 * lognormal.b) == pytest.approx(q[0])
    assert lognormal.a * np.exp(1.2815515655446004 * lognormal.c) == pytest.approx(q[2])
    with pytest.raises(ScheduleError, match="overrides name activities without"):
        model.estimates(X, hours, {"nope": planner})
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X), model.predict(X))
    with pytest.raises(ScheduleError, match="features missing"):
        model.predict(X.drop(columns="resource_load"))


@pytest.fixture(scope="module")
def project_ratios(history, model) -> pd.DataFrame:
    """Per new project: the Monte Carlo P50 duration ratio from the learned activity
    distributions (`mc`), the generator's own project-level ratio (`generator`) and the ratio
    the realised activity durations give through the network (`network`)."""
    _, test = history
    actual = test.activities.set_index("activity_id")["actual_hours"]
    rows = []
    for _, project in test.projects.iterrows():
        schedule = test.schedules[project["project_id"]]
        features = activity_features(schedule, project_fields(project))
        estimates = model.estimates(features, np.exp(features["log_planned_hours"]))
        result = run_monte_carlo(schedule, Uncertainty(estimates), 1000, seed=1)
        realised = replace(schedule, activities=[
            replace(a, duration_hours=float(actual[a.id])) if a.id in actual.index else a
            for a in schedule.activities])
        calendar = result.network.timelines[0]
        days = (calendar.work_at(to_minutes(run_cpm(realised).project_finish))
                - calendar.work_at(to_minutes(schedule.data_date))) / 480
        rows.append({"project_id": project["project_id"], "mc": result.duration_ratio(50),
                     "generator": np.exp(project["project_log_ratio"]),
                     "network": days / result.deterministic_days})
    return pd.DataFrame(rows).set_index("project_id")


def agreement_of(mc, other) -> tuple[float, float]:
    """(correlation, mean bias) of two ratios on the log scale."""
    mc, other = np.log(np.asarray(mc, float)), np.log(np.asarray(other, float))
    return float(np.corrcoef(mc, other)[0, 1]), float(np.mean(mc - other))


def test_monte_carlo_p50_ratio_tracks_the_project_level_delay(project_ratios):
    r_project, bias_project = agreement_of(project_ratios["mc"], project_ratios["generator"])
    r_network, bias_network = agreement_of(project_ratios["mc"], project_ratios["network"])
    print(f"\nMC P50 project ratio vs generator project-level delay ({len(project_ratios)} "
          f"projects): r = {r_project:.2f}, bias {bias_project:+.3f} log; vs realised network "
          f"ratio: r = {r_network:.2f}, bias {bias_network:+.3f} log")
    assert r_project > 0.5 and r_network > 0.6
    assert abs(bias_project) < 0.25


def test_monte_carlo_p50_ratio_agrees_with_the_registered_delay_model(
        project_ratios, history, small_registry):
    """The same new projects through the registered project-level delay model (the session's
    champion, trained on 1,500 generated projects): its P50 duration ratio at intake against
    the Monte Carlo P50 from the learned activity distributions."""
    from opm_ml.model_set import load_model_set

    settings, _ = small_registry
    delay = load_model_set(settings, ["delay"]).model("delay")
    projects = history[1].projects.set_index("project_id").loc[project_ratios.index]
    rows = projects.reset_index().assign(start_date=pd.Timestamp("2024-01-08"))
    p50 = delay.model.predict(rows).to_frame()["duration_days_p50"].to_numpy()
    ratio = p50 / projects["planned_duration_days"].to_numpy()
    r, bias = agreement_of(project_ratios["mc"], ratio)
    r_generator, bias_generator = agreement_of(ratio, project_ratios["generator"])
    print(f"\nMC P50 project ratio vs the registered delay model's P50 ratio "
          f"({delay.name} v{delay.version}, {len(ratio)} projects): r = {r:.2f}, bias "
          f"{bias:+.3f} log (delay model P50 vs the generator's realised ratio: r = "
          f"{r_generator:.2f}, bias {bias_generator:+.3f} log)")
    assert r > 0.5
    assert abs(bias) < 0.25


@pytest.mark.skipif(not (REAL / "eseur_Sip-task-info.csv").is_file(),
                    reason=f"SiP task data not present in {REAL}")
def test_sip_tasks_against_ratio_one_and_reference_class():
    from opm_ml.real_data.sip import sip_overrun

    data = sip_overrun(REAL)
    table = evaluate_ratio_model(data.X, data.y, data.groups, "category", folds=5,
                                 n_estimators=150)
    print("\nSiP tasks (effort ratio, 5-fold grouped by project):\n" + table.to_string())
    learned, ratio_one, reference = table.to_dict("records")
    assert learned["pinball_log"] < reference["pinball_log"] < ratio_one["pinball_log"]
    assert 0.75 <= learned["p10_p90_coverage"] <= 0.85
    # SiP's median ratio is exactly 1 in every category: no point forecast beats it by much
    assert learned["mae_log"] < 1.05 * ratio_one["mae_log"]
