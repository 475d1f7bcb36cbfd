"""Validate and load tables: every row is either kept or reported, never dropped silently.

A `TableSpec` says what a table holds: the contract's tables (`opm_ml.contract.TABLES`), a
dataset profile's, or the rows batch scoring reads. Single-column checks (type, range,
category, required, unique) come from the spec's columns through pandera; the multi-column and
cross-table rules are `opm_ml.rules`, the same functions the API and batch scoring run. Type
coercion is vectorised pandas (pandera cannot say *which* cell failed to parse); all problems
share one report format: `row, column, value, reason`, where `row` is the 1-based data row as
a person counts it in the file.

Output dtypes: dates `datetime64[ns]`, ids and categories `str` (plain strings, not Categorical, so
tables concatenate and round-trip freely), ints `int64`, floats `float64`; nullable contract
columns use `Int64` / `Float64` (missing = `pd.NA`) and `datetime64[ns]` (missing = `NaT`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from rich.table import Table

from opm_ml import rules
from opm_ml.categories import category_labels
from opm_ml.contract import OUTCOME_COLUMNS, TABLES, Column, History
from opm_ml.contract_manifest import RULES
from opm_ml.csv_safety import write_csv

REPORT_COLUMNS = ("row", "column", "value", "reason")


@dataclass(frozen=True)
class TableSpec:
    """What one table holds and which rules its rows obey.

    `unique`: the columns whose values, together, identify a row. `rules`: profile rules
    (`opm_ml.rules.profile_findings`). `status`: columns of an optional status snapshot each
    row may carry (batch scoring): given partly, the row is rejected; given, it must agree with
    the project (`opm_ml.rules.status_findings`). `outcomes`: columns a finished project must
    have all of (with `outcomes_text` saying so), and its finish may not precede its start.
    """

    name: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    rules: tuple[dict, ...] = ()
    status: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    outcomes_text: str = ""
    optional: tuple[str, ...] = ()  # columns a file may leave out (read as empty)


def contract_table(name: str) -> TableSpec:
    """The spec of one contract table (`projects`, `snapshots`, `resource_usage`)."""
    if name not in TABLES:
        expected = ", ".join(TABLES)
        raise ContractError(f"unknown table {name!r}; expected one of {expected}")
    if name == "projects":
        return TableSpec(name, TABLES[name], ("project_id",), RULES, (), OUTCOME_COLUMNS,
                         "actual_finish_date, actual_cost and every actual_effort_*_hours")
    keys = {"snapshots": ("project_id", "status_date"),
            "resource_usage": ("project_id", "month_index")}[name]
    return TableSpec(name, TABLES[name], keys)


class ContractError(ValueError):
    """A whole-file problem (missing columns, unreadable file): no per-row report is possible."""


@dataclass
class ValidationResult:
    """Good rows (index = source row number, named `row`) and one rejection per problem found."""

    table: str
    good: pd.DataFrame
    rejections: pd.DataFrame
    extra_columns: tuple[str, ...] = field(default=())  # not in the contract: kept, not checked

    @property
    def n_rejected_rows(self) -> int:
        return int(self.rejections["row"].nunique())

    @property
    def n_rows(self) -> int:
        """Rows read: good plus rejected, so nothing can go missing unnoticed."""
        return len(self.good) + self.n_rejected_rows

    @property
    def ok(self) -> bool:
        return self.rejections.empty

    def raise_if_empty(self) -> None:
        """Raise ContractError when no good row is left (training on nothing helps no-one)."""
        if self.good.empty:
            why = (f"all {self.n_rows} rows were rejected; see the rejection report"
                   if self.n_rows else "it has no data rows")
            raise ContractError(f"no valid {self.table} rows: {why}")


def scoring_table(manifest) -> TableSpec:
    """Rows to forecast (batch scoring, dashboard uploads): `project_id`, the manifest's intake
    columns and optionally a status snapshot; open category lists (intake or snapshot) accept
    unseen values, which the output's `warnings` name, as the API's answers do."""
    from dataclasses import replace

    def opened(c: Column) -> Column:
        return c if c.name in manifest.closed else replace(c, categories=None)

    id_column = Column("project_id", "str", "id", "your project id")
    columns = [id_column] + [opened(c) for c in manifest.columns if c.stage == "intake"]
    snapshot = [replace(opened(c), nullable=True) for c in manifest.columns
                if c.stage == "snapshot"]
    return TableSpec("rows", tuple(columns + snapshot), rules=manifest.rules,
                     status=manifest.status_required,
                     optional=tuple(c.name for c in snapshot))


def contract_schema(table: str | TableSpec) -> pa.DataFrameSchema:
    """The pandera schema of a table, for frames already coerced by `validate_frame`.

    Check `error` texts are message fragments that `_pandera_rejections` turns into reasons.
    """
    spec = _spec(table)
    columns = {}
    for col in spec.columns:
        checks = []
        if col.min is not None and col.above_min:
            checks.append(pa.Check.gt(col.min, error=f"must be > {col.min:g}"))
        elif col.min is not None:
            checks.append(pa.Check.ge(col.min, error=f"must be >= {col.min:g}"))
        if col.max is not None:
            checks.append(pa.Check.le(col.max, error=f"must be <= {col.max:g}"))
        if col.categories:
            checks.append(pa.Check.isin(col.categories,
                                        error="allowed: " + ", ".join(col.categories)))
        unique = spec.unique == (col.name,)
        columns[col.name] = pa.Column(_checking_dtype(col), checks, nullable=col.nullable,
                                      unique=unique, report_duplicates="all")
    keys = spec.unique if len(spec.unique) > 1 else None
    return pa.DataFrameSchema(columns, unique=list(keys) if keys else None,
                              report_duplicates="all")


def validate_frame(df: pd.DataFrame, table: str | TableSpec) -> ValidationResult:
    """Coerce `df` to the table's types and check every row; rows are numbered from 1.

    Raises ContractError if required columns are missing (optional status columns may be
    absent); everything else is a per-row rejection.
    """
    spec = _spec(table)
    table = spec.name
    df = df.assign(**{name: pd.Series(np.nan, index=df.index, dtype=object)
                      for name in spec.optional if name not in df.columns})
    cols = spec.columns
    missing = [c.name for c in cols if c.name not in df.columns]
    if missing:
        raise ContractError(f"{table} is missing required column(s): {', '.join(missing)}")
    repeated = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    if repeated:
        raise ContractError(f"{table} has repeated column(s): {', '.join(repeated)}")
    names = [c.name for c in cols]
    extra = [c for c in df.columns if c not in names]
    raw = df.set_axis(pd.RangeIndex(1, len(df) + 1, name="row"))

    coerced, parse_failed = {}, {}
    for col in cols:
        coerced[col.name], parse_failed[col.name] = _coerce(raw[col.name], col)
    typed = pd.DataFrame(coerced, index=raw.index)
    failed = pd.DataFrame(parse_failed, index=raw.index)
    blank = typed.isna().all(axis=1) & ~failed.any(axis=1)

    checked = typed[~blank]
    parts = [
        _blank_rejections(blank),
        _parse_rejections(raw, failed, cols),
        _pandera_rejections(checked, spec, raw, failed),
    ]
    parts += _rule_rejections(_without(checked, parts[-1]), spec, failed)
    rejections = _sorted(pd.concat(parts, ignore_index=True))

    good = typed[~typed.index.isin(rejections["row"])]
    good = pd.concat([_output_types(good, cols), raw.loc[good.index, extra]], axis=1)
    return ValidationResult(table, good, rejections, tuple(str(c) for c in extra))


def load_table(path: str | Path, table: str | TableSpec) -> ValidationResult:
    """Read a CSV (every cell as text, so bad cells become rejections) or Parquet file; validate."""
    path = Path(path)
    suffix = path.suffix.lower()
    _spec(table)  # an unknown table name fails before the file is read
    if suffix not in (".csv", ".parquet"):
        raise ContractError(f"cannot read {path}: expected a .csv or .parquet file")
    try:
        if suffix == ".csv":
            df = _read_csv_text(path)
        else:
            df = pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ContractError(f"cannot read {path}: {exc}") from exc
    return validate_frame(df, table)


def _read_csv_text(path: Path) -> pd.DataFrame:
    """Every cell as text; blank lines kept (and reported) so row numbers match the file.

    The Arrow parser is several times faster than the C one on millions of rows, and strict: a
    line with the wrong number of fields fails the whole file, its message quoting that line.
    """
    return pd.read_csv(path, dtype=str, skip_blank_lines=False, engine="pyarrow")


def load_history(directory: str | Path) -> History:
    """Load projects, snapshots and (optional) resource_usage from `directory` and cross-check them.

    Each table is `<name>.parquet` or `<name>.csv` (Parquet wins if both exist). Snapshot and usage
    rows whose project is unknown or rejected are rejected too, as are snapshots with EV or PV above
    the project's BAC or a status_date before its start_date.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ContractError(f"history folder {directory} does not exist")
    results = {}
    for table in TABLES:
        path = _table_file(directory, table)
        if path is None:
            if table != "resource_usage":
                raise ContractError(f"{directory} has no {table}.parquet or {table}.csv")
            results[table] = validate_frame(pd.DataFrame(columns=_names(table)), table)
        else:
            results[table] = load_table(path, table)

    return cross_checked(results)


