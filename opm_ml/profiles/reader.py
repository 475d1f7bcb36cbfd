"""Read an organisation's export through its profile into the canonical history tables.

`read_history(profile, path)` reads the file (CSV, Parquet or ARFF) with the profile's options,
joins the extra files it names, keeps one row per key when asked, blanks the outcomes of rows
that are not finished yet, and with repeated status reports takes the first report as the plan,
the last as the outcome and the ones between as snapshots. Every cell is then converted (units,
dates in their declared formats, planned finish -> planned duration) and checked by
`opm_ml.validation` and `opm_ml.rules`, as the contract's tables are: a row is kept or reported
with the file's row number, the file's column name, the value and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.contract import Column, History
from opm_ml.profiles.profile import ALTERNATIVES, ROLES, UNITS, Profile, ProfileError
from opm_ml.validation import ContractError, TableSpec, cross_checked, validate_frame

SOURCE_ROW = "_source_row"
_TRUE = {"true", "yes", "y", "1", "1.0", "t"}
_FALSE = {"false", "no", "n", "0", "0.0", "f"}


def read_source(profile: Profile, path: str | Path) -> pd.DataFrame:
    """The export as read (text cells for CSV), joined and de-duplicated, with its file rows."""
    path = Path(path)
    frame = _read_file(path, profile.read)
    frame[SOURCE_ROW] = np.arange(1, len(frame) + 1)
    for join in profile.read.get("join", ()):
        extra = _read_file(path.parent / join["file"], {**profile.read, **join})
        key = join["on"]
        for table, where in ((frame, path.name), (extra, join["file"])):
            if key not in table.columns:
                raise ProfileError(f"{profile.source}: read.join.on {key!r} is not a column "
                                   f"of {where}")
        frame = frame.merge(extra.drop_duplicates(key), on=key, how="left",
                            suffixes=("", "_joined"))
    key = profile.read.get("deduplicate")
    if key:
        frame = frame.drop_duplicates(key, keep="first")
    missing = sorted({c for c in _source_columns(profile) if c not in frame.columns})
    if missing:
        raise ProfileError(f"{path}: has no column(s) {', '.join(map(repr, missing))} that "
                           f"{profile.source} maps")
    return frame


def read_history(profile: Profile, path: str | Path,
                 snapshots: str | Path | None = None) -> History:
    """The canonical, validated history of an export (see the module docstring)."""
    raw = read_source(profile, path)
    notes: list[str] = []
    if profile.read.get("deduplicate"):
        notes.append(f"{Path(path).name}: one row per {profile.read['deduplicate']} kept "
                     "(the profile's deduplicate rule)")
    raw, unfinished = _finished(raw, profile)
    if unfinished:
        notes.append(f"{unfinished} row(s) not finished yet "
                     f"({profile.read['finished']['column']}): their outcomes are not used")
    reports = profile.read.get("reports")
    outcome_columns: dict[str, str] = {}
    if reports:
        projects_raw, snapshots_raw, outcome_columns = _split_reports(raw, profile, reports)
    else:
        projects_raw = raw
        snapshots_raw = (read_source(profile, snapshots) if snapshots is not None
                         else pd.DataFrame(columns=[SOURCE_ROW]))
    parse = _Parser(profile, outcome_columns, Path(path).name)
    tables = {table: parse.table(raw_table, table) for table, raw_table in
              (("projects", projects_raw), ("snapshots", snapshots_raw))}
    check_columns(profile, tables, Path(path).name)
    results = {table: _validated(frame, parse, table, profile)
               for table, frame in tables.items()}
    history = cross_checked(results, notes, {t: parse.names for t in ("projects", "snapshots")})
    failed = parse.rejections()
    if len(failed):
        history.rejections = pd.concat([history.rejections, failed], ignore_index=True) \
            .sort_values(["table", "row"], kind="stable").reset_index(drop=True)
    return history


def check_columns(profile: Profile, tables: dict[str, pd.DataFrame], file: str) -> None:
    """Whole-column problems, before any row is judged: a negative actual (a target must be a
    positive amount) or a category feature with one level (nothing to learn from it)."""
    projects = tables["projects"]
    for role in ("actual_cost", "actual_effort_hours", "actual_duration_days"):
        if role in projects.columns:
            negative = projects[role] < 0
            if negative.fillna(False).any():
                first = int(projects.loc[negative.fillna(False), SOURCE_ROW].iloc[0])
                raise ProfileError(
                    f"{file}: {role} ({profile.roles.get(role, role)}) has "
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
    cols = [c if c.name in required else _nullable(c) for c in cols]
    unique = ("project_id",) if table == "projects" else ("project_id", "status_date")
    rules = profile.rules if table == "projects" else ()
    return TableSpec(table, tuple(cols), unique, rules)


def _nullable(column: Column) -> Column:
    from dataclasses import replace

    return replace(column, nullable=True)


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

    def __init__(self, profile: Profile, outcome_columns: dict[str, str] | None = None,
                 file: str = ""):
        self.profile = profile
        self.file = file
        self.outcome_columns = outcome_columns or {}  # role -> column holding its last report
        self.names: dict[str, str] = {}  # canonical -> source column (for the reports)
        self._failed: list[tuple[str, int, str, str, str]] = []

    def table(self, raw: pd.DataFrame, table: str) -> pd.DataFrame:
        p = self.profile
        out = pd.DataFrame({SOURCE_ROW: raw[SOURCE_ROW].to_numpy()}, index=raw.index)
        stages = ("id", "intake", "outcome") if table == "projects" else ("id", "snapshot")
        for role, column in p.roles.items():
            canonical = ALTERNATIVES.get(role, role)
            if ROLES[canonical].stage in stages:
                kind = "date" if role.endswith("_date") else ROLES[canonical].kind
                read_from = self.outcome_columns.get(role, column)
                out[role] = self._cell(raw, read_from, kind, table, role, column)
                self.names.setdefault(canonical, column)
        for name, column in p.role_efforts.items() if table == "projects" else ():
            out[f"actual_effort_{name}_hours"] = self._cell(raw, column, "float", table, name)
        for f in p.features:
            if (f.stage == "snapshot") == (table == "snapshots"):
                out[f.name] = self._cell(raw, f.column, f.kind, table, f.name)
                self.names[f.name] = f.column
        return self._canonical(out, table).reset_index(drop=True)

    def _canonical(self, out: pd.DataFrame, table: str) -> pd.DataFrame:
        """Units to days and hours; finish dates to durations and back."""
        units = self.profile.units
        for role, unit in units.items():
            if role in out.columns and role != "planned_finish_date":
                out[role] = out[role] * UNITS[unit]
        if "planned_finish_date" in out.columns:
            finish = out.pop("planned_finish_date")
            days = (finish - out["start_date"]).dt.days.astype(float)
            column = self.profile.roles["planned_finish_date"]
            for row, end, start, d in zip(out.loc[days < 0, SOURCE_ROW], finish[days < 0],
                                          out.loc[days < 0, "start_date"], days[days < 0]):
                self._failed.append((table, int(row), column, f"{end:%Y-%m-%d}",
                                     f"planned finish {end:%Y-%m-%d} is before the start "
                                     f"{start:%Y-%m-%d} ({d:.0f} days)"))
            out["planned_duration_days"] = days
            self.names["planned_duration_days"] = column
        if "actual_finish_date" in out.columns and "start_date" in out.columns:
            days = (out["actual_finish_date"] - out["start_date"]).dt.days.astype(float)
            given = out["actual_duration_days"] if "actual_duration_days" in out.columns else days
            out["actual_duration_days"] = given.fillna(days)
        if self.profile.role_efforts:
            parts = out[[c for c in out.columns if c.startswith("actual_effort_")
                         and c.endswith("_hours") and c != "actual_effort_hours"]]
            total = parts.sum(axis=1, min_count=len(parts.columns))
            out["actual_effort_hours"] = out.get("actual_effort_hours", total)
        return out

    def _cell(self, raw: pd.DataFrame, column: str, kind: str, table: str, name: str,
              source: str | None = None):
        """One column as `kind`; `source`: the file's column it came from (its date format)."""
        values = raw[column] if column in raw.columns else pd.Series(np.nan, index=raw.index)
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        text = values.astype("str").str.strip().where(values.notna())
        if kind == "date":
            parsed = self._dates(values, source or column)
        elif kind in ("float", "int"):
            parsed = values.astype(float) if numeric else self._numbers(text)
        elif kind == "bool":
            low = text.str.lower()
            parsed = pd.Series(np.where(low.isin(_TRUE), 1.0, np.where(low.isin(_FALSE), 0.0,
                                                                          np.nan)), raw.index)
        else:
            return text.where(text.notna() & (text != ""), None)
        bad = text.notna() & (text != "") & parsed.isna()
        given = int((text.notna() & (text != "")).sum())
        if kind == "date" and given >= 5 and bad.sum() > given / 2:
            fmt = self._format(source or column) or "YYYY-MM-DD"
            raise ProfileError(
                f"{self.file}: column {column!r} ({name}): {int(bad.sum())} of {given} values "
                f"are not dates in the format {fmt} (e.g. {values[bad].iloc[0]!r}); set its "
                "format in [read] date_formats")
        for row, value in zip(raw.loc[bad, SOURCE_ROW], values[bad]):
            expected = {"date": "not a date (expected "
                                f"{self._format(source or column) or 'YYYY-MM-DD'})",
                        "bool": "not a yes/no value"}.get(kind, "not a number")
            self._failed.append((table, int(row), column, str(value), expected))
        return parsed

    def _numbers(self, text: pd.Series) -> pd.Series:
        read = self.profile.read
        if read.get("thousands"):
            text = text.str.replace(read["thousands"], "", regex=False)
        if read.get("decimal", ".") != ".":
            text = text.str.replace(read["decimal"], ".", regex=False)
        return pd.to_numeric(text, errors="coerce").astype(float)

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


