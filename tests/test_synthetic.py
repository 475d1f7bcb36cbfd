"""Tests of the synthetic history generator: contract, determinism, realism and the oracle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import skew

from opm_ml import validation
from opm_ml.contract import ACTUAL_EFFORT_COLUMNS, OUTCOME_COLUMNS, ROLES, TABLES
from opm_ml.synthetic import (
    TRUE_EFFECTS, expected_log_overrun, floor_metrics, generate_history, oracle_forecast,
    write_history, write_sample,
)
from opm_ml.synthetic import params
from opm_ml.synthetic.floor import completed_outcomes
from opm_ml.synthetic.history import SAMPLE_DIR
from opm_ml.synthetic.intake import sample_intake
from opm_ml.synthetic.outcomes import late_cpi_drift_logit, outcome_drivers, sample_outcomes

AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def history():
    return generate_history(4000, seed=11)


@pytest.fixture(scope="module")
def done(history):
    """Completed projects with their log ratios and drivers."""
    outcome = completed_outcomes(history.projects)
    return history.projects.loc[outcome.index].join(outcome.drop(columns="project_type"))


@pytest.fixture(scope="module")
def evm(history):
    """Snapshots joined with their project's baseline and outcome."""
    cols = ["project_id", "start_date", "planned_duration_days", "budget_at_completion",
            "actual_finish_date", "actual_cost", "requirements_volatility", "num_vendors"]
    return history.snapshots.merge(history.projects[cols], on="project_id", validate="m:1")


@pytest.fixture(scope="module")
def cpi_path(evm):
    """Snapshots of completed projects with their cumulative CPI and that CPI / final CPI - 1."""
    finished = evm[evm["actual_finish_date"].notna()].copy()
    finished["cpi"] = finished["ev"] / finished["ac"]
    final = finished.groupby("project_id")["cpi"].transform("last")
    finished["vs_final"] = finished["cpi"] / final - 1
    return finished


# --- contract ----------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_another_seed_does_not():
    a, b = generate_history(300, seed=3), generate_history(300, seed=3)
    for table in TABLES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    c = generate_history(300, seed=4)
    assert not a.projects["budget_at_completion"].equals(c.projects["budget_at_completion"])


@pytest.mark.parametrize("table", list(TABLES))
def test_columns_and_dtypes_follow_the_contract(history, table):
    frame = getattr(history, table)
    assert list(frame.columns) == [c.name for c in TABLES[table]]
    expected = {"date": "datetime64[ns]", "int": "int64", "float": "float64",
                "str": "str", "category": "str"}
    for col in TABLES[table]:
        assert str(frame[col.name].dtype) == expected[col.kind], col.name


@pytest.mark.parametrize("table", list(TABLES))
def test_values_within_contract_ranges_and_categories(history, table):
    frame = getattr(history, table)
    for col in TABLES[table]:
        values = frame[col.name]
        if not col.nullable:
            assert values.notna().all(), f"{col.name} has missing values"
        present = values.dropna()
        if col.min is not None:
            assert (present >= col.min).all(), f"{col.name} below {col.min}"
        if col.max is not None:
            assert (present <= col.max).all(), f"{col.name} above {col.max}"
        if col.categories:
            assert set(present) <= set(col.categories), col.name
            assert set(present) == set(col.categories), f"{col.name}: a category never occurs"


def test_project_level_rules(history):
    p = history.projects
    shares = p[[f"role_share_{r}" for r in ROLES]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0, atol=1e-9)
    no_risks = p["num_identified_risks"] == 0
    assert (p.loc[no_risks, "mean_risk_severity"] == 0).all()
    assert (p.loc[~no_risks, "mean_risk_severity"] >= 1).all()
    np.testing.assert_allclose(
        p["expected_roi"], (p["expected_benefits"] - p["budget_at_completion"])
        / p["budget_at_completion"], atol=1e-6)
    assert p["project_id"].is_unique
    assert (p["start_date"] >= "2012-01-01").all() and (p["start_date"] <= AS_OF).all()


