"""What `schedule check` and `schedule risk` compute, shared by the command line and the API.

* `read_upload`: an uploaded file's bytes -> `Schedule`, every failure one `ScheduleError`;
* `check_schedule`: CPM, the DCMA 14 points and agreement with the file's own dates;
* `build_uncertainty`: each remaining activity's distribution, in order of precedence the
  planner's three-point estimate, the learned activity-duration model, the default template
  PERT(90 %, 100 %, 130 %) of the remaining duration; correlation groups and risk events; and
  an `UncertaintySource` saying which was used where (so an answer never hides that it ran on
  the template);
* `analyse_risk`: the Monte Carlo run with the deterministic CPM beside it.
Each report has `to_dict()`: plain JSON types, dates as ISO strings, no NaN.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from opm_ml.schedule.cpm import CPMResult, agreement, run_cpm
from opm_ml.schedule.distributions import Estimate, RiskEvent, Uncertainty
from opm_ml.schedule.model import Schedule, ScheduleError

log = logging.getLogger("opm_ml.schedule")

# The default uncertainty when nothing better is given: PERT(90 %, 100 %, 130 %) of the
# remaining duration, a common starting template in schedule risk workshops.
DEFAULT_TEMPLATE = (0.9, 1.0, 1.3)
TEMPLATE_TEXT = "default template PERT(90 %, 100 %, 130 %) of the remaining duration"
GROUP_BY = ("wbs", "type", "none")
MAX_OFFENDERS = 100  # per DCMA check in a report; the count is always complete
TOP_ACTIVITIES = 50  # most critical activities in a risk report


def read_upload(data: bytes, filename: str) -> Schedule:
    """The schedule in an upload's bytes; anything wrong is one `ScheduleError` line.

    The readers name what is wrong (truncated file, unparseable date, dangling relationship,
    missing calendar...). Content they did not foresee is still a one-line refusal, never a
    crash: the traceback goes to the log under a reference the message gives.
    """
    from opm_ml.schedule.files import read_schedule

    name = safe_name(filename)
    try:
        return read_schedule(name, data)
    except ScheduleError:
        raise
    except UNFORESEEN as err:
        reference = log_unforeseen(name, err)
        raise ScheduleError(f"{name}: cannot read the file (unforeseen content; reference "
                            f"{reference} in the log)") from None


# What a reader or engine raises on content nobody foresaw (never a reason to crash a server).
UNFORESEEN = (ValueError, LookupError, TypeError, ArithmeticError, AttributeError,
              RecursionError)


def log_unforeseen(filename: str, err: BaseException) -> str:
    """Log an error on content nobody foresaw with its traceback; returns its reference."""
    reference = uuid.uuid4().hex[:12]
    log.warning("unforeseen content in %s (reference %s): %s: %s", safe_name(filename),
                reference, type(err).__name__, err, exc_info=err)
    return reference


def safe_name(filename: str) -> str:
    """The upload's base name, printable, for messages (never a path to open)."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:120]
    return base or "upload"


# ------------------------------------------------------------------------------------ check
@dataclass
class CheckReport:
    """CPM, DCMA and agreement of one schedule (`cpm` is None when it has no activities)."""

    schedule: Schedule
    cpm: CPMResult | None
    checks: pd.DataFrame | None
    agreement: pd.DataFrame | None

    def to_dict(self) -> dict:
        s, cpm = self.schedule, self.cpm
        out = {"schedule": schedule_summary(s, cpm), "warnings": list(s.warnings),
               "critical_path": [], "dcma": [], "agreement": None}
        if cpm is None:
            out["warnings"].append(f"{len(s.calendars)} calendars, {len(s.resources)} "
                                   "resources and no activities to schedule")
            return out
        out["critical_path"] = path_rows(cpm)
        out["dcma"] = [{
            "number": int(row.number), "name": row.name, "threshold": row.threshold,
            "value": _number(row.value), "passed": None if row.passed is None or (
                isinstance(row.passed, float) and math.isnan(row.passed)) else bool(row.passed),
            "offender_count": len(row.offenders),
            "offenders": [str(o) for o in row.offenders[:MAX_OFFENDERS]]}
            for row in self.checks.itertuples(index=False)]
        if self.agreement is not None and len(self.agreement):
            out["agreement"] = {"compared": len(self.agreement),
                                "agree": int(self.agreement["agree"].sum()),
                                "activities": int(self.agreement["activity_id"].nunique())}
        return out


def check_schedule(schedule: Schedule) -> CheckReport:
    """CPM, the DCMA 14-point assessment and agreement with the file's stored dates."""
    from opm_ml.schedule.dcma import assess

    if not schedule.activities:
        return CheckReport(schedule, None, None, None)
    cpm = run_cpm(schedule)
    return CheckReport(schedule, cpm, assess(schedule, cpm), agreement(cpm))