def cross_checked(results: dict[str, ValidationResult], notes: list[str] | None = None,
                  columns: dict[str, dict[str, str]] | None = None) -> History:
    """A History from validated tables: snapshot and usage rows whose project is unknown or
    rejected, or that contradict their project, are rejected too. `columns` renames report
    columns per table (canonical name -> the file's own column name)."""
    results = {**{"resource_usage": validate_frame(
        pd.DataFrame(columns=_names("resource_usage")), "resource_usage")}, **results}
    projects = results["projects"].good
    snapshots, snap_rejections = _cross_table(results["snapshots"].good, projects, "snapshots")
    usage, usage_rejections = _cross_table(results["resource_usage"].good, projects,
                                           "resource_usage")
    per_table = {
        "projects": results["projects"].rejections,
        "snapshots": _sorted(pd.concat([results["snapshots"].rejections, snap_rejections])),
        "resource_usage": _sorted(pd.concat([results["resource_usage"].rejections,
                                             usage_rejections])),
    }
    for table, names in (columns or {}).items():
        per_table[table] = per_table[table].assign(
            column=per_table[table]["column"].map(lambda c: names.get(c, c)))
    rejections = pd.concat([r.assign(table=t) for t, r in per_table.items()], ignore_index=True)
    return History(
        projects.reset_index(drop=True),
        snapshots.reset_index(drop=True),
        usage.reset_index(drop=True),
        rejections[["table", *REPORT_COLUMNS]],
        list(notes or []),
    )


