"""Deterministic critical path method: early/late dates, total and free float, critical path.

`run_cpm` is one scenario of the vectorised passes (`passes.PassPlan`) turned into dates.
Conventions follow P6 where the tools differ: finished activities show the data date as early
dates and have no late dates; total float is finish float (late finish - early finish) in
working hours of the activity's calendar; critical = total float <= 0. The longest path is
traced back from the project finish through driving relationships.
`agreement` compares our dates with the dates the writing tool stored in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from opm_ml.schedule.calendars import from_minutes, to_minutes
from opm_ml.schedule.model import Schedule
from opm_ml.schedule.network import COMPLETE, Network, compile_network
from opm_ml.schedule.passes import _START_SOURCE, _START_TARGET, PassPlan

FLOAT_TOLERANCE_MINUTES = 1e-6
DATE_FIELDS = ("early_start", "early_finish", "late_start", "late_finish")


@dataclass
class CPMResult:
    """Per-activity dates (frame indexed by activity id, in topological order) and summary."""

    network: Network
    frame: pd.DataFrame
    project_finish: datetime
    critical_path: list[str]  # longest path, first activity to last

    @property
    def critical(self) -> list[str]:
        return list(self.frame.index[self.frame["critical"]])


def run_cpm(schedule: Schedule) -> CPMResult:
    """Schedule `schedule` by CPM (raises `ScheduleError` on an unusable network)."""
    net = compile_network(schedule)
    plan = PassPlan(net)
    duration = net.remaining[:, None]
    start, resume, finish = plan.forward(duration)
    finish_instant = plan.project_finish(finish)
    late_start, late_finish = plan.backward(duration, finish_instant)
    start, resume, finish = start[:, 0], resume[:, 0], finish[:, 0]
    late_start, late_finish = late_start[:, 0], late_finish[:, 0]
    done = net.status == COMPLETE

    frame = pd.DataFrame(index=pd.Index(net.ids, name="activity_id"))
    frame["name"] = [a.name for a in net.activities]
    frame["status"] = [a.status for a in net.activities]
    frame["remaining_hours"] = net.remaining / 60.0
    dates = {k: [] for k in DATE_FIELDS}
    for i, a in enumerate(net.activities):
        tl = net.timelines[net.cal[i]]
        if done[i]:
            dd = from_minutes(net.data_date)
            values = (dd, dd, None, None)
        else:
            # Zero-length work sits at the close of the day before it, except start
            # milestones and P6's zero-remaining activities (both at the next start).
            finish_side = a.kind == "finish_milestone" or (
                net.remaining[i] == 0 and net.schedule.source_format == "mspdi"
                and not a.is_milestone)
            at_start = tl.finish_at if finish_side else tl.start_at
            at_finish = tl.finish_at if net.remaining[i] > 0 or finish_side else tl.start_at
            values = (at_start(resume[i]), at_finish(finish[i]), at_start(late_start[i]),
                      at_finish(late_finish[i]))
            values = tuple(from_minutes(v) for v in values)
        for key, v in zip(DATE_FIELDS, values):
            dates[key].append(v)
    for key in DATE_FIELDS:
        frame[key] = pd.to_datetime(pd.Series(dates[key], index=frame.index, dtype=object))
    frame["start"] = [a.actual_start or es for a, es in zip(net.activities, dates["early_start"])]
    frame["finish"] = [a.actual_finish or ef
                       for a, ef in zip(net.activities, dates["early_finish"])]
    frame["total_float_hours"] = np.where(done, np.nan, (late_finish - finish) / 60.0)
    candidates = link_candidates(plan, start, finish)
    frame["free_float_hours"] = _free_float(plan, start, finish, resume, late_finish,
                                            finish_instant[0]) / 60.0
    frame["critical"] = ~done & (late_finish - finish <= FLOAT_TOLERANCE_MINUTES)
    path = _longest_path(plan, candidates, resume, finish, float(finish_instant[0]))
    frame["longest_path"] = frame.index.isin(path)
    return CPMResult(net, frame, from_minutes(finish_instant[0]), path)


def link_candidates(plan: PassPlan, start, finish) -> np.ndarray:
    """Each link's bound on its successor (successor minutes); NaN where the link is spent."""
    net = plan.net
    out = np.full(len(net.pred), np.nan)
    for link in np.flatnonzero(plan.forward_active):
        t = net.type[link]
        value = (start if _START_SOURCE[t] else finish)[net.pred[link]]
        out[link] = (value + net.lag[link]) if plan.fast[link] else float(
            plan.forward_link(link, np.array([value]))[0])
    return out


def _free_float(plan: PassPlan, start, finish, resume, late_finish, finish_instant) -> np.ndarray:
    """Minutes each activity can slip without moving any successor's early dates."""
    net = plan.net
    out = np.array([float(net.timelines[c].work_at(finish_instant)) for c in net.cal]) - finish
    for link in range(len(net.pred)):
        p, s, t = net.pred[link], net.succ[link], net.type[link]
        if not plan.backward_active[link]:
            continue
        succ_value = (resume if _START_TARGET[t] else finish)[s]
        bound = (succ_value - net.lag[link]) if plan.fast[link] else float(
            plan.backward_link(link, np.array([succ_value]))[0])
        out[p] = min(out[p], bound - (start if _START_SOURCE[t] else finish)[p])
    out[net.status == COMPLETE] = np.nan
    return out


def _longest_path(plan: PassPlan, candidates, resume, finish, finish_instant) -> list[str]:
    """Activities on the driving chain into the latest early finish, in order."""
    net = plan.net
    instants = np.array([float(net.timelines[c].finish_at(f)) for c, f in zip(net.cal, finish)])
    current = int(np.flatnonzero(np.abs(instants - finish_instant) < 1e-6)[-1])
    path = [current]
    while True:
        links = np.flatnonzero((net.succ == current) & ~np.isnan(candidates))
        target = np.where(_START_TARGET_ARRAY[net.type[links]], resume[current],
                          finish[current])
        driving = links[np.abs(candidates[links] - target) < 1e-6]
        if len(driving) == 0:
            break
        current = int(net.pred[driving[0]])
        path.append(current)
    return [net.ids[i] for i in reversed(path)]


_START_TARGET_ARRAY = np.array(_START_TARGET)


def agreement(result: CPMResult) -> pd.DataFrame:
    """Our dates next to the dates the tool stored, per activity and field, in working time.

    Two dates agree when they mark the same working instant on the activity's calendar (so
    Friday 17:00 equals Monday 08:00); floats agree to 0.01 h. Finished activities are
    compared on early dates only (the tools store no meaningful late dates for them).
    """
    net = result.network
    rows = []
    for i, a in enumerate(net.activities):
        tl = net.timelines[net.cal[i]]
        for key in (*DATE_FIELDS, "total_float_hours"):
            theirs = a.reported.get(key)
            if theirs is None or (net.status[i] == COMPLETE and key not in DATE_FIELDS[:2]):
                continue
            ours = result.frame.at[a.id, key]
            if key == "total_float_hours":
                same = bool(abs(float(ours) - float(theirs)) < 0.01)
            else:
                same = bool(float(tl.work_at(to_minutes(ours.to_pydatetime())))
                            == float(tl.work_at(to_minutes(theirs))))
            rows.append({"activity_id": a.id, "field": key, "ours": ours, "theirs": theirs,
                         "agree": same})
    return pd.DataFrame(rows, columns=["activity_id", "field", "ours", "theirs", "agree"])