def schedule_summary(schedule: Schedule, cpm: CPMResult | None) -> dict:
    return {
        "name": schedule.name, "format": schedule.source_format,
        "activities": len(schedule.activities), "relationships": len(schedule.relationships),
        "calendars": len(schedule.calendars), "data_date": _iso(schedule.data_date),
        "finish": _iso(cpm.project_finish) if cpm is not None else None,
        "critical_activities": int(cpm.frame["critical"].sum()) if cpm is not None else 0,
    }


def path_rows(cpm: CPMResult, criticality: pd.Series | None = None) -> list[dict]:
    """The longest path, first activity to last, with its CPM dates and float."""
    frame = cpm.frame.loc[cpm.critical_path]
    rows = []
    for activity_id, row in frame.iterrows():
        item = {"activity_id": str(activity_id), "name": row["name"],
                "start": _iso(row["start"]), "finish": _iso(row["finish"]),
                "total_float_hours": _number(row["total_float_hours"]),
                "remaining_hours": _number(row["remaining_hours"])}
        if criticality is not None:
            item["criticality_index"] = _number(criticality.get(activity_id))
        rows.append(item)
    return rows


# ------------------------------------------------------------------------------ uncertainty
@dataclass
class UncertaintySource:
    """Where each activity's distribution came from, said in every risk answer."""

    source: str  # "activity-duration model", "template" or "planner estimates"
    description: str
    model: dict | None = None  # registry ref {name, version, alias} or {"file": ...}
    note: str = ""  # why the model was not used, when it was not
    activities: dict[str, int] = field(default_factory=dict)  # planner / model / template

    def to_dict(self) -> dict:
        return {"source": self.source, "description": self.description, "model": self.model,
                "note": self.note, "activities": dict(self.activities)}


def build_uncertainty(schedule: Schedule, correlation: float = 0.3, group_by: str = "wbs",
                      planner: Mapping[str, Estimate] | None = None,
                      risks: Iterable[RiskEvent] = (), model=None, model_ref: dict | None = None,
                      project: Mapping | None = None, note: str = "", fallback: bool = False
                      ) -> tuple[Uncertainty, UncertaintySource]:
    """The `Uncertainty` a risk analysis runs and where its distributions came from.

    `model` (a fitted `ActivityDurationModel`, `model_ref` naming it) gives every remaining
    activity its learned distribution; `planner` estimates override any activity; the rest
    get the default template. `note` says why no model was used, when that is the case. With
    `fallback`, a model that cannot score this schedule (it needs project fields not given)
    leaves the template in place and the note says why; without, that is an error.
    """
    if group_by not in GROUP_BY:
        raise ScheduleError(f"--group-by must be wbs, type or none, got {group_by!r}")
    todo = [a for a in schedule.activities if a.status != "complete" and a.remaining > 0]
    low, likely, high = DEFAULT_TEMPLATE
    found = {a.id: Estimate("pert", a.remaining * low, a.remaining * likely, a.remaining * high)
             for a in todo}
    origin = dict.fromkeys(found, "template")
    if model is not None:
        try:
            learned = model_estimates(schedule, model, project or {})
        except ScheduleError as err:
            if not fallback:
                raise
            learned, note = {}, f"{_model_text(model_ref)} not used: {err}"
        found.update(learned)
        origin.update(dict.fromkeys(learned, "model"))
    for activity_id, estimate in (planner or {}).items():
        found[str(activity_id)] = estimate
        origin[str(activity_id)] = "planner"
    counts = {kind: sum(1 for v in origin.values() if v == kind)
              for kind in ("planner", "model", "template")}
    if counts["model"]:
        source, description = "activity-duration model", (
            f"learned P10/P50/P90 of {_model_text(model_ref)} as a two-piece lognormal "
            "per activity")
    elif counts["planner"] and not counts["template"]:
        source, description = "planner estimates", "the planner's three-point estimates"
    else:
        source, description = "template", TEMPLATE_TEXT
    if counts["planner"] and source != "planner estimates":
        description += f"; the planner's estimates for {counts['planner']} activities"
    groups = {} if group_by == "none" else {
        a.id: (a.wbs_id if group_by == "wbs" else a.activity_type) or "" for a in todo}
    return (Uncertainty(found, groups, correlation, list(risks)),
            UncertaintySource(source, description, model_ref if counts["model"] else None,
                              note, counts))


def _model_text(ref: dict | None) -> str:
    if not ref:
        return "the activity-duration model"
    if "file" in ref:
        return f"the activity-duration model in {ref['file']}"
    return f"{ref['name']} v{ref['version']} ({ref['alias']})"


def model_estimates(schedule: Schedule, model, project: Mapping) -> dict[str, Estimate]:
    """The learned distribution of every remaining, non-milestone activity (hours).

    A model trained with project-level fields needs them (`project`); which are missing is
    said, never guessed.
    """
    from opm_ml.schedule.activity_features import activity_features

    features = activity_features(schedule, dict(project))
    missing = [c for c in model.feature_names_ if c not in features.columns]
    if missing:
        raise ScheduleError("the activity-duration model also needs the project fields "
                            f"{', '.join(missing)} (--project KEY=VALUE)")
    if features.empty:
        return {}
    return model.estimates(features, np.exp(features["log_planned_hours"].to_numpy()))