def test_in_flight_projects_have_no_outcomes_and_no_data_after_as_of(history):
    p = history.projects
    in_flight = p["actual_finish_date"].isna()
    assert 0.02 < in_flight.mean() < 0.3  # long recent projects are still running
    outcomes = p[list(OUTCOME_COLUMNS)]
    assert outcomes[in_flight].isna().all().all()
    assert outcomes[~in_flight].notna().all().all()
    assert (p.loc[~in_flight, "actual_finish_date"] <= AS_OF).all()
    assert (history.snapshots["status_date"] <= AS_OF).all()
    running = history.snapshots["project_id"].isin(p.loc[in_flight, "project_id"])
    assert (history.snapshots.loc[running, "percent_complete"] < 100).all()
    usage = history.resource_usage.merge(p[["project_id", "start_date"]], on="project_id")
    months_elapsed = ((AS_OF.year - usage["start_date"].dt.year) * 12
                      + AS_OF.month - usage["start_date"].dt.month)
    assert (usage["month_index"] <= months_elapsed).all()


def test_validation_accepts_every_row(history, tmp_path):
    for table in TABLES:
        result = validation.validate_frame(getattr(history, table), table)
        assert result.rejections.empty, result.rejections.head().to_string()
    small = generate_history(200, seed=5)
    for fmt in ("parquet", "csv"):
        paths = write_history(small, tmp_path / fmt, fmt=fmt)
        assert [p.name for p in paths] == [f"{t}.{fmt}" for t in TABLES]
        loaded = validation.load_history(tmp_path / fmt)
        assert loaded.rejections.empty, loaded.rejections.head().to_string()
        assert len(loaded.snapshots) == len(small.snapshots)


def test_bad_arguments_raise_clear_errors(history, tmp_path):
    with pytest.raises(ValueError, match="n_projects"):
        generate_history(0)
    with pytest.raises(TypeError, match="n_projects"):
        generate_history(10.5)
    with pytest.raises(ValueError, match="as_of"):
        generate_history(10, as_of="not a date")
    with pytest.raises(ValueError, match="as_of"):
        generate_history(10, as_of="2005-01-01")
    with pytest.raises(ValueError, match="fmt"):
        write_history(history, tmp_path, fmt="xlsx")


def test_committed_sample_is_reproducible(tmp_path):
    # The sample is committed (the README, the dashboard and `opm-ml report` use it): a missing
    # file is a failure, not a reason to skip.
    written = write_sample(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SAMPLE_DIR.glob("*.csv"))
    for path in written:
        assert path.read_bytes() == (SAMPLE_DIR / path.name).read_bytes(), path.name
    total = sum(f.stat().st_size for f in Path(SAMPLE_DIR).glob("*.csv"))
    assert total < 1.5e6


# --- realism: outcomes -------------------------------------------------------------------------


def test_cost_overrun_is_right_skewed(done):
    ratio = np.exp(done["log_cost_ratio"])
    assert ratio.mean() > ratio.median()
    assert skew(ratio) > 1
    assert skew(done["log_cost_ratio"]) > 0  # skewed even on the log scale: black swans


def test_it_and_infrastructure_overrun_more_often_and_further_than_construction(done):
    ratio = np.exp(done["log_cost_ratio"]).groupby(done["project_type"])
    median, p90 = ratio.median(), ratio.quantile(0.9)
    share_over = ratio.apply(lambda r: (r > 1).mean())
    for kind in ("it_software", "infrastructure"):
        assert median[kind] > median["construction"] + 0.04, kind
        assert p90[kind] > p90["construction"] + 0.1, kind
        assert share_over[kind] > share_over["construction"] + 0.05, kind
    # About 1 in 6 IT projects is a black swan: more than double the budget is common.
    assert 0.08 < (ratio.get_group("it_software") > 2).mean() < 0.25
    assert (ratio.get_group("construction") > 2).mean() < 0.02


