"""Read an organisation's export through its profile into the canonical history tables.

`read_history(profile, path, snapshots)` reads the file (CSV, Parquet or ARFF) with the
profile's options (`source`: joins, one row per key, each file holding its table's columns),
takes its outcomes from finished rows or, with repeated status reports, splits them into plan,
outcome and snapshots (`reports`), and reads status snapshots from a second file when given.
Every cell is then converted (units, dates in their declared formats, planned finish -> planned
duration, category labels spelled one way: `opm_ml.categories`) and checked by
`opm_ml.validation` and `opm_ml.rules`, as the contract's tables are: a row is kept or reported
with the file's row number, the file's column name, the value and why.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.categories import category_labels
from opm_ml.contract import History
from opm_ml.profiles.numbers import parse_numbers
from opm_ml.profiles.profile import Profile, ProfileError
from opm_ml.profiles.reports import blank_unfinished, split_reports
from opm_ml.profiles.roles import ALTERNATIVES, ROLES, UNITS
from opm_ml.profiles.source import SOURCE_ROW, read_source
from opm_ml.validation import (
    ContractError,
    TableSpec,
    cross_checked,
    validate_frame,
    yes_no,
)


def read_history(profile: Profile, path: str | Path,
                 snapshots: str | Path | None = None) -> History:
    """The canonical, validated history of an export (see the module docstring)."""
    notes: list[str] = []
    raw = read_source(profile, path, "projects", notes)
    outcomes: dict[str, str] = {}
    if profile.read.get("reports"):
        if snapshots is not None:
            raise ProfileError(f"{snapshots}: {profile.source} reads its status reports from "
                               f"{Path(path).name} itself (read.reports): drop --snapshots")
        reports = split_reports(raw, profile)
        projects_raw, snapshots_raw, outcomes = reports.plans, reports.snapshots, reports.outcomes
        notes += reports.notes
    else:
        projects_raw, more = blank_unfinished(raw, profile)
        notes += more
        snapshots_raw = pd.DataFrame(columns=[SOURCE_ROW])
        if snapshots is not None:
            snapshots_raw = read_source(profile, snapshots, "snapshots")
        elif profile.snapshots:
            notes.append(f"no status snapshots: {profile.source} maps status_date "
                         f"({profile.roles['status_date']}) but no snapshots file was given "
                         "(--snapshots): no in-flight models")
    files = {"projects": Path(path).name,
             "snapshots": Path(snapshots).name if snapshots is not None else Path(path).name}
    parse = _Parser(profile, outcomes, files)
    tables = {table: parse.table(raw_table, table) for table, raw_table in
              (("projects", projects_raw), ("snapshots", snapshots_raw))}
    check_columns(profile, tables, Path(path).name, parse.names)
    results = {table: _validated(frame, parse, table, profile)
               for table, frame in tables.items()}
    history = cross_checked(results, notes, {t: parse.names for t in ("projects", "snapshots")})
    failed = parse.rejections()
    if len(failed):
        history.rejections = pd.concat([history.rejections, failed], ignore_index=True) \
            .sort_values(["table", "row"], kind="stable").reset_index(drop=True)
    return history


def check_columns(profile: Profile, tables: dict[str, pd.DataFrame], file: str,
                  parse_names: dict[str, str]) -> None:
    """Whole-column problems, before any row is judged: a negative actual (a target must be a
    positive amount) or a category feature with one level (nothing to learn from it)."""
    projects = tables["projects"]
    efforts = [f"actual_effort_{r}_hours" for r in profile.role_efforts]
    for role in ("actual_cost", "actual_effort_hours", "actual_duration_days", *efforts):
        if role in projects.columns:
            negative = projects[role] < 0
            if negative.fillna(False).any():
                first = int(projects.loc[negative.fillna(False), SOURCE_ROW].iloc[0])
                raise ProfileError(
                    f"{file}: {role} ({parse_names.get(role, role)}) has "
                    f"{int(negative.sum())} negative value(s), first on row {first}: an actual "
                    "outcome must be a positive amount; check the role's column")
    for f in profile.features:
        table = tables["snapshots" if f.stage == "snapshot" else "projects"]
        if f.kind == "category" and f.name in table.columns and len(table) > 1:
            levels = table[f.name].dropna().unique()
            if len(levels) == 1:
                raise ProfileError(
                    f"{file}: features.{f.name} (column {f.column!r}) has one level "
                    f"({levels[0]!r}) in every row: nothing to learn; remove the feature")


def table_spec(profile: Profile, table: str) -> TableSpec:
    """The validation spec of the canonical projects or snapshots table of a profile."""
    columns = profile.columns()
    if table == "projects":
        cols = [c for c in columns if c.stage in ("id", "intake", "outcome")]
        required = {"project_id"}
    else:
        cols = [ROLES["project_id"]] + [c for c in columns if c.stage == "snapshot"]
        required = {"project_id", "status_date"}
    cols = [c if c.name in required else replace(c, nullable=True) for c in cols]
    unique = ("project_id",) if table == "projects" else ("project_id", "status_date")
    rules = profile.rules if table == "projects" else ()
    return TableSpec(table, tuple(cols), unique, rules)


def _validated(frame: pd.DataFrame, parse: _Parser, table: str, profile: Profile):
    """`validate_frame` on the parsed rows whose every cell parsed, with the file's row
    numbers (the rows that did not parse are reported by the parser)."""
    spec = table_spec(profile, table)
    frame = frame[~frame[SOURCE_ROW].isin(parse.failed_rows(table))]
    rows = frame[SOURCE_ROW].to_numpy()
    result = validate_frame(frame.reindex(columns=[c.name for c in spec.columns]), spec)
    result.good.index = pd.Index(rows[result.good.index.to_numpy() - 1], name="row")
    if len(result.rejections):
        result.rejections["row"] = rows[result.rejections["row"].to_numpy() - 1]
    return result


class _Parser:
    """Source cells -> canonical typed columns; cells that do not parse are remembered."""

    def __init__(self, profile: Profile, outcomes: dict[str, str] | None = None,
                 files: dict[str, str] | None = None):
        self.profile = profile
        self.files = files or {}
        self.outcomes = outcomes or {}  # outcome source column -> column of its last report
        self.names: dict[str, str] = {}  # canonical -> source column (for the reports)
        self.with_outcomes = True  # False: outcome columns are not read (scoring)
        self._failed: list[tuple[str, int, str, str, str]] = []

    def table(self, raw: pd.DataFrame, table: str) -> pd.DataFrame:
        p = self.profile
        out = pd.DataFrame({SOURCE_ROW: raw[SOURCE_ROW].to_numpy()}, index=raw.index)
        stages = ("id", "intake", "outcome") if table == "projects" else ("id", "snapshot")
        if not self.with_outcomes:
            stages = tuple(s for s in stages if s != "outcome")
        for role, column in p.roles.items():
            canonical = ALTERNATIVES.get(role, role)
            if ROLES[canonical].stage in stages:
                kind = "date" if role.endswith("_date") else ROLES[canonical].kind
                outcome = ROLES[canonical].stage == "outcome"
                read_from = self.outcomes.get(column, column) if outcome else column
                out[role] = self._cell(raw, read_from, kind, table, role, column)
                self.names.setdefault(canonical, column)
        for name, column in p.role_efforts.items() if stages[-1] == "outcome" else ():
            canonical = f"actual_effort_{name}_hours"
            out[canonical] = self._cell(raw, self.outcomes.get(column, column), "float",
                                        table, canonical, column)
            self.names[canonical] = column
        for f in p.features:
            if f.stage in stages:
                out[f.name] = self._cell(raw, f.column, f.kind, table, f.name)
                self.names[f.name] = f.column
        return self._canonical(out, table).reset_index(drop=True)

    def _canonical(self, out: pd.DataFrame, table: str) -> pd.DataFrame:
        """Units to days and hours; finish dates to durations and back."""
        units = self.profile.units
        parts = [c for c in (f"actual_effort_{r}_hours" for r in self.profile.role_efforts)
                 if c in out.columns]
        for role, unit in units.items():
            for column in [role, *(parts if role == "actual_effort_hours" else ())]:
                if column in out.columns:
                    out[column] = out[column] * UNITS[unit]
        if "planned_finish_date" in out.columns:
            finish = out.pop("planned_finish_date")
            days = (finish - out["start_date"]).dt.days.astype(float)
            column = self.profile.roles["planned_finish_date"]
            for row, end, start, d in zip(out.loc[days < 0, SOURCE_ROW], finish[days < 0],
                                          out.loc[days < 0, "start_date"], days[days < 0]):
                self._failed.append((table, int(row), column, f"{end:%Y-%m-%d}",
                                     (f"planned finish {end:%Y-%m-%d} is before the start "
                                      f"{start:%Y-%m-%d} ({d:.0f} days)")))
            out["planned_duration_days"] = days
            self.names["planned_duration_days"] = column
        if "actual_finish_date" in out.columns and "start_date" in out.columns:
            days = (out["actual_finish_date"] - out["start_date"]).dt.days.astype(float)
            given = out["actual_duration_days"] if "actual_duration_days" in out.columns else days
            out["actual_duration_days"] = given.fillna(days)
        if parts:
            total = out[parts].sum(axis=1, min_count=len(parts))
            given = out["actual_effort_hours"] if "actual_effort_hours" in out.columns else total
            out["actual_effort_hours"] = given.fillna(total)
        return out

    def _cell(self, raw: pd.DataFrame, column: str, kind: str, table: str, name: str,
              source: str | None = None):
        """One column as `kind`; `source`: the file's column it came from (its date format)."""
        values = raw[column] if column in raw.columns else pd.Series(np.nan, index=raw.index)
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        text = values.astype("str").str.strip().where(values.notna())
        if kind in ("category", "str"):
            return category_labels(values)
        if kind == "date":
            parsed = self._dates(values, source or column)
        elif kind in ("float", "int"):
            parsed = values.astype(float) if numeric else self._numbers(text)
        else:
            parsed = yes_no(values).astype(float)
        bad = text.notna() & (text != "") & parsed.isna()
        given = int((text.notna() & (text != "")).sum())
        if kind == "date" and given >= 5 and bad.sum() > given / 2:
            fmt = self._format(source or column) or "YYYY-MM-DD"
            raise ProfileError(
                f"{self.files.get(table, '')}: column {source or column!r} ({name}): "
                f"{int(bad.sum())} of {given} values are not dates in the format {fmt} (e.g. "
                f"{values[bad].iloc[0]!r}); set its format in read.date_formats")
        for row, value in zip(raw.loc[bad, SOURCE_ROW], values[bad]):
            expected = {"date": "not a date (expected "
                                f"{self._format(source or column) or 'YYYY-MM-DD'})",
                        "bool": "not a yes/no value"}.get(kind, "not a number")
            self._failed.append((table, int(row), source or column, str(value), expected))
        return parsed

    def _numbers(self, text: pd.Series) -> pd.Series:
        return parse_numbers(text, self.profile.read.get("decimal", "."))

    def _format(self, column: str) -> str | None:
        read = self.profile.read
        return read.get("date_formats", {}).get(column) or read.get("date_format")

    def _dates(self, values: pd.Series, column: str) -> pd.Series:
        if pd.api.types.is_datetime64_any_dtype(values):
            return values.astype("datetime64[ns]")
        fmt = self._format(column)
        text = values.astype("str").str.strip().where(values.notna())
        return pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce").astype(
            "datetime64[ns]")

    def rejections(self) -> pd.DataFrame:
        return pd.DataFrame(self._failed, columns=["table", "row", "column", "value", "reason"])

    def failed_rows(self, table: str) -> set[int]:
        return {row for t, row, *_ in self._failed if t == table}


