"""Draft a profile from an export: column types, category levels, missing shares, likely roles,
repeated status reports, and a warning for every column that looks like a leak of a target.

`infer_profile(path)` returns a `Draft` (the summary rows, the warnings and the TOML text). The
draft is a starting point the user edits: roles are guessed from column names and values, and a
column that is known only after completion (its name says actual, final, performance ...) or
that nearly equals an outcome is marked `stage = "outcome"`, which keeps it out of the models.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y", "%m/%d/%Y %I:%M:%S %p",
                "%d-%b-%y", "%d-%b-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y")
# The roles that decide which families can train (either of a pair will do).
_MONEY_AND_TIME_ROLES = (("budget_at_completion",), ("actual_cost",), ("planned_effort_hours",),
                         ("actual_effort_hours",),
                         ("planned_duration_days", "planned_finish_date"),
                         ("actual_duration_days", "actual_finish_date"))
# Role -> (required kind, name pattern); the first unused column matching takes the role.
ROLE_PATTERNS = (
    ("project_id", "id", r"^(project|task|pid|id|key|number|code)[\W_]*(id|no|number|code|key)?$"),
    ("status_date", "date", r"(report|status|as[\W_]?of|snapshot)"),
    ("planned_finish_date", "date",
     r"(estimat|plan|baseline|target|forecast|scheduled).*(finish|end|complet|close|due)"),
    ("actual_finish_date", "date",
     r"(actual|real).*(finish|end|complet|close)|^(completed|finished|closed|ended)( on| date)?$"),
    ("start_date", "date", r"(start|begin|commenc|estimate[\W_]?on|kick)"),
    ("planned_duration_days", "number", r"(plan|estimat|baseline).*(duration|length|days)"),
    ("actual_duration_days", "number", r"(actual.*(duration|length|days)|^duration$)"),
    ("budget_at_completion", "number", r"(budget|bac|planned[\W_]?cost|estimated[\W_]?cost)"),
    ("actual_cost", "number", r"(actual|final)[\W_]?(cost|spend)|^cost$|spent"),
    ("planned_effort_hours", "number",
     r"(estimat|plan|first|budget).*(effort|hours|hrs|estimate)|^estimate$|hours[\W_]?estimate"),
    ("actual_effort_hours", "number",
     r"(actual|real|final).*(effort|hours|hrs)|(effort|hours|hrs).*(actual|spent)|^effort$"),
    ("pv", "number", r"^(pv|planned[\W_]?value|bcws)$"),
    ("ev", "number", r"^(ev|earned[\W_]?value|bcwp)$"),
    ("ac", "number", r"^(ac|actual[\W_]?cost[\W_]?to[\W_]?date|acwp)$"),
    ("percent_complete", "number", r"(percent|pct|%).*(complete|done)|progress"),
)
# Words that say a column is known only once the work is done.
LEAK_WORDS = re.compile(r"(actual|final|real|complet|closed|outcome|spent|performance|variance|"
                        r"overrun|slip|delay|status|total[\W_]?(budget|schedule)[\W_]?chang)",
                        re.I)
# Integer columns that name people, teams or codes are categories, not quantities.
ID_WORDS = re.compile(r"(^|\s)(id|code|no|number|key)$")
OUTCOME_ROLES = ("actual_finish_date", "actual_duration_days", "actual_cost", "actual_effort_hours")
MAX_LEVELS = 50


@dataclass
class ColumnSummary:
    """What inference saw in one column."""

    column: str
    kind: str  # number, integer, date, boolean, category, text
    missing_share: float
    distinct: int
    detail: str = ""  # date format, top levels, range
    role: str = ""
    stage: str = "intake"
    warning: str = ""


@dataclass
class Draft:
    """A drafted profile: per-column summaries, read options, warnings and the TOML text."""

    name: str
    columns: list[ColumnSummary]
    read: dict
    warnings: list[str] = field(default_factory=list)
    derived: list[tuple[str, str]] = field(default_factory=list)
    anchors: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    toml: str = ""


def infer_profile(path: str | Path, snapshots: str | Path | None = None,
                  name: str | None = None) -> Draft:
    """Draft a profile for `path` (CSV, Parquet or ARFF); see the module docstring."""
    path = Path(path)
    frame, read = read_any(path)
    columns = [summarise(frame[c], c) for c in frame.columns]
    _assign_roles(columns, frame)
    reports = _reports(frame, columns)
    derived, anchors = _derived(columns)
    if reports:
        read["reports"] = {"date": reports}
        more, anchors = _report_forecasts(frame, columns)
        columns += more
        derived += [d for d in _forecast_ratios(more) if d not in derived]
    snapshot_columns: list[ColumnSummary] = []
    if snapshots is not None:
        snap_frame, _ = read_any(Path(snapshots))
        snapshot_columns = [summarise(snap_frame[c], c) for c in snap_frame.columns
                            if c not in frame.columns or c == _role_column(columns, "project_id")]
        for c in snapshot_columns:
            c.stage = "snapshot"
        _assign_roles(snapshot_columns, snap_frame, snapshot=True)
    warnings = _leaks(columns, frame)
    name = name or re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "profile"
    if not name[0].isalpha():
        name = "p_" + name
    draft = Draft(name, columns + snapshot_columns, read, warnings, derived=derived,
                  anchors=anchors, reference=_reference(columns))
    draft.toml = to_toml(draft, path)
    return draft


# Planned role -> (the outcome role the last report gives, name of its re-forecast feature).
REFORECASTS = {"planned_finish_date": ("actual_finish_date", "finish_forecast", "delay"),
               "budget_at_completion": ("actual_cost", "cost_forecast", "overrun"),
               "planned_effort_hours": ("actual_effort_hours", "effort_forecast", "resource")}


def _report_forecasts(frame: pd.DataFrame, columns: list[ColumnSummary]):
    """With repeated reports, a planned column that changes over a project's reports is its
    re-forecast: the last report's value is the outcome, a report's value a snapshot feature
    (and, as a ratio to plan, the family's in-flight anchor)."""
    key = _role_column(columns, "project_id")
    extra, anchors = [], {}
    for c in list(columns):
        if c.role not in REFORECASTS:
            continue
        actual, feature, family = REFORECASTS[c.role]
        if frame.groupby(key)[c.column].nunique().max() <= 1:
            continue
        if _role_column(columns, actual) is None:
            extra.append(ColumnSummary(c.column, c.kind, c.missing_share, c.distinct, c.detail,
                                       role=actual, stage="outcome"))
        extra.append(ColumnSummary(c.column, c.kind, c.missing_share, c.distinct, c.detail,
                                   stage="snapshot", warning=f"name:{feature}"))
        anchors[family] = f"{feature}_ratio"
    return extra, anchors


def _forecast_ratios(extra: list[ColumnSummary]) -> list[tuple[str, str]]:
    out = []
    for c in extra:
        if not c.warning.startswith("name:"):
            continue
        feature = c.warning[len("name:"):]
        if feature == "finish_forecast":
            out.append((f"{feature}_ratio", "(finish_forecast - start_date) / planned_duration_days"))
        elif feature == "cost_forecast":
            out.append((f"{feature}_ratio", "cost_forecast / budget_at_completion"))
        else:
            out.append((f"{feature}_ratio", "effort_forecast / planned_effort_hours"))
    return out


def _derived(columns: list[ColumnSummary]) -> tuple[list[tuple[str, str]], dict]:
    """Scale-free features every profile benefits from, where its roles allow them."""
    roles = {c.role for c in columns}
    duration = "planned_duration_days" if roles & {"planned_duration_days",
                                                   "planned_finish_date"} else None
    out = []
    for role, name in (("budget_at_completion", "log_budget"),
                       ("planned_effort_hours", "log_planned_effort")):
        if role in roles:
            out.append((name, f"log({role})"))
    if duration:
        out.append(("log_planned_duration", f"log({duration})"))
    if duration and "planned_effort_hours" in roles:
        out.append(("hours_per_day", "planned_effort_hours / planned_duration_days"))
    if "budget_at_completion" in roles and "planned_effort_hours" in roles:
        out.append(("cost_per_hour", "budget_at_completion / planned_effort_hours"))
    if "start_date" in roles:
        out += [("start_year", "year(start_date)"), ("start_month", "month(start_date)")]
    return out, {}


def _reference(columns: list[ColumnSummary]) -> str | None:
    """The category with 2-30 levels and the fewest gaps: the reference class."""
    options = [c for c in columns if c.kind == "category" and c.stage == "intake"
               and not c.role and 2 <= c.distinct <= 30]
    best = min(options, key=lambda c: (c.missing_share, c.distinct), default=None)
    return None if best is None else _key(best.column)


def read_any(path: Path) -> tuple[pd.DataFrame, dict]:
    """The file as text cells (CSV: separator, decimal mark and encoding detected)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path), {"format": "parquet"}
    if suffix == ".arff":
        from opm_ml.real_data._io import read_arff

        return read_arff(path), {"format": "arff"}
    raw = path.read_bytes()[:200_000]
    encoding = "utf-8"
    try:
        sample = raw.decode("utf-8")
    except UnicodeDecodeError:
        encoding, sample = "cp1252", raw.decode("cp1252")
    try:
        separator = csv.Sniffer().sniff(sample.split("\n", 20)[0] + "\n", ";,\t|").delimiter
    except csv.Error:
        separator = ","
    frame = pd.read_csv(path, sep=separator, dtype=str, encoding=encoding)
    read = {"format": "csv", "separator": separator, "encoding": encoding}
    cells = frame.stack().astype(str)
    if separator == ";" and cells.str.fullmatch(r"-?\d{1,3}(\.\d{3})*,\d+|-?\d+,\d+").mean() > 0.05:
        read.update(decimal=",", thousands=".")  # European numbers
    return frame, read


def summarise(values: pd.Series, name: str) -> ColumnSummary:
    """Type, missing share, distinct values and a short detail of one column."""
    present = values.dropna()
    text = present.astype(str).str.strip()
    text = text[text != ""]
    missing = 1 - len(text) / max(len(values), 1)
    distinct = int(text.nunique())
    summary = ColumnSummary(name, "text", round(missing, 3), distinct)
    if not len(text):
        summary.detail = "empty"
        return summary
    numbers = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce") \
        if not pd.api.types.is_numeric_dtype(values) else present.astype(float)
    lower = set(text.str.lower().unique())
    if lower <= {"yes", "no", "true", "false", "y", "n", "0", "1", "t", "f"} and distinct == 2:
        summary.kind, summary.detail = "boolean", "/".join(sorted(lower))
    elif numbers.notna().mean() >= 0.95:
        integral = bool((numbers.dropna() % 1 == 0).all())
        summary.kind = "integer" if integral else "number"
        summary.detail = f"{numbers.min():g} .. {numbers.max():g}"
        coded = ID_WORDS.search(_words(name)) and distinct <= 0.5 * len(text)
        if integral and (coded or (distinct <= 12 and numbers.max() < 100)):
            summary.kind, summary.detail = "category", _levels(text)
    elif (fmt := date_format(text)) is not None:
        summary.kind, summary.detail = "date", fmt
    elif distinct <= max(MAX_LEVELS, 0) and distinct <= 0.5 * len(text):
        summary.kind, summary.detail = "category", _levels(text)
    return summary


def date_format(text: pd.Series) -> str | None:
    """The first of DATE_FORMATS that parses at least 95 % of the values (a sample)."""
    sample = text.head(500)
    for fmt in DATE_FORMATS:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean() >= 0.95:
            return fmt
    return None


def _levels(text: pd.Series) -> str:
    counts = text.value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in counts.head(6).items())
    return shown + (f", ... {len(counts)} levels" if len(counts) > 6 else "")


def _assign_roles(columns: list[ColumnSummary], frame: pd.DataFrame,
                  snapshot: bool = False) -> None:
    used: set[str] = set()
    for role, kind, pattern in ROLE_PATTERNS:
        if snapshot != (role in ("status_date", "pv", "ev", "ac", "percent_complete")) and \
                role != "project_id":
            continue
        for c in columns:
            if c.role or c.column in used or not re.search(pattern, _words(c.column)):
                continue
            if kind == "date" and c.kind != "date":
                continue
            if kind == "number" and c.kind not in ("number", "integer"):
                continue
            if kind == "id" and c.kind == "date":
                continue
            c.role, c.stage = role, "id" if role == "project_id" else c.stage
            used.add(c.column)
            break


def _words(column: str) -> str:
    """A column name in lower-case words: `Actual.start.date` -> `actual start date`."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", column)
    return re.sub(r"[\W_]+", " ", spaced).strip().lower()


