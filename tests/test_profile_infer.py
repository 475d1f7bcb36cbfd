"""`opm-ml data profile infer` on the exports real organisations write: every draft loads and
validates as it stands, and whatever inference could not decide is a printed warning.

Small synthetic exports in tmp_path: dates day-first, month-first, ambiguous or mixed; decimal
commas with a byte-order mark in cp1252; units in column names; columns named like targets
or like opm-ml's own names; a second file of status snapshots.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from opm_ml.cli import app
from opm_ml.profiles.infer import infer_profile
from opm_ml.profiles.profile import parse_profile
from opm_ml.profiles.reader import read_history
from support import WIDE

runner = CliRunner()


def export(n: int = 40, seed: int = 0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    planned = rng.integers(60, 400, n)
    estimate = rng.lognormal(6, 0.8, n).round(1)
    frame = pd.DataFrame({
        "Project ID": [f"P{i}" for i in range(n)],
        "Start Date": (pd.Timestamp("2016-01-05") + pd.to_timedelta(np.arange(n) * 23, "D"))
        .strftime("%Y-%m-%d"),
        "Planned Duration": planned, "Actual Duration": (planned * rng.lognormal(0.1, 0.2, n))
        .round(), "Estimated Hours": estimate,
        "Actual Hours": (estimate * rng.lognormal(0.1, 0.3, n)).round(1),
        "Team": rng.choice(["red", "blue", "green"], n)})
    return frame.assign(**columns)


def draft_of(tmp_path, frame: pd.DataFrame, name: str = "export.csv", **options):
    path = tmp_path / name
    frame.to_csv(path, index=False, **options)
    draft = infer_profile(path)
    return draft, parse_profile(tomllib.loads(draft.toml), "draft"), path


@pytest.mark.parametrize("written, expected", [
    ("%m/%d/%Y", "%m/%d/%Y"),  # a day after the 12th somewhere decides
    ("%d/%m/%Y", "%d/%m/%Y"),
])
def test_day_and_month_first_are_told_apart_by_the_values(tmp_path, written, expected):
    frame = export()
    frame["Start Date"] = pd.to_datetime(frame["Start Date"]).dt.strftime(written)
    draft, profile, path = draft_of(tmp_path, frame)
    assert profile.read["date_formats"] == {"Start Date": expected}
    assert read_history(profile, path).projects["start_date"].iloc[1] == pd.Timestamp(
        "2016-01-28")


def test_monthly_dates_on_the_first_read_month_first(tmp_path):
    frame = export()
    frame["Start Date"] = pd.to_datetime(frame["Start Date"]).dt.to_period("M") \
        .dt.to_timestamp().dt.strftime("%m/%d/%Y")  # 03/01/2017: March 1st, not January 3rd
    draft, profile, path = draft_of(tmp_path, frame)
    assert profile.read["date_formats"] == {"Start Date": "%m/%d/%Y"}
    assert set(read_history(profile, path).projects["start_date"].dt.day) == {1}


def test_ambiguous_dates_are_left_to_the_user_with_a_todo_and_a_warning(tmp_path):
    frame = export()
    days = pd.to_datetime(frame["Start Date"])
    frame["Start Date"] = [f"{min(d.day, 12):02d}/{d.month:02d}/{d.year}" for d in days]
    draft, profile, path = draft_of(tmp_path, frame)
    assert not profile.read.get("date_formats")
    assert "# TODO 'Start Date': every value reads as %d/%m/%Y and as %m/%d/%Y" in draft.toml
    assert any(w.startswith("Start Date: ambiguous dates") for w in draft.warnings)
    result = runner.invoke(app, ["data", "validate", "--profile", str(_write(tmp_path, draft)),
                                 str(path)], env=WIDE)
    assert result.exit_code == 2 and "column 'Start Date' (start_date)" in result.output


def test_a_mixed_format_date_column_is_a_date_with_a_warning(tmp_path):
    frame = export()
    frame.loc[::4, "Start Date"] = pd.to_datetime(frame["Start Date"][::4]).dt.strftime(
        "%d/%m/%Y")
    draft, profile, path = draft_of(tmp_path, frame)
    assert {c.column: c.kind for c in draft.columns}["Start Date"] == "date"
    assert any("Start Date: mixed date formats: 75%" in w for w in draft.warnings)
    history = read_history(profile, path)
    assert history.rejections["row"].tolist() == list(range(1, 41, 4))  # reported, row by row


def test_decimal_commas_a_bom_and_cp1252_draft_numbers(tmp_path):
    frame = export(**{"Client": np.resize(["Société", "Hôpital"], 40)})
    for column in ("Estimated Hours", "Actual Hours"):
        frame[column] = [f"{v:,.1f}".replace(",", "X").replace(".", ",").replace("X", ".")
                         for v in frame[column]]
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(sep=";", index=False).encode("cp1252"))
    draft = infer_profile(path)
    profile = parse_profile(tomllib.loads(draft.toml), "draft")
    assert profile.read["separator"] == ";" and profile.read["decimal"] == ","
    assert profile.roles["project_id"] == "Project ID"  # not 'ï»¿Project ID'
    assert profile.roles["planned_effort_hours"] == "Estimated Hours"
    history = read_history(profile, path)
    assert history.rejections.empty
    expected = export()["Estimated Hours"].round(1)
    np.testing.assert_allclose(history.projects["planned_effort_hours"], expected)


def test_units_are_drafted_from_column_names(tmp_path):
    frame = export().rename(columns={"Planned Duration": "Planned_duration_months",
                                     "Actual Duration": "Actual_duration_months",
                                     "Estimated Hours": "Estimated effort (person-months)",
                                     "Actual Hours": "Actual effort (person-months)"})
    draft, profile, _ = draft_of(tmp_path, frame)
    assert profile.units == {"planned_duration_days": "months", "actual_duration_days": "months",
                             "planned_effort_hours": "person_months",
                             "actual_effort_hours": "person_months"}


def test_names_of_targets_and_opm_mls_own_are_renamed_or_flagged(tmp_path):
    frame = export()
    frame = frame.assign(Late=np.where(frame["Actual Duration"] > frame["Planned Duration"],
                                       "yes", "no"),
                         Status=np.resize(["open", "closed"], len(frame)),
                         **{"Start Month": pd.to_datetime(frame["Start Date"]).dt.month,
                            "SPI": np.linspace(0.8, 1.2, len(frame)),
                            "Discount Rate": np.resize([0.05, 0.08], len(frame))})
    draft, profile, path = draft_of(tmp_path, frame)
    stage = {f.column: (f.name, f.stage) for f in profile.features}
    assert stage["Late"] == ("late_reported", "outcome")
    assert any(w.startswith("Late: possible leak of a target: it is named like a target")
               for w in draft.warnings)
    assert stage["SPI"][0] == "spi_reported" and stage["Start Month"][0] == "start_month_reported"
    assert stage["Discount Rate"][0] == "discount_rate_reported"  # an intake business field
    assert dict(profile.derived)["start_month"] == "month(start_date)"
    read_history(profile, path)  # the draft loads and reads as it stands


def test_small_integer_quantities_are_integers_and_codes_categories(tmp_path):
    frame = export(**{"Simple Actors": np.resize([0, 1, 2, 4], 40),
                      "Client Code": np.resize([1, 2, 3], 40)})
    draft, _, _ = draft_of(tmp_path, frame)
    kinds = {c.column: c.kind for c in draft.columns}
    assert kinds["Simple Actors"] == "integer" and kinds["Client Code"] == "category"


def test_a_repeated_id_without_report_dates_is_a_warning(tmp_path):
    frame = export()
    frame.loc[35:, "Project ID"] = ["P0", "P1", "P2", "P3", "P4"]  # 5 rows repeat an id
    draft, profile, _ = draft_of(tmp_path, frame)
    assert profile.roles["project_id"] == "Project ID" and "reports" not in profile.read
    assert ("Project ID: 5 of 40 rows repeat an earlier row's id; validation rejects them: add "
            "read.deduplicate = 'Project ID' to keep each id's first row, or map the id column "
            "that is unique") in draft.warnings
    assert not any("repeat an earlier row" in w for w in draft_of(tmp_path, export())[0].warnings)


def test_a_header_only_file_is_an_error_line(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Project ID,Start Date\n")
    result = runner.invoke(app, ["data", "profile", "infer", str(path), "--out",
                                 str(tmp_path / "p.toml")], env=WIDE)
    assert result.exit_code == 2 and "has no data rows" in result.output


def _write(folder, draft):
    path = folder / "draft.toml"
    path.write_text(draft.toml)
    return path
