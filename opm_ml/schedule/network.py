"""A schedule checked and compiled into index arrays: topological order, links, calendars.

Compiling validates what the engines rely on and says exactly what is wrong: duplicate ids,
relationships to activities that do not exist, activities on calendars the file does not
define, impossible progress, constraints without dates, and logic loops (named in order).
Topological order is computed once here; the CPM and every Monte Carlo pass reuse it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from opm_ml.schedule.calendars import Timeline, to_minutes
from opm_ml.schedule.model import (
    CONSTRAINT_TYPES,
    RELATION_TYPES,
    Activity,
    Schedule,
    ScheduleError,
    twenty_four_hour_calendar,
)

TYPE_CODE = {t: i for i, t in enumerate(RELATION_TYPES)}  # FS 0, SS 1, FF 2, SF 3
NOT_STARTED, IN_PROGRESS, COMPLETE = 0, 1, 2


@dataclass
class Network:
    """Index arrays over activities in topological order (`ids[i]` is position i).

    Link arrays are parallel (`pred`, `succ`, `type`, `lag` in working minutes of the link's
    lag calendar `lag_cal`); `timelines[cal[i]]` is activity i's calendar. Progress: `status`,
    `actual_start`/`actual_finish` (instants, NaN when absent), `remaining` (working minutes).
    """

    schedule: Schedule
    ids: list[str]
    activities: list[Activity]
    timelines: list[Timeline]
    cal: np.ndarray
    pred: np.ndarray
    succ: np.ndarray
    type: np.ndarray
    lag: np.ndarray
    lag_cal: np.ndarray
    status: np.ndarray
    actual_start: np.ndarray
    actual_finish: np.ndarray
    remaining: np.ndarray
    data_date: float
    must_finish_by: float | None

    @property
    def n(self) -> int:
        return len(self.ids)

    def index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.ids)}


def compile_network(schedule: Schedule) -> Network:
    """Validate `schedule` and compile it; raises `ScheduleError` naming the fault."""
    acts = schedule.activities
    if not acts:
        raise ScheduleError(f"schedule {schedule.name!r} has no activities")
    seen: set[str] = set()
    for a in acts:
        if a.id in seen:
            raise ScheduleError(f"activity id {a.id!r} appears more than once")
        seen.add(a.id)
        _check_activity(a, schedule)
    position = {a.id: i for i, a in enumerate(acts)}
    for r in schedule.relationships:
        for role, end in (("predecessor", r.predecessor), ("successor", r.successor)):
            if end not in position:
                raise ScheduleError(
                    f"relationship {r.predecessor} -> {r.successor} ({r.type}): {role} "
                    f"{end!r} is not an activity of this schedule (dangling relationship)")
        if r.type not in TYPE_CODE:
            raise ScheduleError(f"relationship {r.predecessor} -> {r.successor}: type "
                                f"{r.type!r} is not one of {', '.join(RELATION_TYPES)}")
        if r.predecessor == r.successor:
            raise ScheduleError(f"logic loop: activity {r.predecessor!r} is its own "
                                "predecessor")
    order = topological_order([a.id for a in acts],
                              [(r.predecessor, r.successor) for r in schedule.relationships])
    acts = [acts[position[i]] for i in order]
    index = {a: i for i, a in enumerate(order)}

    first = _earliest_day(schedule)
    calendar_ids = list(schedule.calendars)
    timelines = [Timeline(schedule.calendars[c], first) for c in calendar_ids]
    cal_index = {c: i for i, c in enumerate(calendar_ids)}
    timelines.append(Timeline(twenty_four_hour_calendar("__24h__"), first))
    h24 = len(timelines) - 1
    if schedule.default_calendar_id not in cal_index:
        raise ScheduleError(f"the project's default calendar {schedule.default_calendar_id!r} "
                            "is not defined in the file")
    cal = np.array([cal_index[a.calendar_id] for a in acts], dtype=np.int64)

    rels = schedule.relationships
    pred = np.array([index[r.predecessor] for r in rels], dtype=np.int64)
    succ = np.array([index[r.successor] for r in rels], dtype=np.int64)
    lag_rule = {"predecessor": cal[pred] if len(rels) else pred,
                "successor": cal[succ] if len(rels) else succ,
                "24h": np.full(len(rels), h24), "project":
                np.full(len(rels), cal_index[schedule.default_calendar_id])}
    if schedule.lag_calendar not in lag_rule:
        raise ScheduleError(f"lag calendar option {schedule.lag_calendar!r} is not one of "
                            f"{', '.join(lag_rule)}")
    lag_cal = np.where([r.lag_elapsed for r in rels], h24, lag_rule[schedule.lag_calendar])

    status = np.array([{"not_started": NOT_STARTED, "in_progress": IN_PROGRESS,
                        "complete": COMPLETE}[a.status] for a in acts], dtype=np.int8)
    return Network(
        schedule=schedule, ids=order, activities=acts, timelines=timelines, cal=cal,
        pred=pred, succ=succ,
        type=np.array([TYPE_CODE[r.type] for r in rels], dtype=np.int8),
        lag=np.array([r.lag_hours * 60.0 for r in rels], dtype=float),
        lag_cal=np.asarray(lag_cal, dtype=np.int64),
        status=status,
        actual_start=np.array([_minutes_or_nan(a.actual_start) for a in acts]),
        actual_finish=np.array([_minutes_or_nan(a.actual_finish) for a in acts]),
        remaining=np.array([a.remaining * 60.0 for a in acts], dtype=float),
        data_date=to_minutes(schedule.data_date),
        must_finish_by=None if schedule.must_finish_by is None
        else to_minutes(schedule.must_finish_by),
    )


def topological_order(ids: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Kahn's order, stable in the given order; a loop raises naming its activities in order."""
    succs: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(ids, 0)
    for p, s in edges:
        succs[p].append(s)
        indegree[s] += 1
    ready = [i for i in ids if indegree[i] == 0]
    order: list[str] = []
    while ready:
        nxt: list[str] = []
        for node in ready:
            order.append(node)
            for s in succs[node]:
                indegree[s] -= 1
                if indegree[s] == 0:
                    nxt.append(s)
        ready = nxt
    if len(order) < len(ids):
        raise ScheduleError("logic loop: " + " -> ".join(_find_loop(ids, edges, set(order))))
    return order