def _role_column(columns: list[ColumnSummary], role: str) -> str | None:
    return next((c.column for c in columns if c.role == role), None)


def _reports(frame: pd.DataFrame, columns: list[ColumnSummary]) -> str | None:
    """The report-date column when the id repeats over dates (repeated status reports)."""
    key = _role_column(columns, "project_id")
    if key is None or frame[key].nunique() == len(frame):
        return None
    dates = [c for c in columns if c.kind == "date" and c.role in ("status_date", "")]
    for c in sorted(dates, key=lambda c: c.role != "status_date"):
        per_project = frame.groupby(key)[c.column].nunique()
        if (per_project > 1).mean() > 0.3:
            c.role = "status_date"
            return c.column
    return None


def _leaks(columns: list[ColumnSummary], frame: pd.DataFrame) -> list[str]:
    """Mark and explain columns that look like they leak an outcome."""
    warnings = []
    outcomes = [c.column for c in columns if c.role in OUTCOME_ROLES]
    for c in columns:
        if c.role or c.kind == "text" or c.stage == "snapshot":
            continue
        reason = ""
        if LEAK_WORDS.search(_words(c.column)):
            reason = "its name says it is known only after completion"
        elif c.kind in ("number", "integer") and outcomes:
            mine = pd.to_numeric(frame[c.column], errors="coerce")
            for outcome in outcomes:
                theirs = pd.to_numeric(frame[outcome], errors="coerce")
                both = mine.notna() & theirs.notna()
                # Ranks almost identical: the same quantity (size only correlates with effort).
                if both.sum() > 10 and abs(mine[both].corr(theirs[both], "spearman")) > 0.98:
                    reason = f"it nearly equals {outcome} (rank correlation > 0.98)"
                    break
        if reason:
            c.stage, c.warning = "outcome", f"possible leak: {reason}"
            warnings.append(f"{c.column}: possible leak of a target: {reason}; drafted as "
                            "stage = \"outcome\" (kept out of the models)")
    return warnings


