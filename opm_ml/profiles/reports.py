"""Which rows have an outcome: the `finished` rule, and repeated status reports.

Without reports, a row whose `[read] finished` column holds none of the finished values is in
flight: its outcome cells are blanked before parsing. With `[read.reports]` (one row per
project per reporting period) the first report is the plan; each outcome role takes the last
non-empty value any later report gives (exports often end a project with a blank report);
`finished`, if declared, is judged on the project's last report; the reports between the plan
and the one that gave the outcome are the snapshots. Nothing of the plan or the snapshots is
ever blanked, and every project left without an outcome is counted in a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opm_ml.profiles.profile import Profile, ProfileError
from opm_ml.profiles.roles import ALTERNATIVES, ROLES
from opm_ml.profiles.source import SOURCE_ROW

LAST = " [last report]"  # suffix of a plan row's column holding an outcome's last report


def outcome_columns(profile: Profile) -> list[str]:
    """The source columns of the outcome roles (and the actual effort by role)."""
    columns = [c for r, c in profile.roles.items()
               if ROLES[ALTERNATIVES.get(r, r)].stage == "outcome"]
    return list(dict.fromkeys([*columns, *profile.role_efforts.values()]))


def blank_unfinished(raw: pd.DataFrame, profile: Profile) -> tuple[pd.DataFrame, list[str]]:
    """Without reports: the outcome cells of rows the `finished` rule calls open, blanked
    (no column is shared between an outcome and anything else then)."""
    rule = profile.read.get("finished")
    if not rule:
        return raw, []
    done = _text(raw[rule["column"]]).isin(rule["values"])
    raw = raw.copy()
    raw.loc[~done, outcome_columns(profile)] = np.nan
    n = int((~done).sum())
    return raw, [f"{n:,} of {len(raw):,} row(s) not finished ({rule['column']} is not "
                 f"{' / '.join(rule['values'])}): their outcomes are not used"] if n else []


@dataclass
class Reports:
    """An export of repeated status reports, split (see the module docstring)."""

    plans: pd.DataFrame  # each project's first report, plus `<column> [last report]` outcomes
    snapshots: pd.DataFrame  # the reports between the plan and the report giving the outcome
    outcomes: dict[str, str]  # outcome source column -> its column in `plans`
    notes: list[str] = field(default_factory=list)


def split_reports(raw: pd.DataFrame, profile: Profile) -> Reports:
    """Plan, outcome and snapshots of each project's reports (see the module docstring)."""
    reports = profile.read["reports"]
    key = profile.roles["project_id"]
    ordered = _ordered(raw, profile, reports["date"])
    group = ordered.groupby(key, sort=False)
    position = group.cumcount().to_numpy()
    size = group[key].transform("size").to_numpy()
    later = ordered[(position > 0) & (size >= int(reports.get("min_reports", 2)))]
    columns = outcome_columns(profile)
    given = pd.DataFrame({c: _text(later[c]).ne("") for c in columns}, index=later.index)
    plans = ordered[position == 0].set_index(key)
    outcomes = {c: c + LAST for c in columns}
    values = {c: later[c].where(given[c]).groupby(later[key]).last() for c in columns}
    done = _finished(later, profile, key)
    for column, name in outcomes.items():
        plans[name] = values[column].where(done, np.nan).reindex(plans.index)
    # The report that gave the outcome ends the snapshots (blank reports after it hold nothing).
    last = pd.Series(position, ordered.index)[given.reindex(ordered.index, fill_value=False)
                                             .any(axis=1)].groupby(ordered[key]).max()
    end = ordered[key].map(last).fillna(pd.Series(size - 1, ordered.index)).to_numpy()
    between = ordered[(position > 0) & (position < end)].drop(columns="_when")
    notes = _notes(plans, later, given, values, done, profile, key)
    return Reports(plans.reset_index().drop(columns="_when"), between, outcomes, notes)


def _ordered(raw: pd.DataFrame, profile: Profile, date: str) -> pd.DataFrame:
    if date not in raw.columns:
        raise ProfileError(f"{profile.source}: read.reports.date {date!r} is not a column")
    when = pd.to_datetime(_text(raw[date]), format=_format(profile, date) or "ISO8601",
                          errors="coerce")
    if when.isna().any():
        first = raw.loc[when.isna(), SOURCE_ROW].iloc[0]
        raise ProfileError(f"{profile.source}: read.reports.date {date!r} has "
                           f"{int(when.isna().sum())} value(s) that are not dates "
                           f"(first: file row {first}); fix the column or its date format")
    key = profile.roles["project_id"]
    return raw.assign(_when=when).sort_values([key, "_when", SOURCE_ROW], kind="stable")


def _finished(later: pd.DataFrame, profile: Profile, key: str) -> pd.Series:
    """Per project: whether its last report (that says anything) calls it finished."""
    rule = profile.read.get("finished")
    projects = later[key].unique()
    if not rule:
        return pd.Series(True, index=projects)
    status = _text(later[rule["column"]])
    last = status[status.ne("")].groupby(later[key]).last()
    return last.isin(rule["values"]).reindex(projects, fill_value=False)


def _notes(plans, later, given, values, done, profile: Profile, key: str) -> list[str]:
    """How many projects have no outcome and why; outcome dates that are only forecasts."""
    n = len(plans)
    single = n - later[key].nunique()
    notes = [f"{single:,} of {n:,} project(s) have a single status report: no outcome"] \
        if single else []
    if profile.read.get("finished") and (~done).any():
        notes.append(f"{int((~done).sum()):,} project(s) not finished at their last report "
                     f"({profile.read['finished']['column']}): no outcome")
    final = later.groupby(key).tail(1)
    for role, column in profile.roles.items():
        if ROLES[ALTERNATIVES.get(role, role)].stage != "outcome":
            continue
        found = values[column].notna()
        blank_last = pd.Series(~given.loc[final.index, column].to_numpy(), final[key].to_numpy())
        none, earlier = int((~found).sum()), int((found & blank_last.reindex(found.index)).sum())
        if none:
            notes.append(f"{role} ({column}): no report after the first gives a value for "
                         f"{none:,} project(s): no outcome")
        if earlier:
            notes.append(f"{role} ({column}): taken from an earlier report for {earlier:,} "
                         "project(s) whose last report leaves it empty")
        if role == "actual_finish_date":
            notes += _forecast_finishes(later, given, column, profile, key)
    return notes


def _forecast_finishes(later, given, column, profile: Profile, key: str) -> list[str]:
    """An outcome finish after the report that gives it is a forecast, not an actual finish."""
    rows = later[given[column]].groupby(key).tail(1)
    finish = pd.to_datetime(_text(rows[column]), format=_format(profile, column) or "ISO8601",
                            errors="coerce")
    ahead = int((finish > rows["_when"]).sum())
    if not ahead:
        return []
    return [f"actual_finish_date ({column}): {ahead:,} of {len(rows):,} outcome finish dates "
            "lie after the report that gives them: they are forecasts, not actual finishes"]


def _format(profile: Profile, column: str) -> str | None:
    read = profile.read
    return read.get("date_formats", {}).get(column) or read.get("date_format")


def _text(values: pd.Series) -> pd.Series:
    """Cells as stripped text, '' where empty."""
    return values.astype("str").str.strip().where(values.notna(), "")
