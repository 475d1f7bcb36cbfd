"""Monitoring's pieces on small known inputs: drift statistics, thresholds, realised metrics,
the retrain decision, outcome ingestion row by row, and the prediction-log migration."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sqlalchemy import create_engine, inspect, text
from test_database import HEAD

from opm_ml import database
from opm_ml.monitoring import accuracy
from opm_ml.monitoring.decision import decide
from opm_ml.monitoring.distribution import compare, describe, ks, psi
from opm_ml.monitoring.outcomes import ingest_outcomes
from opm_ml.monitoring.thresholds import Thresholds, load_thresholds, parse_thresholds
from opm_ml.synthetic.history import SAMPLE_DIR
from opm_ml.validation import ContractError

RNG = np.random.default_rng(0)


def test_psi_and_ks_are_near_zero_without_drift_and_large_with_it():
    reference = describe(RNG.normal(size=20_000), "number")
    same, moved = RNG.normal(size=2_000), RNG.normal(0.5, 1, size=2_000)
    assert psi(reference, same) < 0.02 and psi(reference, moved) > 0.2
    assert ks(reference, same) < 0.05
    # Against the 101 stored percentiles, KS is the two-sample statistic to within 1 %.
    exact = ks_2samp(RNG.normal(size=20_000), moved).statistic
    assert ks(reference, moved) == pytest.approx(exact, abs=0.02)


def test_psi_by_hand_for_categories_with_unseen_and_missing_values():
    reference = describe(np.array([0, 0, 1, 1.0]), "category", ("a", "b"))
    assert reference.shares == (0.5, 0.5, 0.0)
    # New: a 1/4, b 1/4, missing or unseen 1/2 (codes 7 and NaN both land in the last bin).
    new = np.array([0, 1, 7, np.nan])
    floor = 1e-4
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) * 2 + (0.5 - floor) * np.log(0.5 / floor)
    assert psi(reference, new) == pytest.approx(expected)
    result = compare(reference, new)
    assert result["ks"] is None and result["missing"] == 0.25  # only NaN counts as missing


def test_scales_get_a_bin_per_value_and_rounding_noise_is_no_drift():
    scale = describe(np.tile([1.0, 2, 3, 4, 5], 100), "number")
    assert scale.edges == (1.5, 2.5, 3.5, 4.5)
    assert psi(scale, np.full(50, 5.0)) > 1  # everyone at 5: a large shift
    zero = describe(np.array([0.0, 2e-16, -2e-16] * 100), "number")
    assert psi(zero, np.full(100, 1e-11)) < 1e-6 and ks(zero, np.full(100, 1e-11)) == 0


def test_compare_without_values_judges_nothing():
    result = compare(describe(RNG.normal(size=100), "number"), np.empty(0))
    assert result["psi"] is None and result["ks"] is None and result["n"] == 0


def test_thresholds_from_the_spec_files_and_errors_naming_the_field():
    assert load_thresholds("delay") == parse_thresholds(
        {"psi": 0.2, "ks": 0.2, "drifted_features": 3, "prediction_psi": 0.4,
         "min_requests": 100, "error_rise": 0.25, "min_outcomes": 50, "new_outcomes": 2000})
    for raw, message in (({"psi": 0}, "monitoring.psi must be greater than 0, got 0"),
                         ({"ks": 1.5}, "monitoring.ks must be greater than 0 and below 1"),
                         ({"min_outcomes": 2.5}, "monitoring.min_outcomes must be an integer"),
                         ({"psi": "high"}, "monitoring.psi must be a number"),
                         ({"pis": 0.1}, "monitoring.pis is not a spec field")):
        with pytest.raises(ValueError, match=f"^models/x.toml: {message}"):
            parse_thresholds(raw, "models/x.toml")


def test_training_spec_parser_checks_the_monitoring_table():
    import tomllib

    from training.specs import SPEC_DIR, parse_spec

    raw = tomllib.loads((SPEC_DIR / "overrun.toml").read_text())
    assert parse_spec(raw).monitoring.drifted_features == 3
    raw["monitoring"]["new_outcomes"] = -1
    with pytest.raises(ValueError, match="overrun.toml: monitoring.new_outcomes must be at "
                                         "least 1, got -1"):
        parse_spec(raw, "models/overrun.toml")


def judged_rows(actual, p10, p50, p90, late=None) -> pd.DataFrame:
    n = len(actual)
    return pd.DataFrame({"actual": actual, "p10": p10, "p50": p50, "p90": p90,
                         "planned": np.full(n, 100.0), "late_threshold": 0.1,
                         "probability_late": late if late is not None else [None] * n})


def test_realised_metrics_by_hand():
    rows = judged_rows([100.0, 200.0], [90, 150], [110, 150], [120, 190], late=[0.2, 0.9])
    m = accuracy.metrics(rows)
    assert m["n"] == 2 and m["mape"] == pytest.approx((10 + 25) / 2)
    assert m["coverage_80"] == 0.5  # 100 inside [90, 120]; 200 above 190
    assert m["bias_pct"] == pytest.approx((10 - 25) / 2)
    assert m["brier"] == pytest.approx(((0.2 - 0) ** 2 + (0.9 - 1) ** 2) / 2)  # 200 > 110: late
    diff = np.log([[100 / 90, 100 / 110, 100 / 120], [200 / 150, 200 / 150, 200 / 190]])
    lv = np.array([0.1, 0.5, 0.9])
    assert m["pinball"] == pytest.approx(np.mean(np.maximum(lv * diff, (lv - 1) * diff)))


def test_forecasts_are_judged_at_the_nearest_progress_point():
    labels = accuracy.stage_labels(pd.Series(["intake", "inflight", "inflight", "inflight"]),
                                   pd.Series([None, 30.0, 62.0, None]), (25, 50, 75))
    assert labels.tolist() == ["intake", "inflight_p25", "inflight_p50", "inflight"]
    assert accuracy.progress_points({"intake/mape": 1, "inflight_p40/mape": 2,
                                     "inflight_p80/mape": 3}) == (40.0, 80.0)
    rows = judged_rows([100.0] * 3, [1] * 3, [1] * 3, [1] * 3).assign(
        family="delay", model_version="1", label=["intake", "intake", "inflight_p25"])
    heldout = {"intake/mape": 20.0, "inflight_p25/mape": 5.0}
    assert accuracy.expected_mape(rows, lambda f, v: heldout) == pytest.approx(15.0)
    assert accuracy.expected_mape(rows, lambda f, v: None) is None


def test_the_decision_says_why_and_why_not():
    t = Thresholds(drifted_features=2, min_requests=10, min_outcomes=5, new_outcomes=100)
    drift = [{"stage": "intake", "feature": f, "psi": p, "ks": None, "judged": True,
              "drifted": p >= t.psi} for f, p in (("a", 0.5), ("b", 0.3), ("c", 0.05))]
    calm = decide(t, drift[2:], [], {"n": 40, "mape": 11.0, "heldout_mape": 10.0}, 3, "4")
    assert not calm["retrain"] and calm["reasons"] == []
    assert [c["triggered"] for c in calm["checks"]] == [False, False, False, False]
    assert "+10%" in calm["checks"][2]["detail"] and "3 projects" in calm["checks"][3]["detail"]
    stale = decide(t, drift, [], {"n": 40, "mape": 14.0, "heldout_mape": 10.0}, 150, "4")
    assert stale["retrain"] and len(stale["reasons"]) == 3
    assert stale["checks"][0]["drifted"] == ["a", "b"]
    few = decide(t, drift, [], {"n": 2, "mape": 50.0, "heldout_mape": 10.0}, 0, "4")
    assert "not judged: 2 forecast(s)" in few["checks"][2]["detail"]


MISSING_COLUMNS = "project_id,start_date,actual_finish_date,actual_cost\nP1,2020-01-01,,\n"


def test_a_corrupt_outcome_file_is_reported_row_by_row(tmp_path):
    sample = pd.read_csv(SAMPLE_DIR / "projects.csv", dtype=str)
    done = sample[sample["actual_finish_date"].notna()].head(6).reset_index(drop=True)
    done.loc[1, "actual_cost"] = "lots"  # not a number
    done.loc[2, "actual_finish_date"] = done.loc[2, "start_date"]  # finished the day it began
    done.loc[3, "project_type"] = "spaceflight"
    done.loc[4, "actual_finish_date"] = "31/12/2022"
    path = tmp_path / "outcomes.csv"
    done.to_csv(path, index=False)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    result = ingest_outcomes(path, url)
    report = result.rejections.set_index("row")
    assert sorted(report.index) == [2, 3, 4, 5]  # rows as a person counts them in the file
    assert report.loc[2, "column"] == "actual_cost" and "not a number" in report.loc[2, "reason"]
    assert report.loc[3, "column"] == "actual_duration_days" and "> 0" in report.loc[3, "reason"]
    assert "unknown project_type 'spaceflight'" in report.loc[4, "reason"]
    assert report.loc[5, "column"] == "actual_finish_date"
    assert (result.rows, result.finished, result.stored) == (6, 2, 6)
    with create_engine(url).connect() as conn:
        stored = conn.execute(text("SELECT project_id, family, actual FROM project_outcomes "
                                   "WHERE family = 'overrun'")).all()
    assert {r.project_id for r in stored} == {done.loc[0, "project_id"], done.loc[5,
                                                                               "project_id"]}
    assert float(done.loc[0, "actual_cost"]) in {r.actual for r in stored}
    with pytest.raises(ContractError, match="missing required column"):
        (tmp_path / "cut.csv").write_text(MISSING_COLUMNS)
        ingest_outcomes(tmp_path / "cut.csv", url)


def test_the_log_migration_upgrades_a_0001_database_and_twice_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = database.engine.create(url)
    database.upgrade(engine, "0001")  # a database from before the prediction log
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO intake_pipeline (project_id, scorecard_version, "
                          "scorecard_digest, criterion_scores, score, moscow, mandatory, "
                          "risk_adjusted_npv, kept_at) VALUES ('P1', 'v', 'd', '{}', 1, 'could', "
                          "0, 1, '2026-01-01')"))
    database.upgrade(engine)
    database.upgrade(engine)  # again: nothing changes
    assert database.current_revision(engine) == HEAD
    assert {"prediction_log", "prediction_log_forecast", "project_outcomes"} <= set(
        inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM intake_pipeline")).scalar() == 1
        versions = conn.execute(text("SELECT version_num FROM opm_ml_alembic_version")).all()
    assert versions == [(HEAD,)]


@pytest.mark.parametrize("args, message", [
    (["data", "ingest", "no/such/outcomes.csv"], "cannot read no/such/outcomes.csv"),
    (["monitor", "--since", "2020-13-01"], "--since must be a date YYYY-MM-DD, got '2020-13-01'"),
    (["retrain", "--models", "delay,cost"], "--models takes delay, overrun, resource"),
    (["retrain", "--since", "yesterday"], "--since must be a date YYYY-MM-DD"),
])
def test_bad_command_lines_are_one_error_line_and_exit_2(args, message, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from opm_ml.cli import app
    from opm_ml.settings import get_settings

    monkeypatch.setenv("OPM_ML_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 2, done.output
    assert done.output.startswith("error: ") and message in done.output
    assert "Traceback" not in done.output
