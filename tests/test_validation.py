"""Tests for opm_ml.validation: every message class, row numbers, dtypes and nothing lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.table import Table

from opm_ml.contract import (
    OUTCOME_COLUMNS,
    PROJECT_TYPES,
    ROLE_SHARE_COLUMNS,
    TABLES,
)
from opm_ml.synthetic import generate_history, write_history
from opm_ml.validation import (
    REPORT_COLUMNS,
    ContractError,
    load_history,
    load_table,
    rejection_report_table,
    validate_frame,
    write_rejections,
)

BAD_HISTORY = Path(__file__).resolve().parents[1] / "data" / "examples" / "bad_history"


def valid_project(project_id: str = "P1") -> dict[str, str]:
    """One valid project as CSV text, derived from the contract's ranges and categories."""
    row = {}
    for col in TABLES["projects"]:
        if col.categories:
            row[col.name] = col.categories[0]
        elif col.kind == "date":
            row[col.name] = "2021-01-04"
        elif col.kind in ("int", "float") and col.max is not None:
            row[col.name] = str(int((col.min + col.max) // 2))
        elif col.kind in ("int", "float"):
            row[col.name] = str(int(col.min) + 1)
    row.update({name: str(1 / len(ROLE_SHARE_COLUMNS)) for name in ROLE_SHARE_COLUMNS})
    row.update(project_id=project_id, actual_finish_date="2022-01-04")
    return row


def valid_snapshot(project_id: str = "P1", status_date: str = "2021-06-01") -> dict[str, str]:
    return {"project_id": project_id, "status_date": status_date, "pv": "1000", "ev": "900",
            "ac": "950", "percent_complete": "30"}


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, dtype="str")


def rejection_tuples(result) -> list[tuple]:
    return list(result.rejections.itertuples(index=False, name=None))


def test_valid_projects_pass_with_documented_dtypes():
    result = validate_frame(frame([valid_project("P1"), valid_project("P2")]), "projects")
    assert result.ok and result.n_rows == 2 and result.n_rejected_rows == 0
    good = result.good
    assert list(good.index) == [1, 2] and good.index.name == "row"
    assert list(good.columns) == [c.name for c in TABLES["projects"]]
    assert good["start_date"].dtype == "datetime64[ns]"
    assert good["actual_finish_date"].dtype == "datetime64[ns]"
    assert good["planned_duration_days"].dtype == "int64"
    assert good["budget_at_completion"].dtype == "float64"
    assert good["actual_cost"].dtype == "Float64"  # nullable outcome column
    assert good["project_type"].dtype == "str"
    assert good.loc[1, "planned_duration_days"] == (7 + 3650) // 2
    assert good.loc[2, "start_date"] == pd.Timestamp("2021-01-04")
    assert list(result.rejections.columns) == list(REPORT_COLUMNS)


def test_running_project_with_empty_outcome_is_valid():
    row = valid_project() | {name: "" for name in OUTCOME_COLUMNS}
    result = validate_frame(frame([row]), "projects")
    assert result.ok
    assert result.good[list(OUTCOME_COLUMNS)].isna().all(axis=None)


ALLOWED_TYPES = ", ".join(PROJECT_TYPES)
PERTURBATIONS = [
    # (changes to row 2, column reported, value reported, reason)
    ({"budget_at_completion": "12k"}, "budget_at_completion", "12k", "not a number"),
    ({"expected_benefits": "inf"}, "expected_benefits", "inf", "not a number"),
    ({"planned_team_size": "3.5"}, "planned_team_size", "3.5", "not a whole number"),
    ({"start_date": "31/12/2021"}, "start_date", "31/12/2021",
     "not a date (expected YYYY-MM-DD)"),
    ({"actual_finish_date": "2021-02-30"}, "actual_finish_date", "2021-02-30",
     "not a date (expected YYYY-MM-DD)"),
    ({"start_date": "2021-03"}, "start_date", "2021-03", "not a date (expected YYYY-MM-DD)"),
    ({"start_date": "9999-12-31"}, "start_date", "9999-12-31",
     "not a date (expected YYYY-MM-DD)"),
    ({"budget_at_completion": "-5000"}, "budget_at_completion", "-5000",
     "budget_at_completion must be >= 1, got -5000"),
    ({"complexity": "7"}, "complexity", "7", "complexity must be <= 5, got 7"),
    ({"project_type": "spaceflight"}, "project_type", "spaceflight",
     f"unknown project_type 'spaceflight'; allowed: {ALLOWED_TYPES}"),
    ({"region": ""}, "region", "", "required value is missing"),
    ({"project_id": ""}, "project_id", "", "required value is missing"),
    ({"actual_finish_date": "2020-12-31"}, "actual_finish_date", "2020-12-31",
     "actual_finish_date 2020-12-31 is before start_date 2021-01-04"),
    ({"role_share_build": str(1 / 6 + 0.1)}, "role_share_*", "1.1",
     "role shares sum to 1.1, must sum to 1 (± 0.01)"),
    ({"num_identified_risks": "0"}, "mean_risk_severity", "2",
     "mean_risk_severity must be 0 when num_identified_risks is 0, got 2"),
    ({"mean_risk_severity": "0"}, "mean_risk_severity", "0",
     "mean_risk_severity must be > 0 when num_identified_risks is 500"),
    ({"actual_cost": ""}, "actual_cost", "",
     "missing outcome value: a finished project needs actual_finish_date, actual_cost and "
     "every actual_effort_*_hours"),
]


@pytest.mark.parametrize(("changes", "column", "value", "reason"), PERTURBATIONS)
def test_each_problem_is_one_clear_rejection(changes, column, value, reason):
    rows = [valid_project("P1"), valid_project("P2") | changes, valid_project("P3")]
    result = validate_frame(frame(rows), "projects")
    assert rejection_tuples(result) == [(2, column, value, reason)]
    assert list(result.good.index) == [1, 3]
    assert result.n_rows == 3 and result.n_rejected_rows == 1


def test_role_shares_within_tolerance_pass():
    row = valid_project() | {"role_share_build": str(1 / 6 + 0.009)}
    assert validate_frame(frame([row]), "projects").ok


def test_finish_on_start_day_is_allowed():
    row = valid_project() | {"actual_finish_date": "2021-01-04"}
    assert validate_frame(frame([row]), "projects").ok


def test_duplicate_project_ids_reject_every_copy():
    rows = [valid_project("P1"), valid_project("P2"), valid_project("P1")]
    result = validate_frame(frame(rows), "projects")
    reason = "duplicate project_id 'P1': on 2 rows (first row 1); every copy is rejected"
    assert rejection_tuples(result) == [(1, "project_id", "P1", reason),
                                        (3, "project_id", "P1", reason)]
    assert list(result.good["project_id"]) == ["P2"]


def test_row_with_several_problems_is_listed_once_per_problem():
    row = valid_project("P2") | {"budget_at_completion": "-1", "sector": "space", "complexity": ""}
    result = validate_frame(frame([valid_project("P1"), row]), "projects")
    assert sorted(result.rejections["column"]) == ["budget_at_completion", "complexity", "sector"]
    assert set(result.rejections["row"]) == {2}
    assert result.n_rejected_rows == 1 and result.n_rows == 2


def test_missing_column_is_a_contract_error_naming_it():
    df = frame([valid_project()]).drop(columns=["region", "actual_cost"])
    with pytest.raises(ContractError, match="missing required column.*region, actual_cost"):
        validate_frame(df, "projects")


def test_repeated_column_is_a_contract_error():
    df = frame([valid_project()])
    df = pd.concat([df, df[["sector"]]], axis=1)
    with pytest.raises(ContractError, match="repeated column.*sector"):
        validate_frame(df, "projects")


def test_unknown_table_is_a_contract_error():
    with pytest.raises(ContractError, match="unknown table 'project'"):
        validate_frame(frame([valid_project()]), "project")


def test_extra_columns_are_kept_and_listed():
    df = frame([valid_project()]).assign(owner="alice")
    result = validate_frame(df, "projects")
    assert result.ok and result.extra_columns == ("owner",)
    assert result.good["owner"].tolist() == ["alice"]


def test_typed_input_is_accepted_and_index_is_ignored():
    typed = validate_frame(frame([valid_project("P1"), valid_project("P2")]), "projects").good
    shuffled = typed.set_axis([10, 5])
    result = validate_frame(shuffled, "projects")
    assert result.ok
    pd.testing.assert_frame_equal(result.good, typed)


def test_nothing_is_lost_and_exactly_the_broken_rows_are_rejected():
    rng = np.random.default_rng(7)
    n = 300
    rows = [valid_project(f"P{i}") for i in range(n)]
    breakers = [
        {"budget_at_completion": "-3"}, {"start_date": "yesterday"}, {"sector": "mining"},
        {"planned_team_size": "many"}, {"methodology": ""}, {"role_share_analysis": "0.9"},
        {"actual_finish_date": "2019-01-01"}, {"actual_effort_build_hours": ""},
    ]
    broken = set(rng.choice(n, size=60, replace=False).tolist())
    for i in broken:
        rows[i] |= breakers[int(rng.integers(len(breakers)))]
    result = validate_frame(frame(rows), "projects")
    rejected = set(result.rejections["row"])
    assert rejected == {i + 1 for i in broken}
    assert rejected.isdisjoint(result.good.index)
    assert len(result.good) + len(rejected) == n == result.n_rows


def test_snapshot_checks_and_duplicate_status_dates():
    rows = [valid_snapshot(), valid_snapshot("P1", "2021-07-01") | {"percent_complete": "120"},
            valid_snapshot("P2"), valid_snapshot("P2")]
    result = validate_frame(frame(rows), "snapshots")
    reason = ("duplicate row: another row has the same project_id and status_date; "
              "every copy is rejected")
    assert rejection_tuples(result) == [
        (2, "percent_complete", "120", "percent_complete must be <= 100, got 120"),
        (3, "status_date", "2021-06-01", reason),
        (4, "status_date", "2021-06-01", reason),
    ]


def write_csv(path: Path, rows: list[dict], blank_after: int | None = None) -> Path:
    lines = frame(rows).to_csv(index=False).splitlines()
    if blank_after is not None:
        lines.insert(blank_after + 1, "")  # +1 for the header line
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_row_numbers_count_data_rows_from_one(tmp_path):
    rows = [valid_project(f"P{i}") for i in range(1, 6)]
    rows[3]["budget_at_completion"] = "lots"  # 4th data row
    path = write_csv(tmp_path / "projects.csv", rows, blank_after=1)  # blank line = data row 2
    result = load_table(path, "projects")
    assert rejection_tuples(result) == [(2, "", "", "empty row"),
                                        (5, "budget_at_completion", "lots", "not a number")]
    assert list(result.good["project_id"]) == ["P1", "P2", "P3", "P5"]
    assert list(result.good.index) == [1, 3, 4, 6]


def test_csv_missing_markers_and_whitespace(tmp_path):
    row = valid_project() | {"actual_cost": "NA", "project_type": " rnd "}
    row |= {name: "" for name in OUTCOME_COLUMNS if name != "actual_cost"}
    result = load_table(write_csv(tmp_path / "p.csv", [row]), "projects")
    assert result.ok
    assert result.good.loc[1, "project_type"] == "rnd"
    assert pd.isna(result.good.loc[1, "actual_cost"])


def test_parquet_round_trip(tmp_path):
    running = valid_project("P2") | {name: "" for name in OUTCOME_COLUMNS}
    good = validate_frame(frame([valid_project("P1"), running]), "projects").good
    good.to_parquet(tmp_path / "projects.parquet")
    result = load_table(tmp_path / "projects.parquet", "projects")
    assert result.ok
    pd.testing.assert_frame_equal(result.good, good)


def test_parquet_with_bad_values_is_reported_per_row(tmp_path):
    good = validate_frame(frame([valid_project("P1"), valid_project("P2")]), "projects").good
    good.loc[2, "budget_at_completion"] = -5000.0
    good.to_parquet(tmp_path / "projects.parquet")
    result = load_table(tmp_path / "projects.parquet", "projects")
    assert rejection_tuples(result) == [
        (2, "budget_at_completion", "-5000", "budget_at_completion must be >= 1, got -5000")]


@pytest.mark.parametrize("cells", [
    pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"])),
    pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC")),
    pd.Series(pd.to_timedelta([1, 2], unit="D")),
    pd.Series([1 + 2j, 3 + 0j]),
    pd.Series(["a", "b"], dtype="category"),
], ids=["timestamp", "tz-timestamp", "timedelta", "complex", "text-category"])
def test_a_number_column_of_another_type_is_rejected_per_row(tmp_path, cells):
    """A Parquet file can carry any dtype where the contract wants a number: every row is one
    named rejection, never an exception."""
    good = validate_frame(frame([valid_project("P1"), valid_project("P2")]), "projects").good
    good["budget_at_completion"] = cells.to_numpy()
    result = validate_frame(good, "projects")
    assert result.good.empty
    assert set(result.rejections["column"]) == {"budget_at_completion"}
    assert list(result.rejections["row"]) == [1, 2]


def test_lone_surrogates_in_text_are_reported_not_raised():
    """JSON allows a lone surrogate; pandas' Arrow strings do not. It is kept as U+FFFD."""
    bad = pd.DataFrame([valid_project("P1") | {"sector": "\ud800"}], dtype=object)
    result = validate_frame(bad, "projects")
    assert rejection_tuples(result)[0][:3] == (1, "sector", "\ufffd")


def test_unreadable_files_are_contract_errors(tmp_path):
    with pytest.raises(ContractError, match="expected a .csv or .parquet"):
        load_table(tmp_path / "projects.xlsx", "projects")
    with pytest.raises(ContractError, match="cannot read"):
        load_table(tmp_path / "absent.csv", "projects")
    (tmp_path / "ragged.csv").write_text("project_id,status_date\nP1,2021-01-01,oops\n")
    with pytest.raises(ContractError, match="ragged.csv.*Expected 2 columns, got 3"):
        load_table(tmp_path / "ragged.csv", "snapshots")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(ContractError, match="cannot read"):
        load_table(tmp_path / "broken.parquet", "projects")


def test_raise_if_empty():
    result = validate_frame(frame([valid_project() | {"region": ""}]), "projects")
    with pytest.raises(ContractError, match="no valid projects rows: all 1 rows were rejected"):
        result.raise_if_empty()
    validate_frame(frame([valid_project()]), "projects").raise_if_empty()


def make_history(folder: Path, projects: list[dict], snapshots: list[dict],
                 usage: list[dict] | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    write_csv(folder / "projects.csv", projects)
    write_csv(folder / "snapshots.csv", snapshots)
    if usage is not None:
        frame(usage).to_parquet(folder / "resource_usage.parquet")
    return folder


def test_history_cross_table_rules(tmp_path):
    bac = str(int((1 + 1e11) // 2))
    projects = [valid_project("P1"), valid_project("P2") | {"region": "mars"}]
    snapshots = [
        valid_snapshot("P1"),
        valid_snapshot("P1", "2021-07-01") | {"ev": "60000000000"},
        valid_snapshot("P1", "2021-08-01") | {"pv": "70000000000"},
        valid_snapshot("P1", "2020-12-31"),
        valid_snapshot("P2"),
        valid_snapshot("P9"),
    ]
    usage = [{"project_id": pid, "month_index": "0", **{f"hours_{r}": "10" for r in
              ("management", "analysis", "design", "build", "testing", "deployment")}}
             for pid in ("P1", "P9")]
    history = load_history(make_history(tmp_path / "h", projects, snapshots, usage))
    unknown = "unknown project_id (or the project was rejected)"
    assert list(history.rejections.itertuples(index=False, name=None)) == [
        ("projects", 2, "region", "mars",
         "unknown region 'mars'; allowed: north_america, europe, asia_pacific, latin_america, "
         "middle_east_africa"),
        ("snapshots", 2, "ev", "60000000000",
         f"ev 60000000000 exceeds the project's budget_at_completion {bac}"),
        ("snapshots", 3, "pv", "70000000000",
         f"pv 70000000000 exceeds the project's budget_at_completion {bac}"),
        ("snapshots", 4, "status_date", "2020-12-31",
         "status_date 2020-12-31 is before the project's start_date 2021-01-04"),
        ("snapshots", 5, "project_id", "P2", unknown),
        ("snapshots", 6, "project_id", "P9", unknown),
        ("resource_usage", 2, "project_id", "P9", unknown),
    ]
    assert list(history.projects["project_id"]) == ["P1"]
    assert list(history.snapshots["status_date"]) == [pd.Timestamp("2021-06-01")]
    assert history.snapshots.index.equals(pd.RangeIndex(1))
    assert list(history.resource_usage["project_id"]) == ["P1"]
    assert history.resource_usage["month_index"].dtype == "int64"


def test_history_without_usage_and_missing_tables(tmp_path):
    folder = make_history(tmp_path / "h", [valid_project()], [valid_snapshot()])
    history = load_history(folder)
    assert history.rejections.empty and len(history.snapshots) == 1
    assert history.resource_usage.empty
    assert list(history.resource_usage.columns) == [c.name for c in TABLES["resource_usage"]]
    (folder / "snapshots.csv").unlink()
    with pytest.raises(ContractError, match="no snapshots.parquet or snapshots.csv"):
        load_history(folder)
    with pytest.raises(ContractError, match="does not exist"):
        load_history(tmp_path / "nowhere")


def test_example_files_report_every_planted_problem():
    projects = load_table(BAD_HISTORY / "projects.csv", "projects")
    assert projects.rejections[["row", "column"]].values.tolist() == [
        [3, "budget_at_completion"], [4, "budget_at_completion"], [5, "actual_finish_date"],
        [6, "project_type"], [7, "role_share_*"], [8, "region"], [12, "project_id"],
        [13, "project_id"],
    ]
    history = load_history(BAD_HISTORY)
    snaps = history.rejections[history.rejections["table"] == "snapshots"]
    assert snaps[["row", "column"]].values.tolist() == [
        [9, "ev"], [11, "status_date"], [12, "project_id"], [13, "project_id"]]
    n_snapshot_rows = len(pd.read_csv(BAD_HISTORY / "snapshots.csv"))
    assert len(history.snapshots) + snaps["row"].nunique() == n_snapshot_rows


def test_write_rejections_round_trips(tmp_path):
    result = validate_frame(frame([valid_project() | {"complexity": "9"}]), "projects")
    for name in ("report.csv", "sub/report.parquet"):
        path = write_rejections(result.rejections, tmp_path / name)
        back = pd.read_csv(path, dtype={"value": str}) if path.suffix == ".csv" else (
            pd.read_parquet(path))
        assert back.to_dict("records") == result.rejections.to_dict("records")
    with pytest.raises(ContractError, match="expected a .csv or .parquet"):
        write_rejections(result.rejections, tmp_path / "report.txt")


def test_rejection_report_table_limits_rows():
    rows = [valid_project(f"P{i}") | {"sector": "space"} for i in range(8)]
    rejections = validate_frame(frame(rows), "projects").rejections
    table = rejection_report_table(rejections, limit=5)
    assert isinstance(table, Table)
    assert table.row_count == 5
    assert [c.header for c in table.columns] == list(REPORT_COLUMNS)
    assert "8" in str(table.title) and "5 of 8" in str(table.caption)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generated_history_validates_cleanly(tmp_path, fmt):
    generated = generate_history(n_projects=200, seed=3)
    write_history(generated, tmp_path, fmt=fmt)
    history = load_history(tmp_path)
    assert history.rejections.empty, history.rejections.head(10).to_string()
    for table in TABLES:
        assert len(getattr(history, table)) == len(getattr(generated, table)) > 0