def test_complexity_and_volatility_raise_overrun(done):
    for driver in ("complexity", "requirements_volatility"):
        by_level = done.groupby(driver)[["log_cost_ratio", "log_duration_ratio"]].mean()
        assert (by_level.diff().dropna() > 0).all().all(), f"{driver}:\n{by_level}"


def test_pm_experience_is_protective(done):
    quartile = pd.qcut(done["pm_experience_years"], 4, labels=False)
    by_q = done.groupby(quartile)[["log_cost_ratio", "log_duration_ratio"]].mean()
    assert (by_q.loc[3] < by_q.loc[0] - 0.015).all(), by_q


def test_agile_dampens_schedule_overrun_under_high_volatility(done):
    high = done[done["requirements_volatility"] >= 4]
    low = done[done["requirements_volatility"] <= 2]
    waterfall_gap = (high.loc[high["methodology"] == "waterfall", "log_duration_ratio"].mean()
                     - low.loc[low["methodology"] == "waterfall", "log_duration_ratio"].mean())
    agile_gap = (high.loc[high["methodology"] == "agile", "log_duration_ratio"].mean()
                 - low.loc[low["methodology"] == "agile", "log_duration_ratio"].mean())
    assert waterfall_gap > agile_gap + 0.1


def test_true_effects_have_the_documented_signs():
    for outcome in ("cost", "schedule", "black_swan"):
        e = TRUE_EFFECTS[outcome]
        assert e.log_pm_experience < 0 and e.complexity > 0 and e.log_size > 0
        assert e.volatility_waterfall >= e.volatility_hybrid >= e.volatility_agile > 0


# --- realism: earned value ---------------------------------------------------------------------


def test_final_snapshot_closes_at_bac_and_actual_cost(evm):
    finished = evm[evm["actual_finish_date"].notna()]
    last = finished.groupby("project_id").tail(1)
    assert (last["status_date"] == last["actual_finish_date"]).all()
    np.testing.assert_array_equal(last["ev"], last["budget_at_completion"])
    np.testing.assert_array_equal(last["ac"], last["actual_cost"])
    assert (last["percent_complete"] == 100).all()
    assert last["project_id"].nunique() == finished["project_id"].nunique()


def test_snapshots_are_month_ends_and_cumulative_values_never_fall(evm):
    not_final = evm["status_date"] != evm["actual_finish_date"]
    assert evm.loc[not_final, "status_date"].dt.is_month_end.all()
    assert (evm["status_date"] > evm["start_date"]).all()
    by_project = evm.groupby("project_id")
    for name in ("pv", "ev", "ac", "percent_complete"):
        assert (by_project[name].diff().dropna() >= 0).all(), name
    assert (evm["ev"] <= evm["budget_at_completion"]).all()
    assert (evm["pv"] <= evm["budget_at_completion"]).all()
    assert (by_project["status_date"].diff().dropna() > pd.Timedelta(0)).all()
    np.testing.assert_allclose(evm["percent_complete"],
                               100 * evm["ev"] / evm["budget_at_completion"], rtol=1e-9)


def test_late_projects_show_spi_below_one_at_half_planned_time(evm):
    finished = evm[evm["actual_finish_date"].notna()].copy()
    actual = (finished["actual_finish_date"] - finished["start_date"]).dt.days
    finished["ratio"] = actual / finished["planned_duration_days"]
    elapsed = (finished["status_date"] - finished["start_date"]).dt.days
    finished["gap"] = (elapsed / finished["planned_duration_days"] - 0.5).abs()
    mid = finished.loc[finished.groupby("project_id")["gap"].idxmin()]
    mid = mid[mid["gap"] < 0.1]
    spi = mid["ev"] / mid["pv"]
    late, on_time = mid["ratio"] > 1.1, mid["ratio"].between(0.95, 1.05)
    assert spi[late].mean() < 0.95
    assert spi[on_time].mean() > spi[late].mean() + 0.05
    assert np.corrcoef(spi, np.log(mid["ratio"]))[0, 1] < -0.5