def rejection_report_table(rejections: pd.DataFrame, limit: int = 50) -> Table:
    """A rich table of the first `limit` rejections, for the CLI to print."""
    shown = rejections.head(limit)
    n_rows = rejections[["table", "row"]].drop_duplicates() if "table" in rejections else (
        rejections["row"].drop_duplicates())
    report = Table(title=f"{len(rejections)} problem(s) in {len(n_rows)} rejected row(s)")
    columns = [c for c in ("table", *REPORT_COLUMNS) if c in rejections.columns]
    for name in columns:
        report.add_column(name, justify="right" if name == "row" else "left",
                          overflow="fold", max_width=60 if name == "reason" else 30)
    for record in shown[columns].itertuples(index=False):  # at most `limit` rows
        report.add_row(*(str(v) for v in record))
    if len(rejections) > limit:
        report.caption = f"showing the first {limit} of {len(rejections)}; write all to a file"
    return report


def write_rejections(rejections: pd.DataFrame, path: str | Path) -> Path:
    """Write the rejection report as CSV or Parquet (by suffix); returns the path written.

    The report echoes raw cell values, so the CSV form is made formula-safe (`csv_safety`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ContractError(f"cannot write {path}: expected a .csv or .parquet file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        write_csv(rejections, path, index=False)
    else:
        rejections.to_parquet(path, index=False)
    return path


# --- coercion ----------------------------------------------------------------------------------


def _coerce(values: pd.Series, col: Column) -> tuple[pd.Series, pd.Series]:
    """Convert one column to its checking dtype; also return where a present value failed.

    Any dtype a file can carry is handled: a category column is read as its values, text with
    lone surrogates as text, and a dtype that cannot hold the kind (a timestamp where a number
    belongs) fails in every present cell rather than raising.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    is_text = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
    if is_text:
        values = _as_str(values).str.strip().replace("", np.nan)
    present = values.notna()
    if col.kind == "category" or (col.kind == "str" and not is_text):
        parsed = category_labels(values).astype("str")  # 4.0 (Parquet) and "4.0" are "4"
    elif col.kind == "str":
        parsed = _as_str(values)
    elif col.kind == "date":
        parsed = _to_dates(values, is_text)
    elif col.kind == "bool":
        parsed = yes_no(values)
    elif not (is_text or pd.api.types.is_bool_dtype(values.dtype)
              or pd.api.types.is_float_dtype(values.dtype)
              or pd.api.types.is_integer_dtype(values.dtype)):
        parsed = pd.Series(pd.NA, index=values.index, dtype="Int64" if col.kind == "int"
                           else "Float64")
    else:
        numbers = _to_numbers(values) if is_text else values.astype("Float64")
        finite = numbers.notna() & np.isfinite(numbers.fillna(0).to_numpy(dtype=float))
        if col.kind == "int":  # whole numbers among the finite ones (inf % 1 is no number)
            finite &= (numbers.where(finite, 0) % 1 == 0).to_numpy(dtype=bool, na_value=False)
        parsed = numbers.where(finite, pd.NA)
        if col.kind == "int":
            parsed = parsed.astype("Int64")
    return parsed, present & parsed.isna()