__all__ = ["ContractError", "read_history", "read_source", "table_spec"]


def scoring_rows(profile: Profile, path: str | Path) -> tuple[pd.DataFrame, np.ndarray,
                                                             pd.DataFrame]:
    """An export's rows to forecast, in canonical columns: (rows, their file row numbers,
    cells that did not parse). With repeated status reports every report is a row, in flight
    at its date, on its project's plan (the first report); otherwise every row is a project
    at intake. Outcome columns are not read: a forecast does not need them."""
    raw = read_source(profile, path)
    parse = _Parser(profile, files={"projects": Path(path).name,
                                    "snapshots": Path(path).name}, outcomes=None)
    parse.with_outcomes = False
    if not profile.read.get("reports"):
        rows = parse.table(raw, "projects")
    else:
        plans = split_reports(raw, profile).plans
        projects = parse.table(plans, "projects").drop(columns=SOURCE_ROW)
        reports = parse.table(raw, "snapshots")
        rows = reports.merge(projects, on="project_id", how="left", suffixes=("", "_plan"))
    failed = parse.rejections()
    bad = rows[SOURCE_ROW].isin(set(failed["row"]))
    return rows[~bad].drop(columns=SOURCE_ROW).reset_index(drop=True), \
        rows.loc[~bad, SOURCE_ROW].to_numpy(), failed.drop(columns="table")
