"""A small synthetic export through its profile to trained models and their answers.

Written in tmp_path and trained without MLflow (25 trees): a projects file with a yes/no column,
numeric team codes and effort booked by role in person-days, and a second file of status
snapshots (`--snapshots`). The drafted profile validates and trains in-flight models; the
hand-written one trains role shares and answers requests with booleans and numeric codes; a
project without one family's planned value still gets the other families' forecasts.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from opm_ml.batch_scoring.inputs import profiled_rows
from opm_ml.cli import app
from opm_ml.forecasting.assessment import assess
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.intake.candidates import parse_candidates
from opm_ml.intake.past_projects import carried
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scorecard import load_config
from opm_ml.intake.scoring import score_candidates
from opm_ml.profiles.build import profile_manifest
from opm_ml.profiles.profile import parse_profile
from opm_ml.profiles.reader import read_history
from serving.schemas.projects import request_models
from support import WIDE
from training.pipeline import train_family
from training.specs import load_spec

runner = CliRunner()
N = 60


def spec(family: str):
    return replace(load_spec(family).with_hyperparameters(n_estimators=25),
                   must_beat_baselines=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """(projects.csv, snapshots.csv): 60 projects, three status reports each."""
    folder = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(7)
    planned = rng.integers(60, 300, N)
    ratio = rng.lognormal(0.1, 0.25, N)
    estimate = rng.lognormal(4, 0.6, N).round(1)  # person-days
    effort = estimate * rng.lognormal(0.15, 0.3, N)
    dev_share = rng.uniform(0.5, 0.8, N)
    start = pd.Timestamp("2018-01-01") + pd.to_timedelta(np.arange(N) * 17, "D")
    projects = pd.DataFrame({
        "Project ID": [f"P{i}" for i in range(N)], "Start Date": start.strftime("%Y-%m-%d"),
        "Planned Duration": planned, "Actual Duration": (planned * ratio).round(),
        "Estimated Days": estimate, "Dev Days": (effort * dev_share).round(1),
        "Test Days": (effort * (1 - dev_share)).round(1),
        "Outsourced": rng.choice(["yes", "no"], N), "Team": rng.choice([1.0, 2.0, 3.0], N)})
    reports = [{"Project ID": f"P{i}", "Status Date": (start[i] + pd.Timedelta(
        days=int(planned[i] * p / 100))).strftime("%Y-%m-%d"), "Percent Complete": p}
        for i in range(N) for p in (25, 50, 75)]
    projects.to_csv(folder / "projects.csv", index=False)
    pd.DataFrame(reports).to_csv(folder / "snapshots.csv", index=False)
    return folder / "projects.csv", folder / "snapshots.csv"


def test_infer_validate_and_train_with_a_snapshots_file(files, tmp_path):
    projects, snapshots = files
    out = tmp_path / "p.toml"
    result = runner.invoke(app, ["data", "profile", "infer", str(projects), "--snapshots",
                                 str(snapshots), "--out", str(out)], env=WIDE)
    assert result.exit_code == 0, result.output
    raw = tomllib.loads(out.read_text())  # one project_id, the snapshot roles beside it
    assert raw["roles"]["project_id"] == "Project ID"
    assert raw["roles"]["status_date"] == "Status Date"
    assert raw["roles"]["percent_complete"] == "Percent Complete"
    result = runner.invoke(app, ["data", "validate", "--profile", str(out), str(projects),
                                 "--snapshots", str(snapshots)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "snapshots: 180 rows, 180 valid, 0 rejected" in result.output
    profile = parse_profile(raw, str(out))
    history = read_history(profile, projects, snapshots)
    model, data = train_family(spec("delay"), history, 3, None, profile_manifest(profile, history))
    assert set(model.stages) == {"intake", "inflight"} and len(data.inflight.test)


PROFILE = {
    "name": "acme",
    "roles": {"project_id": "Project ID", "start_date": "Start Date",
              "planned_duration_days": "Planned Duration",
              "actual_duration_days": "Actual Duration", "planned_effort_hours": "Estimated Days",
              "actual_effort_by_role": {"dev": "Dev Days", "test": "Test Days"}},
    "units": {"planned_effort_hours": "person_days", "actual_effort_hours": "person_days"},
    "features": {"outsourced": {"column": "Outsourced", "type": "boolean"},
                 "team": {"column": "Team", "type": "category"}},
}


@pytest.fixture(scope="module")
def resource(files):
    profile = parse_profile(PROFILE, "acme.toml")
    history = read_history(profile, files[0])
    manifest = profile_manifest(profile, history)
    models = {f: train_family(spec(f), history, 3, None, manifest)[0]
              for f in ("delay", "resource")}
    return history, manifest, models


def test_effort_by_role_is_converted_trained_and_served(files, resource):
    history, manifest, models = resource
    raw = pd.read_csv(files[0])
    assert history.projects["actual_effort_dev_hours"].tolist() == pytest.approx(
        (raw["Dev Days"] * 8).tolist())  # person-days to hours, like the total
    assert history.projects["actual_effort_hours"].tolist() == pytest.approx(
        ((raw["Dev Days"] + raw["Test Days"]) * 8).tolist())
    assert manifest.roles == ("dev", "test") and "resource" in manifest.families
    forecast = models["resource"].predict(history.projects.head(3)).to_json()[0]
    by_role = forecast["effort_by_role"]
    assert set(by_role) == {"dev", "test"}
    assert 0 < by_role["test"]["p50"] < by_role["dev"]["p50"] < forecast["prediction"]


def test_requests_take_booleans_and_numeric_codes(resource):
    history, manifest, models = resource
    assert history.projects["outsourced"].isin([0.0, 1.0]).all()
    assert manifest.categories["team"] == ("1", "2", "3")  # codes 1.0, 2.0, 3.0 in the file
    request, _ = request_models(manifest)
    project, _ = manifest.examples
    assert isinstance(project["outsourced"], bool)
    items = [request.model_validate({**project, "outsourced": value, "team": team})
             for value, team in ((True, 2), ("no", "2.0"), (False, "2"))]
    inputs = ProjectInputs.from_requests(items, manifest)
    assert inputs.warnings == [[], [], []]  # 2, 2.0 and "2" are the level "2"
    p50 = [f["prediction"] for f in models["resource"].predict(inputs).to_json()]
    assert p50[1] == pytest.approx(p50[2])


def test_a_project_without_one_familys_plan_gets_the_others(resource):
    history, manifest, models = resource
    request, _ = request_models(manifest)
    project, _ = manifest.examples
    items = [request.model_validate(project), request.model_validate(
        {k: v for k, v in project.items() if k != "planned_duration_days"})]
    assessment = assess(models, ProjectInputs.from_requests(items, manifest))
    full, partial = assessment.to_json()
    assert set(full["forecasts"]) == {"delay", "resource-demand"} and "warnings" not in full
    assert set(partial["forecasts"]) == {"resource-demand"}
    assert partial["warnings"] == ["no delay forecast: planned_duration_days is missing"]
    assert partial["forecasts"]["resource-demand"]["prediction"] > 0
    frame = assessment.to_frame(shap=False)
    assert frame["warnings"].isna().tolist() == [True, False]
    assert frame["delay__duration_days_p50"].isna().tolist() == [False, True]
    assert frame["resource__effort_hours_p50"].notna().all()


@pytest.mark.parametrize("column, field, value", [
    ("Estimated Days", "planned_effort_hours", 0),
    ("Planned Duration", "planned_duration_days", -30),
])
def test_a_plan_of_zero_or_less_is_rejected_naming_the_field(files, resource, tmp_path,
                                                             column, field, value):
    """A forecast is a multiple of its family's plan: a plan of 0 (or less) is rejected where
    the value enters, like any out-of-range value, never scored as a forecast of 0."""
    _, manifest, _ = resource
    export = pd.read_csv(files[0])
    export.loc[4, column] = value
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    why = f"{field} must be > 0, got "
    # Training validation: the row is reported, the others are kept.
    history = read_history(parse_profile(PROFILE, "acme.toml"), path)
    rejected = history.rejections
    assert rejected["row"].tolist() == [5] and rejected["reason"][0].startswith(why)
    assert len(history.projects) == N - 1
    # Batch scoring (`opm-ml score`, the dashboard upload) reads the same file row by row.
    valid, report = profiled_rows(path, manifest)
    assert report["row"].tolist() == [5] and report["reason"][0].startswith(why)
    assert len(valid) == N - 1
    # The API's request model (single, batch, intake): a 422 naming the field.
    request, _ = request_models(manifest)
    project, _ = manifest.examples
    with pytest.raises(ValidationError) as failure:
        request.model_validate({**project, field: value})
    (error,) = failure.value.errors()
    assert error["loc"] == (field,) and error["type"] == "greater_than"


def test_resource_load_compares_with_the_profiles_own_past_projects(files, resource):
    """A profile's candidates are ranked by effort among its own history's projects (kept with
    the resource model), never among the scorecard's synthetic reference; a model without
    them scores the criterion neutrally and the answer says so."""
    history, manifest, models = resource
    project, _ = manifest.examples
    frame = pd.DataFrame([{**project, "project_id": "K-1", "discount_rate": 0.08,
                           "cost_year_1": 1e5, "benefit_year_1": 0.0, "benefit_year_2": 3e5,
                           "strategic_fit": 6.0}])
    candidates = parse_candidates(frame, manifest)
    scorecard = load_config()
    past = carried(models)
    effort = history.projects["actual_effort_hours"].round(1)
    assert past.frame()["effort_hours"].sort_values().tolist() == sorted(effort)
    assert past.digest != scorecard.reference_digest
    scored = score_candidates(candidates, model_forecaster(models), scorecard, past=past)
    forecast = scored.table["effort_hours_p50"][0]
    share = ((effort < forecast).sum() + (effort == forecast).sum() / 2) / len(effort)
    assert scored.criterion_scores["resource_load"][0] == pytest.approx(1 - share)
    assert scored.config.reference_digest == past.digest
    assert scored.table["reference_digest"][0] == past.digest
    assert scored.config.version == scorecard.version  # the scales are the scorecard's
    # Models trained before they kept their past projects: neutral, with a note.
    scored = score_candidates(candidates, model_forecaster(models), scorecard, past=None)
    assert scored.criterion_scores["resource_load"][0] == 0.5
    assert scored.config.reference_digest is None
    assert any("acme carry no past projects with effort_hours" in n for n in scored.notes)