def _as_str(values: pd.Series) -> pd.Series:
    """Values as text; a lone surrogate (valid JSON, not valid UTF-8) becomes U+FFFD."""
    try:
        return values.astype("str")
    except UnicodeEncodeError:
        return values.map(lambda v: v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
                          if isinstance(v, str) else v).astype("str")


def _to_numbers(text: pd.Series) -> pd.Series:
    """Text to Float64; unparseable cells become NA (found later as present-but-missing)."""
    try:
        return text.astype("Float64")  # fast path: one Arrow cast when every cell parses
    except (ValueError, TypeError):
        return pd.to_numeric(text, errors="coerce").astype("Float64")


_YES = {"true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "1": 1.0,
        "false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0, "0": 0.0}


def yes_no(values: pd.Series) -> pd.Series:
    """A yes/no column as Float64 1 / 0 (true/false, yes/no, y/n, t/f, 1/0 in any case, or
    the numbers 0 and 1); NA where missing or anything else."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("Float64")
        return numbers.where(numbers.isin([0.0, 1.0]), pd.NA)
    text = values.astype("str").str.strip().str.lower().str.replace(r"\.0+$", "", regex=True)
    return text.where(values.notna()).map(_YES).astype("Float64")


def _to_dates(values: pd.Series, is_text: bool) -> pd.Series:
    """Dates as datetime64[ns]; text must be ISO; years outside 1678-2261 (ns range) fail too."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        dates = values.dt.tz_convert(None) if getattr(values.dtype, "tz", None) else values
    elif is_text:
        # ISO8601 parsing also accepts "2021" or "2021-03"; a full date has >= 10 characters.
        full_date = (values.str.len() >= len("YYYY-MM-DD")).fillna(False).astype(bool)
        dates = pd.to_datetime(values.where(full_date), format="ISO8601", errors="coerce")
    else:  # numbers are not dates: every present value fails
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    in_range = (dates >= pd.Timestamp.min) & (dates <= pd.Timestamp.max)
    return dates.where(in_range).astype("datetime64[ns]")


def _checking_dtype(col: Column) -> str:
    return {"str": "str", "category": "str", "date": "datetime64[ns]", "int": "Int64",
            "float": "Float64", "bool": "Float64"}[col.kind]


def _output_types(good: pd.DataFrame, cols: tuple[Column, ...]) -> pd.DataFrame:
    dtypes = {}
    for col in cols:
        if col.kind == "int":
            dtypes[col.name] = "Int64" if col.nullable else "int64"
        elif col.kind in ("float", "bool"):  # a yes/no column is 1.0 / 0.0
            dtypes[col.name] = "Float64" if col.nullable else "float64"
    return good.astype(dtypes)


# --- per-row problems --------------------------------------------------------------------------


def _blank_rejections(blank: pd.Series) -> pd.DataFrame:
    rows = blank.index[blank]
    return _report(rows, "", "", "empty row")


def _parse_rejections(raw: pd.DataFrame, failed: pd.DataFrame, cols) -> pd.DataFrame:
    parts = []
    for col in cols:
        rows = failed.index[failed[col.name].to_numpy()]
        if len(rows) == 0:
            continue
        reason = {"date": "not a date (expected YYYY-MM-DD)", "int": "not a whole number",
                  "float": "not a number", "bool": "not a yes/no value"}[col.kind]
        parts.append(_report(rows, col.name, _text(raw.loc[rows, col.name]), reason))
    return pd.concat(parts) if parts else _report([], "", "", "")


def _pandera_rejections(typed: pd.DataFrame, spec: TableSpec, raw: pd.DataFrame,
                        failed: pd.DataFrame) -> pd.DataFrame:
    """Run the table's schema and phrase its failure cases as report rows."""
    try:
        contract_schema(spec).validate(typed, lazy=True)
        return _report([], "", "", "")
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    cases = cases[cases["index"].notna() & cases["column"].notna()]
    key = spec.unique[-1] if len(spec.unique) > 1 else ""
    # Multi-column uniqueness lists every key column; one report line (on the last key) is enough.
    cases = cases[(cases["check"] != "multiple_fields_uniqueness") | (cases["column"] == key)]
    parts = []
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = pd.Index(group["index"].astype("int64"))
        rows = rows[~failed.loc[rows, column].to_numpy()]  # parse failures are reported already
        value = _text(raw.loc[rows, column])
        parts.append(_report(rows, column, value, _phrase(spec, column, check, value, rows)))
    return pd.concat(parts) if parts else _report([], "", "", "")


def _phrase(spec: TableSpec, column: str, check: str, value: pd.Series, rows: pd.Index):
    """Turn one pandera check name (our `error` text or a built-in name) into reasons."""
    if check == "not_nullable":
        return "required value is missing"
    if check.startswith("must be"):
        return column + " " + check + ", got " + value
    if check.startswith("allowed:"):
        return "unknown " + column + " '" + value + "'; " + check
    if check == "field_uniqueness":
        by_value = pd.Series(rows, index=rows).groupby(value.to_numpy())
        first = by_value.transform("min").astype(str).to_numpy()
        count = by_value.transform("size").astype(str).to_numpy()
        return ("duplicate " + column + " '" + value + "': on " + count + " rows (first row "
                + first + "); every copy is rejected")
    if check == "multiple_fields_uniqueness":
        keys = " and ".join(spec.unique)
        return f"duplicate row: another row has the same {keys}; every copy is rejected"
    return f"{column} fails check {check}"


def _without(typed: pd.DataFrame, rejected: pd.DataFrame) -> pd.DataFrame:
    """`typed` with the cells that failed a single-column check blanked, so the multi-column
    rules judge only valid values (a BAC of -5 is reported once, not again against EV)."""
    out = typed.copy()
    for column, rows in rejected.groupby("column")["row"]:
        if column in out.columns:
            out.loc[out.index.intersection(rows), column] = None
    return out


def _rule_rejections(typed: pd.DataFrame, spec: TableSpec,
                     failed: pd.DataFrame) -> list[pd.DataFrame]:
    """The multi-column rules (`opm_ml.rules`) on the rows that parsed, as report rows."""
    if typed.empty:
        return []
    columns = _arrays(typed)
    found = [rules.profile_findings(columns, spec.rules)]
    if spec.status:
        status_cells = typed[list(spec.status)].notna() | failed.loc[typed.index, list(spec.status)]
        found.append(_partial_status(status_cells, spec.status))
        complete = status_cells.all(axis=1).to_numpy()
        if "start_date" in columns and "status_date" in columns:
            found.append(rules.status_findings(columns, complete))
    if spec.outcomes:
        if "actual_finish_date" in columns and "start_date" in columns:
            found.append(rules.finish_findings(columns))
        # A cell that failed to parse was given, so it counts as present here.
        present = typed[list(spec.outcomes)].notna() | failed.loc[typed.index,
                                                                   list(spec.outcomes)]
        found.append(rules.outcome_findings(present, spec.outcomes_text))
    return [_as_report(f, typed.index) for f in found]


def _partial_status(present: pd.DataFrame, status: tuple[str, ...]) -> rules.Findings:
    """Rows that give some of the status columns but not all the required ones."""
    given = present.any(axis=1).to_numpy()
    parts = []
    for name in status:
        rows = np.flatnonzero(given & ~present[name].to_numpy(dtype=bool))
        parts.append(rules.finding(rows, name, "", "partial status snapshot: a status report "
                                   "needs " + ", ".join(status), "partial_status", status=True))
    return rules.Findings.of(parts)


def _as_report(findings: rules.Findings, index: pd.Index) -> pd.DataFrame:
    """Findings (positions into the checked rows) as report rows (row numbers of the file)."""
    frame = findings.frame
    if frame.empty:
        return frame.iloc[:0, :0]
    rows = index.to_numpy()[frame["position"].to_numpy(dtype=np.int64)]
    return pd.DataFrame({
        "row": rows.astype("int64"), "column": frame["column"].astype(str).to_numpy(),
        "value": frame["value"].astype(str).to_numpy(),
        "reason": frame["reason"].astype(str).to_numpy()})


def _arrays(typed: pd.DataFrame) -> dict[str, np.ndarray]:
    """Typed columns as the arrays `opm_ml.rules` reads (numbers float, dates datetime64)."""
    out = {}
    for name in typed.columns:
        values = typed[name]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            out[name] = values.to_numpy().astype("datetime64[D]")
        elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
                values.dtype):
            out[name] = values.to_numpy(dtype=float, na_value=np.nan)
    return out