def _find_loop(ids, edges, done: set[str]) -> list[str]:
    """One loop among the activities Kahn's algorithm could not order, closed on its start."""
    preds: dict[str, list[str]] = defaultdict(list)
    for p, s in edges:
        if p not in done and s not in done:
            preds[s].append(p)
    node = next(i for i in ids if i not in done)
    path: list[str] = []
    where: dict[str, int] = {}
    while node not in where:  # every left-over node has a left-over predecessor
        where[node] = len(path)
        path.append(node)
        node = preds[node][0]
    loop = path[where[node]:][::-1]
    return [*loop, loop[0]]


def _check_activity(a: Activity, schedule: Schedule) -> None:
    where = f"activity {a.id!r} ({a.name})"
    if a.calendar_id not in schedule.calendars:
        raise ScheduleError(f"{where} uses calendar {a.calendar_id!r}, which the file does "
                            "not define (missing calendar)")
    for name, value in (("duration", a.duration_hours), ("remaining duration", a.remaining)):
        if not np.isfinite(value) or value < 0:
            raise ScheduleError(f"{where}: {name} must be a finite number of hours >= 0, "
                                f"got {value!r}")
    if a.actual_finish is not None and a.actual_start is None:
        raise ScheduleError(f"{where} has an actual finish but no actual start")
    if a.actual_finish is not None and a.actual_finish < a.actual_start:
        raise ScheduleError(f"{where}: actual finish {a.actual_finish} is before its actual "
                            f"start {a.actual_start}")
    for kind, when in ((a.constraint, a.constraint_date), (a.constraint2, a.constraint2_date)):
        if kind is None:
            continue
        if kind not in CONSTRAINT_TYPES:
            raise ScheduleError(f"{where}: constraint {kind!r} is not one of "
                                f"{', '.join(CONSTRAINT_TYPES)}")
        if when is None and kind != "ALAP":
            raise ScheduleError(f"{where}: constraint {kind} has no date")


def _minutes_or_nan(value: datetime | None) -> float:
    return np.nan if value is None else to_minutes(value)


def _earliest_day(schedule: Schedule) -> date:
    """The day the calendars' horizon starts: a few years before any date in the schedule."""
    dates = [schedule.data_date, schedule.planned_start]
    for a in schedule.activities:
        dates += [a.actual_start, a.constraint_date, a.constraint2_date, a.baseline_start]
    earliest = min(d for d in dates if d is not None)
    return (earliest - timedelta(days=365 * 5)).date()