def test_cpi_stabilises_after_twenty_percent_complete(cpi_path):
    finished = cpi_path
    drift = finished["vs_final"].abs()
    at_20 = finished["percent_complete"].between(20, 30)
    early = finished["percent_complete"] < 5
    assert (drift[at_20] < 0.1).mean() > 0.9  # Christensen & Heise: stable within 10 %
    assert drift[early].mean() > drift[at_20].mean()
    # ... and when it moves after 20 % complete, it mostly worsens (Christensen & Payne).
    assert (finished.loc[at_20, "vs_final"] > 0).mean() > 0.65
    # Over-budget projects show CPI < 1 well before they finish.
    over = finished["actual_cost"] > 1.2 * finished["budget_at_completion"]
    assert (finished.loc[over & at_20, "cpi"] < 1).mean() > 0.95


def test_cpi_worsens_more_late_for_high_volatility_many_vendor_projects(cpi_path):
    gap = (cpi_path["percent_complete"] - 50).abs()
    near = gap[gap <= 12.5]
    mid = cpi_path.loc[near.groupby(cpi_path.loc[near.index, "project_id"]).idxmin()]
    final_over_mid = 1 / (1 + mid["vs_final"])
    high = (mid["requirements_volatility"] >= 4) & (mid["num_vendors"] >= 3)
    low = (mid["requirements_volatility"] <= 2) & (mid["num_vendors"] <= 2)
    assert high.sum() > 100 and low.sum() > 100
    assert final_over_mid[high].mean() < final_over_mid[low].mean() - 0.02
    # So BAC / CPI at 50 % complete under-forecasts the troubled projects' cost systematically.
    under = mid["budget_at_completion"] / mid["cpi"] / mid["actual_cost"] - 1
    assert under[high].mean() < -0.025 < under[low].mean()


def test_late_cpi_drift_reshapes_actual_cost_but_not_the_outcome(monkeypatch):
    with_drift = generate_history(300, seed=3)
    monkeypatch.setattr(params, "LATE_CPI_DRIFT", replace(params.LATE_CPI_DRIFT, max_size=0.0))
    without = generate_history(300, seed=3)
    pd.testing.assert_frame_equal(with_drift.projects, without.projects)
    a, b = with_drift.snapshots, without.snapshots
    np.testing.assert_array_equal(a["ev"], b["ev"])
    # A project that will worsen has spent less than its final CPI implies: AC is lower.
    assert (a["ac"] <= b["ac"]).all()
    running = a["percent_complete"] < 100
    assert (a.loc[running, "ac"] < b.loc[running, "ac"]).mean() > 0.9
    finished = ~running
    np.testing.assert_array_equal(a.loc[finished, "ac"], b.loc[finished, "ac"])


def test_late_cpi_drift_grows_with_its_documented_drivers(history):
    base = history.projects.iloc[:50].copy()
    reference = late_cpi_drift_logit(outcome_drivers(base))
    for column, step in (("requirements_volatility", 1), ("complexity", 1),
                         ("num_vendors", 3), ("num_dependencies", 3)):
        more = base.assign(**{column: base[column] + step})
        assert (late_cpi_drift_logit(outcome_drivers(more)) > reference).all(), column
    by_method = {m: late_cpi_drift_logit(outcome_drivers(base.assign(methodology=m)))
                 for m in ("agile", "hybrid", "waterfall")}
    assert (by_method["agile"] < by_method["hybrid"]).all()
    assert (by_method["hybrid"] < by_method["waterfall"]).all()


# --- realism: resource usage -------------------------------------------------------------------


