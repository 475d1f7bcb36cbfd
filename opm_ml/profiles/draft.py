"""A drafted profile written as a commented TOML file that loads as it stands.

Feature keys come from column names; a key opm-ml keeps for itself (`late`, `status`,
`percent_complete` ...), a derived feature's name or one taken already gets `_reported`
(what the export reports), so the draft never fails to load over a name. A date column whose
format inference could not decide is left out of `[read.date_formats]` with a TODO naming
both readings: `data validate` then says which column needs it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from opm_ml.profiles.roles import reserved
from opm_ml.profiles.sniff import ColumnSummary, words

# The roles that decide which families can train (either of a pair will do).
MONEY_AND_TIME_ROLES = (("budget_at_completion",), ("actual_cost",), ("planned_effort_hours",),
                        ("actual_effort_hours",),
                        ("planned_duration_days", "planned_finish_date"),
                        ("actual_duration_days", "actual_finish_date"))


@dataclass
class Draft:
    """A drafted profile: per-column summaries, read options, warnings and the TOML text."""

    name: str
    columns: list[ColumnSummary]
    read: dict
    warnings: list[str] = field(default_factory=list)
    derived: list[tuple[str, str]] = field(default_factory=list)
    anchors: dict[str, str] = field(default_factory=dict)
    reference: str | None = None  # the reference class's column
    units: dict[str, str] = field(default_factory=dict)
    toml: str = ""




def to_toml(draft: Draft, path: Path, snapshots: Path | None = None) -> str:
    """The draft as a commented profile file."""
    also = f" --snapshots {Path(snapshots).name}" if snapshots is not None else ""
    lines = [f"# Drafted by `opm-ml data profile infer {path.name}{also}`: check every role "
             "and stage,", f"# then `opm-ml data validate --profile <this file> {path.name}"
             f"{also}`.", f"name = {_value(draft.name)}", 'version = "1"',
             f"description = {_value(f'{path.name}: {len(draft.columns)} columns')}", "",
             "[read]"]
    read = dict(draft.read)
    reports = read.pop("reports", None)
    lines += [f"{k} = {_value(v)}" for k, v in read.items()]
    lines += _date_formats(draft)
    if reports:
        lines += ["", "# The export repeats each project's status report: the first report is",
                  "# the plan, each outcome the last value a later report gives, the reports",
                  "# between are snapshots.", "[read.reports]",
                  f"date = {_value(reports['date'])}"]
    lines += ["", "[roles]"]
    lines += [f"{c.role} = {_value(c.column)}" for c in draft.columns if c.role]
    mapped = {c.role for c in draft.columns if c.role}
    unmapped = [" / ".join(pair) for pair in MONEY_AND_TIME_ROLES
                if not mapped.intersection(pair)]
    if unmapped:
        lines.append(f"# Not found: {', '.join(unmapped)}. Map what the export has.")
    lines += ["", "# Units of durations (days, weeks, months, years) and effort (hours, "
                  "person_days,", "# person_months, person_years), from the column names: "
                  "check them.", "[units]"]
    lines += [f"{role} = {_value(unit)}" for role, unit in draft.units.items()]
    keys = _feature_keys(draft)
    for c in draft.columns:
        if id(c) not in keys:
            continue
        lines += ["", f"# {c.warning}"] if c.warning and not c.warning.startswith("name:") \
            else [""]
        lines += [f"[features.{keys[id(c)]}]", f"column = {_value(c.column)}",
                  f'type = "{c.kind}"', f'stage = "{c.stage}"',
                  f"# {c.missing_share:.0%} missing; {c.detail}"]
    if draft.derived:
        lines += ["", "[derived]"] + [f"{k} = {_value(v)}" for k, v in draft.derived]
    reference = next((keys[id(c)] for c in draft.columns
                      if c.column == draft.reference and id(c) in keys), None)
    if reference or draft.anchors:
        lines += ["", "[model]"]
        if reference:
            lines.append(f"reference_class = {_value(reference)}")
        if draft.anchors:
            lines.append("anchors = { " + ", ".join(f"{k} = {_value(v)}"
                                                    for k, v in draft.anchors.items()) + " }")
    return "\n".join(lines) + "\n"


def _date_formats(draft: Draft) -> list[str]:
    """`[read.date_formats]`: one line per decided column, a TODO per ambiguous one."""
    lines, seen = [], set()
    for c in draft.columns:
        if c.kind != "date" or c.column in seen or c.formats == ("%Y-%m-%d",):
            continue
        seen.add(c.column)
        if len(c.formats) == 1:
            lines.append(f"{_value(c.column)} = {_value(c.formats[0])}")
        elif c.formats:
            lines += [f"# TODO {c.column!r}: every value reads as {' and as '.join(c.formats)};"
                      " keep the line of the one the export uses:"]
            lines += [f"# {_value(c.column)} = {_value(f)}" for f in c.formats]
    return ["", "[read.date_formats]", *lines] if lines else []


def _feature_keys(draft: Draft) -> dict[int, str]:
    """id(column summary) -> its feature key, for every column drafted as a feature."""
    taken = {k for k, _ in draft.derived}
    keys = {}
    for c in draft.columns:
        if c.role or c.kind == "text" or c.distinct < 2:  # empty or one value: nothing to learn
            continue
        named = c.warning.startswith("name:")
        key = c.warning[len("name:"):] if named else _key(c.column)
        if reserved(key) or key in taken:
            key += "_reported"
        while key in taken:
            key += "_2"
        taken.add(key)
        keys[id(c)] = key
    return keys


def _key(column: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", words(column)).strip("_") or "column"
    return key if key[0].isalpha() else "f_" + key


def _value(value) -> str:
    """A TOML value: JSON's string and number syntax is TOML's too."""
    return json.dumps(value)