def _source_columns(profile: Profile) -> set[str]:
    columns = set(profile.roles.values()) | {f.column for f in profile.features}
    columns |= set(profile.role_efforts.values())
    finished = profile.read.get("finished")
    if finished:
        columns.add(finished["column"])
    return columns


def _finished(raw: pd.DataFrame, profile: Profile) -> tuple[pd.DataFrame, int]:
    """Blank the outcome roles of rows whose status column says they are not finished."""
    rule = profile.read.get("finished")
    if not rule:
        return raw, 0
    done = raw[rule["column"]].astype("str").str.strip().isin([str(v) for v in rule["values"]])
    outcomes = [c for r, c in profile.roles.items() if ROLES[ALTERNATIVES.get(r, r)].stage
                == "outcome"] + list(profile.role_efforts.values())
    raw = raw.copy()
    raw.loc[~done, outcomes] = np.nan
    return raw, int((~done).sum())


def _split_reports(raw: pd.DataFrame, profile: Profile,
                   reports: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Repeated status reports: first = the plan, last = the outcome, between = snapshots.

    A project row is its first report plus, for each outcome role, a column holding the last
    report's value (the returned role -> column map); a single report gives no outcome.
    """
    key, date = profile.roles["project_id"], reports["date"]
    if date not in raw.columns:
        raise ProfileError(f"{profile.source}: read.reports.date {date!r} is not a column")
    fmt = profile.read.get("date_formats", {}).get(date) or profile.read.get("date_format")
    when = pd.to_datetime(raw[date].astype("str").str.strip(), format=fmt or "ISO8601",
                          errors="coerce")
    if when.isna().any():
        first = raw.loc[when.isna(), SOURCE_ROW].iloc[0]
        raise ProfileError(f"{profile.source}: read.reports.date {date!r} has "
                           f"{int(when.isna().sum())} value(s) that are not dates "
                           f"(first: file row {first}); fix the column or its date format")
    ordered = raw.assign(_when=when).sort_values([key, "_when", SOURCE_ROW], kind="stable")
    group = ordered.groupby(key, sort=False)
    position = group.cumcount().to_numpy()
    size = group[key].transform("size").to_numpy()
    enough = size >= int(reports.get("min_reports", 2))
    first = ordered[position == 0].set_index(key)
    last = ordered[(position == size - 1) & enough].set_index(key)
    projects = first.copy()
    outcome_columns = {r: f"{c} [last report]" for r, c in profile.roles.items()
                       if ROLES[ALTERNATIVES.get(r, r)].stage == "outcome"}
    for role, column in outcome_columns.items():
        projects[column] = last[profile.roles[role]].reindex(projects.index)
    between = ordered[(position > 0) & (position < size - 1)]
    return projects.reset_index(), between.drop(columns="_when"), outcome_columns


def _read_file(path: Path, read: dict) -> pd.DataFrame:
    """One file as a frame: CSV cells as text, Parquet typed, ARFF typed by its header."""
    fmt = read.get("format") or path.suffix.lower().lstrip(".")
    if not path.is_file():
        raise ProfileError(f"{path}: no such file")
    try:
        if fmt == "csv":
            return pd.read_csv(path, sep=read.get("separator", ","), dtype=str,
                               encoding=read.get("encoding", "utf-8"), keep_default_na=True,
                               na_values=read.get("missing", []), skip_blank_lines=True)
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "arff":
            from opm_ml.real_data._io import read_arff

            return read_arff(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ProfileError(f"{path}: cannot read as {fmt}: {exc}") from None
    raise ProfileError(f"{path}: read.format must be csv, parquet or arff, got {fmt!r}")


__all__ = ["ContractError", "read_history", "read_source", "table_spec"]


def scoring_rows(profile: Profile, path: str | Path) -> tuple[pd.DataFrame, np.ndarray,
                                                             pd.DataFrame]:
    """An export's rows to forecast, in canonical columns: (rows, their file row numbers,
    cells that did not parse). With repeated status reports every report is a row, in flight
    at its date, on its project's plan (the first report); otherwise every row is a project
    at intake."""
    raw = read_source(profile, path)
    parse = _Parser(profile, None, Path(path).name)
    if not profile.read.get("reports"):
        rows = parse.table(raw, "projects")
    else:
        plans, _, _ = _split_reports(raw, profile, profile.read["reports"])
        projects = parse.table(plans, "projects").drop(columns=SOURCE_ROW)
        reports = parse.table(raw, "snapshots")
        rows = reports.merge(projects, on="project_id", how="left", suffixes=("", "_plan"))
    outcome = [c for c in rows.columns if c in ROLES and ROLES[c].stage == "outcome"]
    rows = rows.drop(columns=outcome)
    failed = parse.rejections()
    bad = rows[SOURCE_ROW].isin(set(failed["row"]))
    return rows[~bad].drop(columns=SOURCE_ROW).reset_index(drop=True), \
        rows.loc[~bad, SOURCE_ROW].to_numpy(), failed.drop(columns="table")
