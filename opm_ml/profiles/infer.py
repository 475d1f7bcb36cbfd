"""Draft a profile from an export: column types, category levels, missing shares, likely roles,
units, repeated status reports, and a warning for every column that looks like a leak.

`infer_profile(path)` returns a `Draft` (the summary rows, the warnings and the TOML text,
written by `draft.to_toml`). The draft is a starting point the user edits: types come from
`sniff`, roles are guessed from column names and values, units from the names (`..._months`,
`person-days` ...), and a column known only after completion (its name says actual, final,
performance ..., or is that of a target such as `late`) or that nearly equals an outcome is
marked `stage = "outcome"`, which keeps it out of the models. Every guess it could not make
(an ambiguous date format, a snapshots file whose id column is named otherwise) is a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from opm_ml.forecasting.families import FAMILIES
from opm_ml.profiles.draft import Draft, to_toml
from opm_ml.profiles.sniff import ColumnSummary, numbers, read_any, summarise, words

SNAPSHOT_ROLES = ("status_date", "pv", "ev", "ac", "percent_complete")
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
# A column named like a training target is one (or its cousin): never a feature.
TARGET_NAMES = {"late", "delayed", "overrun", *(f.target for f in FAMILIES.values()),
                *(f.actual for f in FAMILIES.values())}
OUTCOME_ROLES = ("actual_finish_date", "actual_duration_days", "actual_cost", "actual_effort_hours")
# Unit words in a column name -> the unit of a duration or an effort role.
DURATION_UNITS = (("weeks", r"\bweeks?\b|\bwks?\b"), ("months", r"\bmonths?\b|\bmths?\b"),
                  ("years", r"\byears?\b|\byrs?\b"), ("days", r"\bdays?\b"))
EFFORT_UNITS = (("person_months", r"\b(person|man|staff)\s?months?\b|\bp ?m\b|\bmm\b"),
                ("person_days", r"\b(person|man|staff)\s?days?\b|\bp ?d\b|\bmd\b"),
                ("person_years", r"\b(person|man|staff)\s?years?\b|\bp ?y\b"),
                ("hours", r"\bhours?\b|\bhrs?\b|\bh\b"))


def infer_profile(path: str | Path, snapshots: str | Path | None = None,
                  name: str | None = None) -> Draft:
    """Draft a profile for `path` (CSV, Parquet or ARFF); see the module docstring."""
    path = Path(path)
    frame, read, warnings = read_any(path)
    columns = [summarise(frame[c], c, read) for c in frame.columns]
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
        snapshot_columns, more = _snapshot_columns(Path(snapshots), frame, columns, read)
        warnings += more
    _decide_date_order(columns + snapshot_columns)
    warnings += [f"{c.column}: {c.warning}" for c in columns + snapshot_columns
                 if c.warning and not c.warning.startswith("name:")]
    warnings += _leaks(columns, frame, read)
    warnings += _repeated_ids(frame, columns, reports)
    name = name or re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "profile"
    if not name[0].isalpha():
        name = "p_" + name
    draft = Draft(name, columns + snapshot_columns, read, warnings, derived=derived,
                  anchors=anchors, reference=_reference(columns),
                  units=_units(columns + snapshot_columns))
    draft.toml = to_toml(draft, path, snapshots)
    return draft


def _repeated_ids(frame: pd.DataFrame, columns: list[ColumnSummary],
                  reports: str | None) -> list[str]:
    """A warning when the id column repeats and no report date says why: `data validate`
    would reject every repeat row by row."""
    key = _role_column(columns, "project_id")
    if key is None or reports:
        return []
    ids = frame[key].dropna()
    repeats = int(ids.duplicated().sum())
    if not repeats:
        return []
    return [f"{key}: {repeats:,} of {len(ids):,} rows repeat an earlier row's id; validation "
            f"rejects them: add read.deduplicate = {key!r} to keep each id's first row, or map "
            "the id column that is unique"]


def _snapshot_columns(path: Path, frame: pd.DataFrame, columns: list[ColumnSummary],
                      read: dict) -> tuple[list[ColumnSummary], list[str]]:
    """The status columns of a snapshots file (those the projects file lacks), with roles."""
    snap_frame, snap_read, _ = read_any(path)
    key = _role_column(columns, "project_id")
    warnings = []
    if key is not None and key not in snap_frame.columns:
        warnings.append(f"{path.name}: has no column {key!r}, the project id of the projects "
                        "file: rename its project id column to it (one profile names one id "
                        "column for both files)")
    differ = {k: v for k, v in snap_read.items() if read.get(k) != v}
    if differ:
        warnings.append(f"{path.name}: is read with {differ}, unlike the projects file; the "
                        "profile reads both files alike: save them in one format")
    out = [summarise(snap_frame[c], c, read) for c in snap_frame.columns
           if c not in frame.columns]
    for c in out:
        c.stage = "snapshot"
    _assign_roles(out, snap_frame, snapshot=True)
    return out, warnings


def _decide_date_order(columns: list[ColumnSummary]) -> None:
    """An ambiguous date column takes the order (day- or month-first) another date column
    of the file shows unambiguously."""
    decided = {c.formats[0] for c in columns if c.kind == "date" and len(c.formats) == 1}
    for c in columns:
        known = [f for f in c.formats if f in decided] if len(c.formats) > 1 else []
        if len(known) == 1:
            c.formats, c.detail = (known[0],), f"{known[0]} (as the file's other date columns)"
            c.warning = ""


def _units(columns: list[ColumnSummary]) -> dict[str, str]:
    """Role -> the unit its column's name says (only duration and effort roles)."""
    out = {}
    for c in columns:
        table = DURATION_UNITS if c.role in ("planned_duration_days", "actual_duration_days") \
            else EFFORT_UNITS if c.role in ("planned_effort_hours", "actual_effort_hours") else ()
        unit = next((u for u, pattern in table if re.search(pattern, words(c.column))), None)
        if unit:
            out[c.role] = unit
    return out


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
    return None if best is None else best.column


def _assign_roles(columns: list[ColumnSummary], frame: pd.DataFrame,
                  snapshot: bool = False) -> None:
    used: set[str] = set()
    for role, kind, pattern in ROLE_PATTERNS:
        if snapshot != (role in SNAPSHOT_ROLES):
            continue
        for c in columns:
            if c.role or c.column in used or not re.search(pattern, words(c.column)):
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


def _leaks(columns: list[ColumnSummary], frame: pd.DataFrame, read: dict) -> list[str]:
    """Mark and explain columns that look like they leak an outcome."""
    warnings = []
    outcomes = [c.column for c in columns if c.role in OUTCOME_ROLES]
    for c in columns:
        if c.role or c.kind == "text" or c.stage == "snapshot":
            continue
        reason = ""
        key = re.sub(r"\s+", "_", words(c.column))
        if key in TARGET_NAMES:
            reason = f"it is named like a target ({key}): the outcome itself, or set from it"
        elif LEAK_WORDS.search(words(c.column)):
            reason = "its name says it is known only after completion"
        elif c.kind in ("number", "integer") and outcomes:
            mine = _numbers(frame[c.column], read)
            for outcome in outcomes:
                theirs = _numbers(frame[outcome], read)
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


def _numbers(values: pd.Series, read: dict) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    return numbers(values.astype("str").str.strip(), read)
