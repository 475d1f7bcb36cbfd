"""The DCMA 14-point schedule assessment: each check's metric, threshold, verdict, offenders.

Thresholds follow the DCMA 14-Point Assessment (2009 EVMS guidance, as planners use it):
percentages are of incomplete activities (logic, constraints, float, duration, resources,
missed tasks) or of relationships (leads, lags, types); "44 days" is 44 working days of the
activity's calendar. Milestones that open or close the network are not "missing logic".
The critical path test is run for real: one critical activity is delayed by 600 working
days and the project finish must move by exactly that much.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from opm_ml.schedule.calendars import to_minutes
from opm_ml.schedule.cpm import CPMResult, run_cpm
from opm_ml.schedule.model import HARD_CONSTRAINTS, Schedule

HIGH_DAYS = 44
CRITICAL_PATH_TEST_DAYS = 600


@dataclass
class Check:
    number: int
    name: str
    threshold: str
    value: float
    passed: bool | None  # None: not applicable (e.g. no baseline)
    offenders: list[str] = field(default_factory=list)


def assess(schedule: Schedule, cpm: CPMResult | None = None) -> pd.DataFrame:
    """All 14 checks as a frame (number, name, threshold, value, passed, offenders)."""
    cpm = cpm or run_cpm(schedule)
    f = cpm.frame
    acts = {a.id: a for a in schedule.activities}
    open_ids = [i for i in f.index if acts[i].status != "complete"]
    n_open = max(len(open_ids), 1)
    rels = schedule.relationships
    n_rel = max(len(rels), 1)
    has_pred = {r.successor for r in rels}
    has_succ = {r.predecessor for r in rels}
    hours_per_day = {c.id: c.hours_per_day for c in schedule.calendars.values()}

    def days(activity_id: str, hours: float) -> float:
        return hours / hours_per_day[acts[activity_id].calendar_id]

    def share(ids, total) -> float:
        return 100.0 * len(ids) / total

    missing = [i for i in open_ids
               if (i not in has_pred and acts[i].kind != "start_milestone")
               or (i not in has_succ and acts[i].kind != "finish_milestone")]
    leads = [f"{r.predecessor}->{r.successor}" for r in rels if r.lag_hours < 0]
    lags = [f"{r.predecessor}->{r.successor}" for r in rels if r.lag_hours > 0]
    not_fs = [f"{r.predecessor}->{r.successor} {r.type}" for r in rels if r.type != "FS"]
    hard = [i for i in open_ids if acts[i].constraint in HARD_CONSTRAINTS
            or acts[i].constraint2 in HARD_CONSTRAINTS]
    high_float = [i for i in open_ids if days(i, f.at[i, "total_float_hours"]) > HIGH_DAYS]
    negative = [i for i in open_ids if f.at[i, "total_float_hours"] < -1e-9]
    long = [i for i in open_ids if not acts[i].is_milestone
            and days(i, acts[i].baseline_duration_hours or acts[i].duration_hours) > HIGH_DAYS]
    dd = schedule.data_date
    invalid = [i for i, a in acts.items()
               if (a.actual_start and a.actual_start > dd) or (a.actual_finish and
                                                               a.actual_finish > dd)
               or (a.status != "complete" and f.at[i, "early_finish"] < pd.Timestamp(dd))]
    assigned = {s.activity_id for s in schedule.assignments}
    no_resource = [i for i in open_ids if not acts[i].is_milestone and acts[i].remaining > 0
                   and i not in assigned]
    due = [i for i, a in acts.items() if a.baseline_finish is not None
           and a.baseline_finish <= dd]
    missed = [i for i in due if acts[i].actual_finish is None
              or acts[i].actual_finish > acts[i].baseline_finish]
    done_by_dd = [i for i in due if acts[i].actual_finish is not None]
    checks = [
        Check(1, "Logic (missing predecessors or successors)", "<= 5%",
              share(missing, n_open), share(missing, n_open) <= 5, missing),
        Check(2, "Leads (negative lags)", "0", len(leads), not leads, leads),
        Check(3, "Lags", "<= 5% of relationships", share(lags, n_rel),
              share(lags, n_rel) <= 5, lags),
        Check(4, "Relationship types (finish-to-start)", ">= 90% FS",
              100 - share(not_fs, n_rel), 100 - share(not_fs, n_rel) >= 90, not_fs),
        Check(5, "Hard constraints", "<= 5%", share(hard, n_open), share(hard, n_open) <= 5,
              hard),
        Check(6, "High float (> 44 working days)", "<= 5%", share(high_float, n_open),
              share(high_float, n_open) <= 5, high_float),
        Check(7, "Negative float", "0", len(negative), not negative, negative),
        Check(8, "High duration (> 44 working days)", "<= 5%", share(long, n_open),
              share(long, n_open) <= 5, long),
        Check(9, "Invalid dates (actuals after, forecasts before the data date)", "0",
              len(invalid), not invalid, invalid),
        Check(10, "Resources (activities with work but no assignment)", "0",
              len(no_resource), not no_resource, no_resource),
        Check(11, "Missed tasks (baseline finish passed, late or not done)", "<= 5%",
              share(missed, max(len(due), 1)),
              share(missed, max(len(due), 1)) <= 5 if due else None, missed),
        _critical_path_test(schedule, cpm),
        _cpli(schedule, cpm),
        Check(14, "BEI (baseline execution index)", ">= 0.95",
              len(done_by_dd) / len(due) if due else np.nan,
              len(done_by_dd) / len(due) >= 0.95 if due else None,
              [i for i in due if i not in done_by_dd]),
    ]
    return pd.DataFrame([c.__dict__ for c in checks])


def _critical_path_test(schedule: Schedule, cpm: CPMResult) -> Check:
    """Delay one critical activity by 600 working days: the finish must move by as much."""
    name, threshold = "Critical path test", "finish moves by the delay"
    path = [i for i in cpm.critical_path if schedule.activity(i).status != "complete"
            and not schedule.activity(i).is_milestone]
    if not path:
        return Check(12, name, threshold, np.nan, False, ["no incomplete critical activity"])
    target = schedule.activity(path[len(path) // 2])
    calendar = cpm.network.timelines[list(schedule.calendars).index(target.calendar_id)]
    delay = CRITICAL_PATH_TEST_DAYS * schedule.calendars[target.calendar_id].hours_per_day
    delayed = replace(schedule, activities=[
        replace(a, remaining_hours=a.remaining + delay) if a.id == target.id else a
        for a in schedule.activities])
    moved = run_cpm(delayed).project_finish
    shift = (float(calendar.work_at(to_minutes(moved)))
             - float(calendar.work_at(to_minutes(cpm.project_finish)))) / 60.0
    ok = abs(shift - delay) < 1e-6
    return Check(12, name, threshold, shift / (delay or 1), ok, [] if ok else [target.id])


def _cpli(schedule: Schedule, cpm: CPMResult) -> Check:
    """(critical path length + its float to the target finish) / critical path length."""
    target = schedule.must_finish_by or max(
        (a.baseline_finish for a in schedule.activities if a.baseline_finish), default=None)
    name, threshold = "CPLI (critical path length index)", ">= 0.95"
    if target is None:
        return Check(13, name, threshold, np.nan, None, [])
    tl = cpm.network.timelines[list(schedule.calendars).index(schedule.default_calendar_id)]
    start = float(tl.work_at(to_minutes(schedule.data_date)))
    length = float(tl.work_at(to_minutes(cpm.project_finish))) - start
    slack = float(tl.work_at(to_minutes(target))) - float(tl.work_at(
        to_minutes(cpm.project_finish)))
    value = (length + slack) / length if length > 0 else np.nan
    return Check(13, name, threshold, value, bool(value >= 0.95) if length > 0 else None,
                 [] if value >= 0.95 else cpm.critical_path)
