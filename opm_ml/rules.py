"""The row rules: every multi-column check, written once, vectorised over many rows.

History validation (`opm_ml.validation`), the API's request checks and batch scoring all call
these functions on column arrays and get the same findings: which row, which column, the
offending value, why, and a machine-readable type. Single-column checks (types, ranges,
categories) come from the column definitions of the contract or profile; these are the rules
that need two or more values:

* profile rules: `sum_to` (e.g. role shares sum to 1 +- 0.01) and `zero_together` (e.g. a
  mean risk severity is 0 exactly when no risk is registered);
* status rules, against the project: EV and PV within BAC, the status date not before the
  start, and PV equal to BAC from the planned finish on (the EVM core's own conditions,
  `opm_ml.opm_metrics.consistency`, so valid data never fails inside the metrics);
* history rules: the actual finish not before the start, complete outcomes, and a planned
  value that never decreases over a project's snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import numpy as np
import pandas as pd

from opm_ml.opm_metrics.consistency import REL_TOL, above_bac, short_of_bac_after_finish

FINDING_COLUMNS = ("position", "column", "value", "reason", "type", "status")


class Findings:
    """Problems found in rows (positions 0..n-1 of the arrays checked), one per row and rule.

    `status` marks findings on a status-snapshot field (the API nests those under `status`).
    The frame is built when first read: a clean request, the common case, never builds one
    (an empty pandas frame costs about a millisecond, a single-project answer a few).
    """

    def __init__(self, parts: Sequence[pd.DataFrame]):
        self._parts = list(parts)

    @classmethod
    def of(cls, parts: Sequence[pd.DataFrame | None]) -> Findings:
        return cls([p for p in parts if p is not None and len(p)])

    @cached_property
    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return _empty()
        frame = pd.concat(self._parts, ignore_index=True)
        return frame.sort_values("position", kind="stable").reset_index(drop=True)

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)

    @property
    def positions(self) -> np.ndarray:
        return np.unique(self.frame["position"].to_numpy(dtype=np.int64))


def finding(positions, column: str, value, reason, kind: str,
            status: bool = False) -> pd.DataFrame | None:
    """One rule's findings as a frame (vectors of values and reasons, or scalars); None when
    the rule found nothing (most rules, most of the time: no frame is built then)."""
    positions = np.asarray(positions, dtype=np.int64)
    n = len(positions)
    if not n:
        return None

    def column_of(v):
        return np.asarray(v, dtype=object) if not np.isscalar(v) else np.full(n, v, object)

    return pd.DataFrame({"position": positions, "column": np.full(n, column, object),
                         "value": column_of(value), "reason": column_of(reason),
                         "type": np.full(n, kind, object), "status": np.full(n, status)})


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"position": pd.Series(dtype="int64"),
                         **{c: pd.Series(dtype=object) for c in FINDING_COLUMNS[1:-1]},
                         "status": pd.Series(dtype=bool)})


def number_text(values) -> np.ndarray:
    """Numbers as report text: 270 not 270.0, 0.9 not 0.9000000000000001, '' when missing."""
    values = np.asarray(values, dtype=float)
    return np.array(["" if not np.isfinite(v) else
                     np.format_float_positional(round(v, 6) if abs(v) < 1e9 else v, trim="-")
                     for v in values], dtype=object)


def date_text(values) -> np.ndarray:
    days = np.asarray(values, dtype="datetime64[D]")
    text = np.datetime_as_string(days, unit="D").astype(object)
    text[np.isnat(days)] = ""
    return text


# --- profile rules -----------------------------------------------------------------------------


def profile_findings(columns: Mapping[str, np.ndarray], rules: Sequence[Mapping]) -> Findings:
    """The profile's declared rules over rows whose values are all present."""
    parts = []
    for rule in rules:
        check = _PROFILE_RULES.get(rule["kind"])
        if check is None:
            raise ValueError(f"unknown rule kind {rule['kind']!r}")
        if all(c in columns for c in rule["columns"]):
            parts += check(columns, rule)
    return Findings.of(parts)


def _sum_to(columns, rule) -> list[pd.DataFrame]:
    values = np.array([np.asarray(columns[c], float) for c in rule["columns"]])  # (k, n)
    total = values.sum(axis=0)  # NaN (a missing share) is the range check's business
    off = np.abs(total - rule["total"]) > rule["tolerance"]
    rows = np.flatnonzero(off & np.isfinite(total))
    if not len(rows):  # the usual case: no report text to build
        return []
    text = number_text(total[rows])
    label = rule.get("label") or "+".join(rule["columns"])
    reason = (rule.get("name", "values") + " sum to " + text
              + f", must sum to {rule['total']:g} (± {rule['tolerance']:g})")
    return [finding(rows, label, text, reason, rule.get("type", "sum_to"))]


