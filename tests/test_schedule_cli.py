"""`schedule check` and `schedule risk` through a small Typer app: tables on good input, one
`error:` line and exit code 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest
import typer
from typer.testing import CliRunner

from opm_ml.schedule import cli
from opm_ml.schedule.files import write_schedule
from opm_ml.schedule.uncertainty import ActivityDurationModel
from opm_ml.synthetic.schedules import FEATURES, generate_schedule, generate_schedules

SCHEDULES = Path(__file__).resolve().parents[2] / "shared/data/schedules"


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    app.command("check")(cli.check)
    app.command("risk")(cli.risk)
    return app


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    schedule, activities = generate_schedule(40, seed=3)
    plan = write_schedule(schedule, root / "plan.xer")
    first, second = activities["activity_id"].iloc[:2]
    (root / "estimates.csv").write_text(f"activity_id,low,likely,high\n{first},8,16,80\n")
    (root / "risks.csv").write_text(
        f"name,probability,activities,low,likely,high\nsupplier late,0.4,{first};{second},"
        "800,1600,3200\n")
    history = generate_schedules(12, seed=4, activities=(15, 25))
    model = ActivityDurationModel(n_estimators=30, min_child_samples=5).fit(
        history.activities[list(FEATURES[:5])], history.activities["ratio"],
        history.activities["project_id"])
    joblib.dump(model, root / "model.pkl")
    (root / "broken.xer").write_text(plan.read_text(encoding="cp1252")[:900],
                                     encoding="cp1252")
    return root


def test_check_prints_cpm_and_dcma(app, files):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["check", str(files / "plan.xer")])
    assert result.exit_code == 0, result.output
    assert "DCMA 14-point assessment" in result.output and "critical path:" in result.output
    assert "Critical path test" in result.output


@pytest.mark.skipif(not SCHEDULES.is_dir(), reason=f"{SCHEDULES} not present")
def test_check_reports_agreement_and_recovery_on_real_files(app):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["check", str(SCHEDULES / "invalid-8.4.xer")])
    assert result.exit_code == 0
    assert "warning:" in result.output and "24 of 24 agree" in result.output


def test_risk_with_estimates_risks_and_model(app, files):
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, [
        "risk", str(files / "plan.xer"), "--iterations", "500", "--estimates",
        str(files / "estimates.csv"), "--risks", str(files / "risks.csv"), "--model",
        str(files / "model.pkl"), "--group-by", "type"])
    assert result.exit_code == 0, result.output
    for heading in ("P80", "milestones", "most critical activities", "tornado", "S-curve"):
        assert heading in result.output
    assert "supplier late" in result.output


@pytest.mark.parametrize("args, message", [
    (["check", "broken.xer"], "the file is truncated"),
    (["check", "missing.xer"], "cannot read the file"),
    (["risk", "plan.xer", "--iterations", "0"], "iterations must be between 1"),
    (["risk", "plan.xer", "--group-by", "colour"], "--group-by must be wbs, type or none"),
    (["risk", "plan.xer", "--model", "estimates.csv"], "not a readable model pickle"),
    (["risk", "plan.xer", "--estimates", "risks.csv"], "missing columns activity_id"),
])
def test_bad_input_is_one_error_line_and_exit_2(app, files, args, message):
    args = [args[0], str(files / args[1]), *args[2:]]
    args = [str(files / a) if a.endswith((".csv",)) else a for a in args]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert result.exit_code == 2
    assert result.output.startswith("error:") and message in result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