# --- cross-table problems ----------------------------------------------------------------------


def _cross_table(good: pd.DataFrame, projects: pd.DataFrame,
                 table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reject rows of `table` whose project is unknown/rejected or that contradict the project."""
    # One hash lookup gives each row its project's position (-1 = unknown or rejected).
    position = pd.Index(projects["project_id"]).get_indexer(good["project_id"])
    unknown = position < 0
    parts = [_report(good.index[unknown], "project_id", _text(good["project_id"][unknown]),
                     "unknown project_id (or the project was rejected)")]
    if table == "snapshots" and (~unknown).any():
        linked = good[~unknown]
        at = position[~unknown]
        columns = _arrays(linked)
        for name in ("start_date", "budget_at_completion", "planned_duration_days"):
            if name in projects.columns:
                columns[name] = _arrays(projects[[name]])[name][at]
        found = [rules.status_findings(columns, np.ones(len(linked), dtype=bool))]
        if "pv" in columns and "budget_at_completion" in columns:
            found.append(rules.pv_series_findings(at, columns["status_date"], columns["pv"],
                                                  columns["budget_at_completion"]))
        parts += [_as_report(f, linked.index) for f in found]
    rejections = _sorted(pd.concat(parts, ignore_index=True))
    return good[~good.index.isin(rejections["row"])], rejections


# --- helpers -----------------------------------------------------------------------------------


def _spec(table: str | TableSpec) -> TableSpec:
    return table if isinstance(table, TableSpec) else contract_table(table)


def _names(table: str) -> list[str]:
    return [c.name for c in _spec(table).columns]


def _table_file(directory: Path, table: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        if (directory / f"{table}{suffix}").is_file():
            return directory / f"{table}{suffix}"
    return None


def _text(values: pd.Series) -> pd.Series:
    """Cells as report text: dates as YYYY-MM-DD, numbers without a trailing `.0`, missing as ''."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        has_time = (values.dropna() != values.dropna().dt.normalize()).any()
        text = values.dt.strftime("%Y-%m-%d %H:%M:%S" if has_time else "%Y-%m-%d")
    elif pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype):
        text = values.astype("float64").map(_number, na_action="ignore")
    else:
        text = _as_str(values)
    return text.fillna("").astype("str")


def _number(x: float) -> str:
    return np.format_float_positional(x, trim="-") if np.isfinite(x) else str(x)


def _report(rows, column, value, reason) -> pd.DataFrame:
    rows = np.asarray(rows, dtype="int64")
    n = len(rows)

    def texts(v) -> np.ndarray:
        # Series arguments hold one value per entry of `rows`, in that order; scalars broadcast.
        if isinstance(v, pd.Series):
            return np.asarray(v, dtype=object).astype(str).astype(object)
        return np.full(n, str(v), dtype=object)

    return pd.DataFrame({"row": rows, "column": texts(column), "value": texts(value),
                         "reason": texts(reason)})


def _sorted(rejections: pd.DataFrame) -> pd.DataFrame:
    return rejections.sort_values("row", kind="stable").reset_index(drop=True)
