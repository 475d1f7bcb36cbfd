"""Dataset profiles: parsing with clear errors, reading real exports, drafting a profile.

The real exports are read from `../shared/data/real/`; tests that need them skip, saying so,
only when that folder is absent.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opm_ml.cli import app
from opm_ml.profiles import PROFILE_DIR, ProfileError, resolve_profile
from opm_ml.profiles.build import profile_manifest
from opm_ml.profiles.infer import infer_profile
from opm_ml.profiles.profile import parse_profile
from opm_ml.profiles.reader import read_history
from support import REAL, WIDE, needs_real
from support import profile_raw as raw

runner = CliRunner()

def write_export(folder: Path, rows: int = 60, seed: int = 0, **columns) -> Path:
    rng = np.random.default_rng(seed)
    est = rng.uniform(10, 200, rows)
    frame = pd.DataFrame({
        "Id": [f"T{i}" for i in range(rows)], "Est": est.round(1),
        "Act": (est * rng.lognormal(0.1, 0.3, rows)).round(1),
        "Team": rng.choice(["red", "blue", "green"], rows),
        "Started": pd.date_range("2020-01-01", periods=rows, freq="7D").strftime("%d/%m/%Y"),
        **columns})
    path = folder / "export.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("change, message", [
    ({"name": "Acme Corp"}, "name must be lower-case"),
    ({"roles__budget": "B"}, "roles.budget is not a role"),
    ({"roles__planned_finish_date": "End", "roles__planned_duration_days": "Dur"},
     "both give the planned duration"),
    ({"features__team": {"column": "Est", "type": "category"}},
     "maps column 'Est', which roles.planned_effort_hours maps already"),
    ({"features__team": {"column": "Team", "type": "colour"}}, "features.team.type must be"),
    ({"derived__bad": "Est * 2"}, "uses unknown column"),
    ({"derived__bad": "__import__('os')"}, "only column names, numbers"),
    ({"roles": {"project_id": "Id", "planned_effort_hours": "Est"}},
     "map no family's planned value and actual"),
    ({"model__reference_class": "nope"}, "model.reference_class must be a category feature"),
])
def test_a_bad_profile_is_one_error_naming_the_field(change, message):
    with pytest.raises(ProfileError, match=message) as failure:
        parse_profile(raw(**change), "acme.toml")
    assert str(failure.value).startswith("acme.toml: ") and "\n" not in str(failure.value)


def test_families_follow_the_roles_mapped():
    assert parse_profile(raw(), "p").families == ("resource",)
    both = raw(roles__start_date="Started", roles__planned_duration_days="Dur",
               roles__actual_finish_date="Done")
    assert parse_profile(both, "p").families == ("delay", "resource")


def test_an_export_is_read_validated_and_converted(tmp_path):
    path = write_export(tmp_path, Est=None)
    frame = pd.read_csv(path)
    frame["Est"] = np.linspace(1, 20, len(frame)).astype(object)  # person-days
    frame.loc[3, "Est"] = "lots"  # a cell that does not parse: its row is reported
    frame.loc[5, "Act"] = np.nan  # an empty cell: an unfinished task: no outcome, still a project
    frame.to_csv(path, index=False)
    profile = parse_profile(raw(units={"planned_effort_hours": "person_days"},
                                read={"date_formats": {"Started": "%d/%m/%Y"}},
                                roles__start_date="Started"), "p")
    history = read_history(profile, path)
    assert len(history.projects) == len(frame) - 1
    assert history.rejections[["table", "row", "column", "value", "reason"]].values.tolist() == [
        ["projects", 4, "Est", "lots", "not a number"]]
    first = history.projects.iloc[0]
    assert first["planned_effort_hours"] == pytest.approx(8.0)  # 1 person-day = 8 hours
    assert first["start_date"] == pd.Timestamp("2020-01-01")
    assert history.projects["actual_effort_hours"].isna().sum() == 1


@pytest.mark.parametrize("case, message", [
    ("missing column", "has no column(s) 'Budget'"),
    ("bad dates", "column 'Started' (start_date): 60 of 60 values are not dates"),
    ("negative actual", "actual_effort_hours (Act) has 1 negative value(s), first on row 8"),
    ("one level", "features.team (column 'Team') has one level ('red')"),
])
def test_whole_column_problems_stop_before_training(tmp_path, case, message):
    path = write_export(tmp_path)
    profile = raw(roles__start_date="Started", read={"date_formats": {"Started": "%d/%m/%Y"}})
    frame = pd.read_csv(path)
    if case == "missing column":
        profile["features"]["budget"] = {"column": "Budget"}
    elif case == "bad dates":
        profile["read"] = {}
    elif case == "negative actual":
        frame.loc[7, "Act"] = -3
    else:
        frame["Team"] = "red"
    frame.to_csv(path, index=False)
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_history(parse_profile(profile, "p"), path)


def test_a_profile_is_found_by_name_or_file():
    assert resolve_profile("contract") is None
    assert resolve_profile("kitchenham").name == "kitchenham"
    assert resolve_profile(str(PROFILE_DIR / "sip.toml")).name == "sip"
    with pytest.raises(ProfileError, match="no profile 'nowhere'.*kitchenham"):
        resolve_profile("nowhere")


@needs_real
@pytest.mark.parametrize("name, file, families, projects, snapshots", [
    ("kitchenham", "kitchenham.arff", ("delay", "resource"), 144, 0),
    ("sip", "eseur_Sip-task-info.csv", ("resource",), 10266, 0),
    ("nyc_capital", "NYC_capital_projects_20190901.csv", ("delay", "overrun"), 376, 1490),
])
def test_the_shipped_profiles_read_their_real_exports(name, file, families, projects, snapshots):
    profile = resolve_profile(name)
    history = read_history(profile, REAL / file)
    assert profile.families == families
    assert (len(history.projects), len(history.snapshots)) == (projects, snapshots)
    manifest = profile_manifest(profile, history)
    intake, status = manifest.examples
    assert intake["project_id"] in set(history.projects["project_id"])
    assert bool(status) == bool(snapshots)
    # Categories come from the file, spelled as it writes them (a code 4.0 is the level "4"),
    # not from a fixed list: every level is a value of the source column, and the levels
    # cover the values of nearly every row.
    raw = _raw(profile, REAL / file)
    for feature in profile.features:
        if feature.kind == "category" and feature.stage == "intake":
            values = raw[feature.column].dropna().map(_spelled)
            levels = set(manifest.categories[feature.name])
            assert levels <= set(values), feature.name
            assert values.isin(levels).mean() > 0.95, feature.name
    if name == "kitchenham":
        assert manifest.categories["client"] == ("1", "2", "3", "4", "5", "6")


def _raw(profile, path) -> pd.DataFrame:
    """The export as pandas reads it, without the profile reader."""
    if path.suffix == ".arff":
        from opm_ml.real_data._io import read_arff

        return read_arff(path)
    return pd.read_csv(path, dtype=str, encoding=profile.read.get("encoding", "utf-8"))


def _spelled(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@needs_real
def test_nyc_reports_are_plan_outcome_and_snapshots():
    profile = resolve_profile("nyc_capital")
    history = read_history(profile, REAL / "NYC_capital_projects_20190901.csv")
    raw = pd.read_csv(REAL / "NYC_capital_projects_20190901.csv")
    raw["when"] = pd.to_datetime(raw["Date Reported As Of"], format="%m/%d/%Y %I:%M:%S %p")
    reports = raw.sort_values(["PID", "when"]).groupby("PID")
    pid = next(p for p, g in reports if len(g) >= 4 and g["Budget Forecast"].notna().all())
    group = reports.get_group(pid)
    project = history.projects.set_index("project_id").loc[str(pid)]
    assert project["budget_at_completion"] == group["Budget Forecast"].iloc[0]  # the plan
    assert project["actual_cost"] == group["Budget Forecast"].iloc[-1]  # the outcome
    snaps = history.snapshots[history.snapshots["project_id"] == str(pid)]
    assert len(snaps) == len(group) - 2  # the reports between
    assert list(snaps["cost_forecast"]) == list(group["Budget Forecast"].iloc[1:-1])
    # A project whose last report is blank takes its outcome from the last report with one;
    # the reports before that one are its snapshots.
    pid = next(p for p, g in reports if len(g) >= 4 and g["Budget Forecast"].iloc[1:-1].notna()
               .all() and pd.isna(g["Budget Forecast"].iloc[-1]))
    group = reports.get_group(pid)
    project = history.projects.set_index("project_id").loc[str(pid)]
    assert project["actual_cost"] == group["Budget Forecast"].iloc[-2]
    snaps = history.snapshots[history.snapshots["project_id"] == str(pid)]
    assert list(snaps["cost_forecast"]) == list(group["Budget Forecast"].iloc[1:-2])
    notes = " ".join(history.notes)
    assert "70 of 378 project(s) have a single status report" in notes
    assert "actual_cost (Budget Forecast): taken from an earlier report for 77" in notes
    assert "they are forecasts, not actual finishes" in notes


@needs_real
def test_sip_is_split_by_project_and_says_which_rows_it_dropped():
    from training.datasets import SPLITS, build_training_data
    from training.specs import load_spec

    profile = resolve_profile("sip")
    history = read_history(profile, REAL / "eseur_Sip-task-info.csv")
    assert "2,033 of 12,299 rows dropped as repeats of an earlier row's TaskNumber" in \
        history.notes[0]
    manifest = profile_manifest(profile, history)
    data = build_training_data(history.projects, history.snapshots, load_spec("resource"),
                               manifest.roles, manifest.group)
    projects = {s: set(data.intake[s]["project_code"]) for s in SPLITS}
    assert not projects["train"] & projects["calibration"] and not projects["train"] & \
        projects["test"] and not projects["calibration"] & projects["test"]
    first = history.projects.groupby("project_code")["start_date"].min()
    assert first[list(projects["train"])].max() <= first[list(projects["test"])].min()
    assert any(n.startswith("split by project_code") for n in data.notes)


@needs_real
def test_infer_drafts_roles_types_and_leak_warnings(tmp_path):
    draft = infer_profile(REAL / "kitchenham.arff")
    roles = {c.role: c.column for c in draft.columns if c.role}
    assert roles == {"project_id": "Project", "start_date": "Actual.start.date",
                     "actual_duration_days": "Actual.duration",
                     "actual_effort_hours": "Actual.effort",
                     "planned_finish_date": "Estimated.completion.date",
                     "planned_effort_hours": "First.estimate"}
    kinds = {c.column: c.kind for c in draft.columns}
    assert kinds["Client.code"] == kinds["Project.type"] == "category"
    assert parse_profile(tomllib.loads(draft.toml), "draft").families == ("delay", "resource")

    sip = infer_profile(REAL / "eseur_Sip-task-info.csv")
    leaks = {w.split(":")[0] for w in sip.warnings}
    assert {"DeveloperHoursActual", "TaskPerformance", "DeveloperPerformance"} <= leaks
    assert {c.column: c.stage for c in sip.columns}["TaskPerformance"] == "outcome"

    nyc = infer_profile(REAL / "NYC_capital_projects_20190901.csv")
    assert nyc.read["reports"] == {"date": "Date Reported As Of"}
    parsed = parse_profile(tomllib.loads(nyc.toml), "draft")
    assert parsed.families == ("delay", "overrun") and dict(parsed.anchors) == {
        "overrun": "cost_forecast_ratio", "delay": "finish_forecast_ratio"}
    history = read_history(parsed, REAL / "NYC_capital_projects_20190901.csv")
    assert len(history.snapshots) > 1000  # the draft reads as it stands


@needs_real
def test_infer_and_validate_from_the_command_line(tmp_path):
    out = tmp_path / "k.toml"
    result = runner.invoke(app, ["data", "profile", "infer", str(REAL / "kitchenham.arff"),
                                 "--out", str(out)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "First.estimate" in result.output
    assert 'planned_effort_hours = "First.estimate"' in out.read_text()
    result = runner.invoke(app, ["data", "validate", "--profile", str(out),
                                 str(REAL / "kitchenham.arff")], env=WIDE)
    assert result.exit_code == 1  # one project's estimated completion precedes its start
    assert "projects: 145 rows, 144 valid, 1 rejected" in result.output
    assert "Estimated.completion.date" in result.output
    result = runner.invoke(app, ["data", "profile", "infer", str(REAL / "kitchenham.arff"),
                                 "--out", str(out)])
    assert result.exit_code == 2 and "exists" in result.output