def test_usage_per_role_sums_to_actual_effort(history):
    p = history.projects.set_index("project_id")
    finished = p[p["actual_finish_date"].notna()]
    hours = history.resource_usage.groupby("project_id")[[f"hours_{r}" for r in ROLES]].sum()
    hours = hours.loc[finished.index]
    np.testing.assert_allclose(hours.to_numpy(), finished[list(ACTUAL_EFFORT_COLUMNS)].to_numpy(),
                               rtol=1e-9, atol=1e-6)
    months = history.resource_usage.groupby("project_id")["month_index"].agg(["min", "max",
                                                                              "count"])
    assert (months["min"] == 0).all() and (months["count"] == months["max"] + 1).all()


def test_role_demand_follows_the_phase_profile(history):
    usage = history.resource_usage
    long = usage.groupby("project_id")["month_index"].transform("max") >= 8
    usage = usage[long]
    peak = {r: usage.loc[usage.groupby("project_id")[f"hours_{r}"].idxmax(), "month_index"]
            .to_numpy() for r in ROLES}
    assert (peak["build"] > peak["analysis"]).mean() > 0.9
    order = ["analysis", "design", "build", "testing", "deployment"]
    means = [peak[r].mean() for r in order]
    assert means == sorted(means), dict(zip(order, means))
    # Management is flat: its peak month is far closer to its average month than deployment's.
    by_project = usage.groupby("project_id")[["hours_management", "hours_deployment"]]
    peakiness = by_project.max() / by_project.mean()
    assert (peakiness["hours_management"] < 2).mean() > 0.9
    assert (peakiness["hours_management"] < peakiness["hours_deployment"]).mean() > 0.95


def test_volatility_shifts_effort_to_analysis_and_testing(done):
    total = done[list(ACTUAL_EFFORT_COLUMNS)].sum(axis=1)
    for role in ("analysis", "testing"):
        actual = done[f"actual_effort_{role}_hours"] / total
        drift = np.log(actual / done[f"role_share_{role}"])
        high, low = done["requirements_volatility"] >= 4, done["requirements_volatility"] <= 2
        assert drift[high].mean() > drift[low].mean() + 0.1, role


# --- the oracle --------------------------------------------------------------------------------


def test_oracle_is_calibrated_against_hidden_outcomes():
    """Checked on every project, finished or not, straight from the generator's internals."""
    n = 3000
    columns, trouble = sample_intake(n, np.random.default_rng(21), np.datetime64("2025-12-31"))
    outcomes = sample_outcomes(columns, trouble, np.random.default_rng(22))
    projects = pd.DataFrame(columns)
    log_cost = np.log(outcomes.actual_cost / projects["budget_at_completion"])
    log_dur = np.log(outcomes.actual_days / projects["planned_duration_days"])
    forecast = oracle_forecast(projects)
    expected_cost, expected_dur = expected_log_overrun(projects)
    np.testing.assert_allclose(expected_cost, forecast["expected_log_cost_ratio"])
    for y, mean, median in ((log_cost, expected_cost, forecast["median_cost_ratio"]),
                            (log_dur, expected_dur, forecast["median_duration_ratio"])):
        residual = y - mean
        assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(n)
        assert abs((y < np.log(median)).mean() - 0.5) < 4 * 0.5 / np.sqrt(n)
    late = outcomes.actual_days > 1.1 * projects["planned_duration_days"]
    assert abs(forecast["p_late"].mean() - late.mean()) < 4 * np.sqrt(0.25 / n)


def test_oracle_beats_the_reference_class_baseline(history):
    small = type(history)(history.projects.iloc[:1500], history.snapshots,
                          history.resource_usage)
    metrics = floor_metrics(small)
    overall = metrics.loc["all"]
    assert overall["mae_log_cost"] < overall["baseline_mae_log_cost"] - 0.02
    assert overall["mae_log_duration"] < overall["baseline_mae_log_duration"] - 0.02
    assert 0.75 < overall["auc_late"] < 0.95
    assert 0.2 < overall["r2_cost"] < 0.8 and 0.2 < overall["r2_duration"] < 0.8
