"""Profiles refuse bad input in one line, and read what real exports do to them.

Every malformed profile is a ProfileError naming the file and the field, and from the command
line an `error:` line with exit code 2, never a stack trace. Exports are small synthetic files
written in tmp_path: a boolean column, a second file of status snapshots, repeated status
reports ending in a blank report, numeric category codes, a BOM, a header without rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opm_ml.categories import category_label, category_labels
from opm_ml.cli import app
from opm_ml.profiles import ProfileError
from opm_ml.profiles.numbers import number
from opm_ml.profiles.profile import load_profile, parse_profile
from opm_ml.profiles.roles import reserved
from opm_ml.profiles.reader import read_history
from opm_ml.validation import TableSpec, validate_frame
from opm_ml.contract import Column
from support import WIDE
from support import profile_raw as profile

runner = CliRunner()


@pytest.mark.parametrize("change, message", [
    ({"read__deduplicate": 3}, "read.deduplicate must be non-empty text"),
    ({"read__join": [{"file": "x.csv"}]}, "read.join[0].on must be non-empty text"),
    ({"read__reports": "Date"}, "read.reports must be a table"),
    ({"read__reports": {"date": "D", "min_reports": 1}}, "read.reports.min_reports must be"),
    ({"read__finished": {"column": "S"}}, "read.finished.values must be a list"),
    ({"read__date_formats": "%Y"}, "read.date_formats must be a table"),
    ({"read__date_formats": {"D": "YYYY"}}, "read.date_formats.D must be a strftime format"),
    ({"read__encoding": "klingon"}, "read.encoding is not a known text encoding"),
    ({"read__separator": ";;"}, "read.separator must be one character"),
    ({"read__missing": 5}, "read.missing must be a list"),
    ({"read__format": "xlsx"}, "read.format must be one of csv, parquet, arff"),
    ({"read__sheet": 1}, "read.sheet is not a read option"),
    ({"roles": "Id"}, "roles must be a table"),
    ({"roles__actual_effort_by_role": "Dev"}, "roles.actual_effort_by_role must be a table"),
    ({"units": "hours"}, "units must be a table"),
    ({"version": {"x": 1}}, "version must be text or a number"),
    ({"features": 3}, "features must be a table"),
    ({"features__t": {"column": "T", "min": "zero"}}, "features.t.min must be a number"),
    ({"features__t": {"column": "T", "min": 5, "max": 1}}, "features.t.max must be at least"),
    ({"features__t": {"column": "T", "type": "category", "levels": "ab"}},
     "features.t.levels must be a list"),
    ({"features__t": {"column": "T", "required": "yes"}}, "features.t.required must be true"),
    ({"features__t": {"column": 7}}, "features.t.column must be non-empty text"),
    ({"model__anchors": "x"}, "model.anchors must be a table"),
    ({"model__seed": 1}, "model.seed is not a model option"),
    ({"model__group": "nope"}, "model.group must be an intake category or integer feature"),
    ({"rules": ["x"]}, "rules[0] must be a table"),
    ({"rules": [{"kind": "sum_to", "columns": ["a", "b"]}]}, "rules[0].columns names unknown"),
    ({"roles__planned_finish_date": "End", "roles__actual_finish_date": "Done"},
     "roles.planned_finish_date needs roles.start_date"),
])
def test_a_malformed_profile_is_one_line_naming_the_field(change, message):
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")) \
            as failure:
        parse_profile(profile(**change), "acme.toml")
    assert str(failure.value).startswith("acme.toml: ") and "\n" not in str(failure.value)


@pytest.mark.parametrize("name", ["late", "status", "stage", "warnings", "progress_point",
                                  "elapsed_fraction", "spi", "log_cost_ratio", "actual_cost",
                                  "actual_share_dev", "percent_complete", "copy",
                                  # a candidate's business case at intake (API and CSV names)
                                  "name", "discount_rate", "cost_by_year", "benefits_by_year",
                                  "mandatory", "regulatory", "alignment", "cost_year_1",
                                  "benefit_year_2", "alignment_compliance"])
def test_a_feature_may_not_take_a_name_opm_ml_uses(name):
    with pytest.raises(ProfileError, match=f"features.{name} is a name opm-ml uses itself"):
        parse_profile(profile(**{f"features__{name}": {"column": "T"}}), "p")
    with pytest.raises(ProfileError, match=f"derived.{name} needs a new lower-case name"):
        parse_profile(profile(derived={name: "log(planned_effort_hours)"}), "p")


def test_every_business_field_of_an_intake_candidate_is_reserved():
    """The API's candidate adds its business case to the profile's fields: a feature of that
    name would collide, whichever field is added there later."""
    from serving.schemas.intake import IntakeCandidate, ProjectRequest

    added = set(IntakeCandidate.model_fields) - set(ProjectRequest.model_fields)
    assert added and all(reserved(name) for name in added | {"project_id", "status"})


def test_a_business_field_feature_is_one_line_naming_file_and_field(tmp_path):
    path = tmp_path / "acme.toml"
    path.write_text('''name = "acme"
[roles]
project_id = "Id"
planned_effort_hours = "Estimate"
actual_effort_hours = "Effort"
[features.discount_rate]
column = "Rate"
''')
    with pytest.raises(ProfileError) as failure:
        load_profile(path)
    assert str(failure.value) == (
        f"{path}: features.discount_rate is a name opm-ml uses itself (a role, target, "
        "in-flight feature or intake business-case field); pick another name")


@pytest.mark.parametrize("features, expression, message", [
    ({"team": {"column": "T", "type": "category"}}, "planned_effort_hours / team",
     "reads team, which a model cannot use (team is a category)"),
    ({"hours": {"column": "H", "stage": "outcome"}}, "log(hours)",
     "reads hours, which a model cannot use (hours is known only at the outcome)"),
    ({}, "actual_effort_hours / planned_effort_hours",
     "reads actual_effort_hours, which a model cannot use (actual_effort_hours is an outcome)"),
    ({"due": {"column": "D", "type": "date"}}, "due * 2", "derived.x cannot be computed"),
    ({"due": {"column": "D", "type": "date"}}, "due", "gives a date"),
])
def test_a_derived_feature_reads_only_what_a_model_can_use(features, expression, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(profile(features=features, derived={"x": expression}), "p")


def test_malformed_profiles_are_an_error_line_from_the_command_line(tmp_path):
    export = tmp_path / "export.csv"
    pd.DataFrame({"Id": ["a", "b"], "Est": [1, 2], "Act": [1, 2]}).to_csv(export, index=False)
    for i, text in enumerate(['[read]\ndeduplicate = "Nope"', '[read]\nreports = "Date"',
                              '[read]\nencoding = "klingon"', '[model]\nanchors = "x"',
                              '[features.t]\ncolumn = "Est"\nmin = "zero"']):
        path = tmp_path / f"p{i}.toml"
        path.write_text('name = "acme"\n[roles]\nproject_id = "Id"\nplanned_effort_hours = '
                        f'"Est"\nactual_effort_hours = "Act"\n{text}\n')
        result = runner.invoke(app, ["data", "validate", "--profile", str(path), str(export)],
                               env=WIDE)
        assert result.exit_code == 2 and result.exception.__class__ is SystemExit, result.output
        assert result.output.startswith(f"error: {path}: "), result.output
        assert len(result.output.strip().splitlines()) == 1


def write(path, frame: pd.DataFrame, **options):
    frame.to_csv(path, index=False, **options)
    return path


def test_a_header_only_export_is_an_error_not_an_empty_success(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Id,Est,Act\n")
    toml = tmp_path / "p.toml"
    toml.write_text('name = "acme"\n[roles]\nproject_id = "Id"\nplanned_effort_hours = "Est"\n'
                    'actual_effort_hours = "Act"\n')
    result = runner.invoke(app, ["data", "validate", "--profile", str(toml), str(path)],
                           env=WIDE)
    assert result.exit_code == 2
    assert f"error: {path}: has no data rows" in result.output


def test_bom_cp1252_header_and_numeric_codes_read_as_written(tmp_path):
    path = tmp_path / "export.csv"
    text = "Id;Est;Act;Client;Flag\nA;1.157,6;1.200,0;4;ja\nB;19,5;20;4.0;nein\nC;7;8;2;ja\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("cp1252"))
    raw = profile(read={"separator": ";", "encoding": "cp1252", "decimal": ","},
                  features={"client": {"column": "Client", "type": "category"}})
    history = read_history(parse_profile(raw, "p"), path)
    assert history.projects["planned_effort_hours"].tolist() == [1157.6, 19.5, 7.0]
    assert history.projects["client"].tolist() == ["4", "4", "2"]  # 4.0 is the level "4"


def test_a_dedupe_note_counts_the_rows_it_drops(tmp_path):
    frame = pd.DataFrame({"Id": ["a", "a", "b", "c"], "Est": [1, 1, 2, 3], "Act": [1, 1, 2, 3]})
    history = read_history(parse_profile(profile(read={"deduplicate": "Id"}, features={}), "p"),
                           write(tmp_path / "e.csv", frame))
    assert "e.csv: 1 of 4 rows dropped as repeats of an earlier row's Id" in history.notes[0]


def test_numbers_are_read_by_their_own_marks():
    assert number("1.157,6") == number("1,157.6") == 1157.6
    assert number("19,03") == 19.03 and number("333.0", ",") == 333.0
    assert number("110.643", ",") == 110643 and number("110.643") == 110.643
    assert np.isnan(number("1.2.3")) and np.isnan(number("lots"))


def test_category_values_are_one_label_whatever_their_type():
    assert category_labels(pd.Series([4.0, 2.5, None])).tolist() == ["4", "2.5", None]
    assert category_labels(pd.Series(["4.0", " a ", "", "02"])).tolist() == [
        "4", "a", None, "02"]
    assert [category_label(v) for v in (2, 2.0, "2.0", True, None)] == [
        "2", "2", "2", "true", None]


def test_a_boolean_column_validates_yes_no_and_rejects_the_rest():
    spec = TableSpec("t", (Column("id", "str", "id", "id"),
                           Column("flag", "bool", "intake", "a flag", nullable=True)))
    result = validate_frame(pd.DataFrame({"id": list("abcdef"),
                                          "flag": ["yes", "No", "1", "maybe", None, "true"]}),
                            spec)
    assert result.good["flag"].fillna(-1).tolist() == [1.0, 0.0, 1.0, -1, 1.0]
    assert result.rejections[["row", "reason"]].values.tolist() == [[4, "not a yes/no value"]]


def reports_export(folder, blank_last: bool = True):
    """Four projects, monthly reports; P1's last report is blank (it left the list)."""
    rows = []
    for p, (budgets, phases) in enumerate([
            ([100, 110, 120, None], ["Design", "Build", "Build", None]),
            ([50, 55, 60], ["Design", "Build", "Closed"]),
            ([80, 80], ["Design", "Build"]),
            ([70], ["Design"])]):
        for month, (budget, phase) in enumerate(zip(budgets, phases)):
            rows.append({"Id": f"P{p}", "Date": f"2020-{month + 1:02d}-01", "Budget": budget,
                         "Phase": phase, "Start": "2019-12-01" if budget else None})
    return write(folder / "reports.csv", pd.DataFrame(rows))