def _zero_together(columns, rule) -> list[pd.DataFrame]:
    count_name, value_name = rule["columns"]
    count = np.asarray(columns[count_name], float)
    value = np.asarray(columns[value_name], float)
    kind = rule.get("type", "zero_together")
    parts = []
    rows = np.flatnonzero((count == 0) & (value != 0) & np.isfinite(value))
    if len(rows):  # (report text only for rows that break the rule)
        text = number_text(value[rows])
        parts.append(finding(rows, value_name, text,
                             f"{value_name} must be 0 when {count_name} is 0, got " + text, kind))
    rows = np.flatnonzero((count > 0) & (value == 0))
    if len(rows):
        parts.append(finding(rows, value_name, number_text(value[rows]),
                             f"{value_name} must be > 0 when {count_name} is "
                             + number_text(count[rows]), kind))
    return parts


_PROFILE_RULES = {"sum_to": _sum_to, "zero_together": _zero_together}


# --- status rules ------------------------------------------------------------------------------


def status_findings(columns: Mapping[str, np.ndarray], inflight: np.ndarray) -> Findings:
    """Rows with a status snapshot (`inflight`) that contradict their project's plan.

    Reads `start_date` and `status_date`, and when present `budget_at_completion`,
    `planned_duration_days`, `pv` and `ev` (each row its own project and snapshot).
    """
    rows = np.flatnonzero(inflight)
    parts = []
    start = np.asarray(columns["start_date"], "datetime64[D]")[rows]
    status = np.asarray(columns["status_date"], "datetime64[D]")[rows]
    # Report text is built only for rows a rule flags: most requests have none, and building
    # it for nothing was about a third of a clean single project's validation.
    if "budget_at_completion" in columns and "pv" in columns:
        bac = np.asarray(columns["budget_at_completion"], float)[rows]
        for name in ("ev", "pv"):
            amount = np.asarray(columns[name], float)[rows]
            over = above_bac(amount, bac)
            if not over.any():
                continue
            text = number_text(amount[over])
            parts.append(finding(rows[over], name, text, name + " " + text + " exceeds the "
                                 "project's budget_at_completion " + number_text(bac[over]),
                                 f"{name}_above_bac", status=True))
    early = status < start
    if early.any():
        text = date_text(status[early])
        parts.append(finding(rows[early], "status_date", text, "status_date " + text
                             + " is before the project's start_date " + date_text(start[early]),
                             "status_before_start", status=True))
    if "budget_at_completion" in columns and "pv" in columns \
            and "planned_duration_days" in columns:
        pv = np.asarray(columns["pv"], float)[rows]
        duration = np.asarray(columns["planned_duration_days"], float)[rows]
        at = (status - start).astype(np.int64).astype(float)
        short = short_of_bac_after_finish(pv, bac, at, duration) & ~early
        if short.any():
            text = number_text(pv[short])
            parts.append(finding(
                rows[short], "pv", text, "pv " + text + " must equal the project's "
                "budget_at_completion " + number_text(bac[short]) + " once the planned finish ("
                + number_text(duration[short]) + " days after start_date) has passed",
                "pv_below_bac_after_finish", status=True))
    return Findings.of(parts)


# --- history rules -----------------------------------------------------------------------------


def finish_findings(columns: Mapping[str, np.ndarray]) -> Findings:
    """Projects whose actual finish lies before their start."""
    start = np.asarray(columns["start_date"], "datetime64[D]")
    finish = np.asarray(columns["actual_finish_date"], "datetime64[D]")
    rows = np.flatnonzero(finish < start)
    text = date_text(finish[rows])
    return Findings.of([finding(rows, "actual_finish_date", text, "actual_finish_date " + text
                                + " is before start_date " + date_text(start[rows]),
                                "finish_before_start")])


def outcome_findings(present: pd.DataFrame, needs: str = "") -> Findings:
    """Projects with some but not all outcome columns (`present`: given or not, per column);
    `needs` words what a finished project needs (default: the column names)."""
    n_present = present.sum(axis=1).to_numpy()
    partial = (n_present > 0) & (n_present < present.shape[1])
    parts = []
    for name in present.columns:
        rows = np.flatnonzero(partial & ~present[name].to_numpy(dtype=bool))
        parts.append(finding(rows, name, "", "missing outcome value: a finished project "
                             "needs " + (needs or ", ".join(present.columns)),
                             "incomplete_outcome"))
    return Findings.of(parts)


def pv_series_findings(project: np.ndarray, status_date: np.ndarray, pv: np.ndarray,
                       bac: np.ndarray) -> Findings:
    """Snapshots whose PV falls below an earlier snapshot's PV of the same project.

    The planned-value baseline never decreases; the later snapshot is the one reported.
    """
    frame = pd.DataFrame({"project": project, "date": status_date, "pv": pv,
                          "position": np.arange(len(pv))}).sort_values(["project", "date"],
                                                                         kind="stable")
    before = frame.groupby("project", sort=False)["pv"].cummax().groupby(
        frame["project"], sort=False).shift(1)
    tolerance = REL_TOL * np.asarray(bac, float)[frame["position"].to_numpy()]
    dips = (frame["pv"] < before - tolerance).to_numpy()
    rows = frame["position"].to_numpy()[dips]
    text = number_text(frame["pv"].to_numpy()[dips])
    return Findings.of([finding(rows, "pv", text, "pv " + text + " is below the project's "
                                "pv " + number_text(before.to_numpy()[dips]) + " on an earlier "
                                "status_date: planned value never decreases", "pv_decreases",
                                status=True)])