def planner_estimates(frame: pd.DataFrame, where: str) -> dict[str, Estimate]:
    """Three-point estimates from rows activity_id, low, likely, high[, distribution]."""
    out = {}
    for number, row in enumerate(frame.itertuples(index=False), start=2):
        kind = getattr(row, "distribution", "pert")
        kind = "pert" if not isinstance(kind, str) or not kind.strip() else kind.strip()
        try:
            out[str(row.activity_id)] = Estimate(kind, float(row.low), float(row.likely),
                                                 float(row.high))
        except (TypeError, ValueError) as err:
            raise ScheduleError(f"{where} line {number}: {err}") from None
    return out


def risk_events(frame: pd.DataFrame, where: str) -> list[RiskEvent]:
    """Risk events from rows name, probability, activities (;-separated), low, likely, high."""
    out = []
    for number, r in enumerate(frame.itertuples(index=False), start=2):
        try:
            out.append(RiskEvent(str(r.name), float(r.probability),
                                 tuple(str(r.activities).split(";")),
                                 (float(r.low), float(r.likely), float(r.high))))
        except (TypeError, ValueError) as err:
            raise ScheduleError(f"{where} line {number}: {err}") from None
    return out


# ------------------------------------------------------------------------------------- risk
@dataclass
class RiskReport:
    """A Monte Carlo run, the deterministic CPM of the same schedule and the uncertainty used."""

    schedule: Schedule
    result: object  # RiskResult
    cpm: CPMResult
    source: UncertaintySource
    iterations: int
    seed: int
    correlation: float
    group_by: str
    n_risks: int

    def to_dict(self) -> dict:
        from opm_ml.schedule.calendars import from_minutes
        from opm_ml.schedule.montecarlo import PERCENTILES

        r = self.result
        finish = r.finish_percentiles()
        days = np.percentile(r.working_days, PERCENTILES)
        activities = r.activities.sort_values(
            ["criticality_index", "schedule_sensitivity_index"], ascending=False)
        return {
            "schedule": schedule_summary(self.schedule, self.cpm),
            "warnings": list(self.schedule.warnings),
            "iterations": self.iterations, "seed": self.seed,
            "uncertainty": {**self.source.to_dict(), "correlation": self.correlation,
                            "group_by": self.group_by, "risk_events": self.n_risks},
            "finish": {"deterministic": _iso(from_minutes(r.deterministic_finish)),
                       **{f"p{p}": _iso(finish[p]) for p in PERCENTILES}},
            "duration_working_days": {"deterministic": _number(r.deterministic_days),
                                      **{f"p{p}": _number(d) for p, d in zip(PERCENTILES, days)}},
            "duration_ratio": {f"p{p}": _number(r.duration_ratio(p)) for p in PERCENTILES},
            "milestones": [{"activity_id": str(m["activity_id"]), "name": m["name"],
                            **{f"p{p}": _iso(m[f"P{p}"]) for p in PERCENTILES}}
                           for m in r.milestones.to_dict("records")],
            "s_curve": [{"finish": _iso(row.finish), "probability": _number(row.probability)}
                        for row in r.s_curve(101).itertuples(index=False)],
            "histogram": [{"start": _iso(row[0]), "end": _iso(row[1]), "count": int(row[2]),
                           "share": _number(row[3])}
                          for row in r.histogram(30).itertuples(index=False)],
            "activities": [{"activity_id": str(i), "name": row["name"],
                            **{k: _number(row[k]) for k in (
                                "criticality_index", "cruciality", "schedule_sensitivity_index",
                                "mean_duration_hours", "sd_duration_hours")}}
                           for i, row in activities.head(TOP_ACTIVITIES).iterrows()],
            "tornado": [{"input": str(t["input"]), "kind": t["kind"], "name": t["name"],
                         "p80_swing_days": _number(t["p80_swing_days"]),
                         "correlation": _number(t["correlation"])}
                        for t in r.tornado.to_dict("records")],
            "critical_path": path_rows(self.cpm, r.activities["criticality_index"]),
        }


def analyse_risk(schedule: Schedule, uncertainty: Uncertainty, source: UncertaintySource,
                 iterations: int, seed: int = 0, group_by: str = "wbs") -> RiskReport:
    """Monte Carlo over `schedule` with `uncertainty`, beside its deterministic CPM."""
    from opm_ml.schedule.montecarlo import run_monte_carlo

    if not schedule.activities:
        raise ScheduleError(f"{schedule.name}: the file has no activities to simulate")
    result = run_monte_carlo(schedule, uncertainty, iterations, seed)
    return RiskReport(schedule, result, run_cpm(schedule), source, iterations, seed,
                      uncertainty.correlation, group_by, len(uncertainty.risks))


def _iso(value) -> str | None:
    """A date-time as `YYYY-MM-DDTHH:MM`, None when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M")
    return str(value)


def _number(value) -> float | None:
    """A finite float, or None (JSON has no NaN or infinity)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