def test_reports_take_the_last_value_given_and_judge_finished_on_the_last_report(tmp_path):
    path = reports_export(tmp_path)
    raw = {"name": "r", "read": {"reports": {"date": "Date"}},
           "roles": {"project_id": "Id", "status_date": "Date", "budget_at_completion": "Budget",
                     "actual_cost": "Budget", "start_date": "Start"},
           "features": {"forecast": {"column": "Budget", "stage": "snapshot"}}}
    history = read_history(parse_profile(raw, "p"), path)
    projects = history.projects.set_index("project_id")
    assert projects["budget_at_completion"].tolist() == [100, 50, 80, 70]
    assert projects["actual_cost"].tolist()[:3] == [120, 60, 80]  # P0: the 3rd, not the blank
    assert pd.isna(projects.loc["P3", "actual_cost"])  # a single report: no outcome
    snaps = history.snapshots
    assert snaps.groupby("project_id").size().to_dict() == {"P0": 1, "P1": 1}
    assert any("taken from an earlier report for 1 project" in n for n in history.notes)
    assert any("1 of 4 project(s) have a single status report" in n for n in history.notes)

    raw["read"]["finished"] = {"column": "Phase", "values": ["Closed"]}
    history = read_history(parse_profile(raw, "p"), path)
    projects = history.projects.set_index("project_id")
    assert projects["budget_at_completion"].tolist() == [100, 50, 80, 70]  # plans kept
    assert projects["actual_cost"].notna().tolist() == [False, True, False, False]
    assert history.snapshots["forecast"].notna().all()  # snapshot values kept
    assert any("2 project(s) not finished at their last report (Phase)" in n
               for n in history.notes)