def to_toml(draft: Draft, path: Path) -> str:
    """The draft as a commented profile file."""
    lines = [f"# Drafted by `opm-ml data profile infer {path.name}`: check every role and stage,",
             "# then `opm-ml data validate --profile <this file> " + path.name + "`.",
             f'name = "{draft.name}"', 'version = "1"',
             f'description = "{path.name}: {len(draft.columns)} columns"', "", "[read]"]
    read = dict(draft.read)
    reports = read.pop("reports", None)
    lines += [f"{k} = {_value(v)}" for k, v in read.items()]
    formats = {c.column: c.detail for c in draft.columns if c.kind == "date"
               and c.detail != "%Y-%m-%d"}
    if formats:
        lines.append("date_formats = { " + ", ".join(f"{_value(k)} = {_value(v)}"
                                                      for k, v in formats.items()) + " }")
    if reports:
        lines += ["", "# The export repeats each project's status report: the first report is",
                  "# the plan, the last the outcome, the ones between are snapshots.",
                  "[read.reports]", f"date = {_value(reports['date'])}"]
    lines += ["", "[roles]"]
    lines += [f"{c.role} = {_value(c.column)}" for c in draft.columns if c.role]
    mapped = {c.role for c in draft.columns if c.role}
    unmapped = [" / ".join(pair) for pair in _MONEY_AND_TIME_ROLES
                if not mapped.intersection(pair)]
    if unmapped:
        lines.append(f"# Not found: {', '.join(unmapped)}. Map what the export has.")
    lines.append("# [units] converts durations (days, weeks, months, years) and effort (hours, "
                 "person_days, person_months).")
    seen: set[str] = set()
    for c in draft.columns:
        if c.role or c.kind == "text" or c.detail == "empty":
            continue
        named = c.warning.startswith("name:")
        key = c.warning[len("name:"):] if named else _key(c.column)
        while key in seen:
            key += "_2"
        seen.add(key)
        if c.warning and not named:
            lines += ["", f"# {c.warning}"]
        else:
            lines.append("")
        lines += [f"[features.{key}]", f"column = {_value(c.column)}",
                  f'type = "{c.kind}"', f'stage = "{c.stage}"',
                  f"# {c.missing_share:.0%} missing; {c.detail}"]
    if draft.derived:
        lines += ["", "[derived]"] + [f"{k} = {_value(v)}" for k, v in draft.derived]
    if draft.reference or draft.anchors:
        lines += ["", "[model]"]
        if draft.reference:
            lines.append(f"reference_class = {_value(draft.reference)}")
        if draft.anchors:
            lines.append("anchors = { " + ", ".join(f"{k} = {_value(v)}"
                                                    for k, v in draft.anchors.items()) + " }")
    return "\n".join(lines) + "\n"


def _key(column: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", _words(column)).strip("_") or "column"
    return key if key[0].isalpha() else "f_" + key


def _value(value) -> str:
    """A TOML value: JSON's string and number syntax is TOML's too."""
    import json

    return json.dumps(value)
