"""The activity network every reader fills and every engine reads: plain dataclasses.

Durations and lags are working hours (the unit P6 stores and MSPDI converts to); dates are naive
`datetime`s in the schedule's local time, as both formats write them. Ids are the planner's
activity ids (P6 `task_code`, MS Project `UID`), unique within a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

RelationType = Literal["FS", "SS", "FF", "SF"]
RELATION_TYPES: tuple[str, ...] = ("FS", "SS", "FF", "SF")
# Primary/secondary constraint kinds (P6 names in brackets):
#   SNET start on or after (CS_MSOA), FNET finish on or after (CS_MEOA),
#   SNLT start on or before (CS_MSOB), FNLT finish on or before (CS_MEOB),
#   SO start on (CS_MSO), FO finish on (CS_MEO),
#   MSO mandatory start (CS_MANDSTART), MFO mandatory finish (CS_MANDFIN), ALAP (CS_ALAP).
CONSTRAINT_TYPES: tuple[str, ...] = ("SNET", "FNET", "SNLT", "FNLT", "SO", "FO", "MSO", "MFO",
                                     "ALAP")
HARD_CONSTRAINTS: tuple[str, ...] = ("SNLT", "FNLT", "SO", "FO", "MSO", "MFO")
# Which calendar measures a relationship lag (P6's scheduling option; MS Project: successor's).
LagCalendar = Literal["predecessor", "successor", "24h", "project"]
ActivityKind = Literal["task", "start_milestone", "finish_milestone", "level_of_effort"]


class ScheduleError(ValueError):
    """A schedule file or network the engines cannot use; the message names what and where."""


Interval = tuple[int, int]  # working minutes of a day: [start, end), 0..1440


@dataclass
class Calendar:
    """A working-time calendar: a work week (Mon..Sun) plus dated exceptions.

    `week[d]` lists the working intervals of weekday d (0 = Monday); `exceptions` maps a date to
    its own intervals (empty = non-working day, e.g. a holiday).
    """

    id: str
    name: str
    week: tuple[tuple[Interval, ...], ...]
    exceptions: dict[date, tuple[Interval, ...]] = field(default_factory=dict)
    hours_per_day: float = 8.0

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ScheduleError(f"calendar {self.id!r}: a work week needs 7 days, "
                                f"got {len(self.week)}")
        for day in (*self.week, *self.exceptions.values()):
            for start, end in day:
                if not 0 <= start < end <= 1440:
                    raise ScheduleError(f"calendar {self.id!r} ({self.name}): working time "
                                        f"{start}-{end} min is not a valid interval of a day")
        if not any(self.week):
            raise ScheduleError(f"calendar {self.id!r} ({self.name}): no working day in its "
                                "work week")

    @property
    def is_24_hour(self) -> bool:
        return all(day == ((0, 1440),) for day in self.week) and not self.exceptions


def standard_calendar(id: str = "standard", name: str = "Standard 5 day",
                      holidays: tuple[date, ...] = ()) -> Calendar:
    """Monday-Friday 08:00-12:00 and 13:00-17:00, the default of both tools."""
    day = ((480, 720), (780, 1020))
    return Calendar(id, name, (day,) * 5 + ((), ()), {h: () for h in holidays}, 8.0)


def twenty_four_hour_calendar(id: str = "24h") -> Calendar:
    """Every minute works: elapsed-time lags and P6's 24-hour lag calendar."""
    return Calendar(id, "24 hour", (((0, 1440),),) * 7, {}, 24.0)


@dataclass
class Activity:
    """One schedulable activity (summary tasks are not activities: they are WBS nodes)."""

    id: str
    name: str
    calendar_id: str
    duration_hours: float  # original (planned) duration
    remaining_hours: float | None = None  # None: not started, equals the duration
    kind: ActivityKind = "task"
    wbs_id: str | None = None
    activity_type: str = ""  # e.g. P6 activity code or a generator's type; groups correlation
    actual_start: datetime | None = None
    actual_finish: datetime | None = None
    percent_complete: float = 0.0  # 0..100
    constraint: str | None = None  # one of CONSTRAINT_TYPES
    constraint_date: datetime | None = None
    constraint2: str | None = None
    constraint2_date: datetime | None = None
    baseline_start: datetime | None = None
    baseline_finish: datetime | None = None
    baseline_duration_hours: float | None = None
    # Dates and float as the writing tool computed them (what our CPM is checked against).
    reported: dict[str, datetime | float] = field(default_factory=dict)

    @property
    def remaining(self) -> float:
        """Working hours still to do (0 when finished)."""
        if self.actual_finish is not None:
            return 0.0
        return self.duration_hours if self.remaining_hours is None else self.remaining_hours

    @property
    def status(self) -> Literal["not_started", "in_progress", "complete"]:
        if self.actual_finish is not None:
            return "complete"
        return "in_progress" if self.actual_start is not None else "not_started"

    @property
    def is_milestone(self) -> bool:
        return self.kind in ("start_milestone", "finish_milestone")


@dataclass
class Relationship:
    """A logic link: `successor` depends on `predecessor` by `type` with `lag_hours`."""

    predecessor: str
    successor: str
    type: RelationType = "FS"
    lag_hours: float = 0.0
    lag_elapsed: bool = False  # MS Project elapsed lag units (e.g. "2 edays"): 24-hour time


@dataclass
class WBSNode:
    id: str
    code: str
    name: str
    parent_id: str | None = None


@dataclass
class Resource:
    id: str
    name: str
    type: str = "labor"  # labor, nonlabor, material
    calendar_id: str | None = None
    role_id: str | None = None


@dataclass
class Role:
    id: str
    name: str


@dataclass
class Assignment:
    """A resource (and/or role) working on an activity, in hours (units for non-labour)."""

    activity_id: str
    resource_id: str | None
    role_id: str | None = None
    planned_units: float = 0.0
    remaining_units: float = 0.0
    actual_units: float = 0.0


@dataclass
class Schedule:
    """A whole schedule file: network, calendars, WBS, resources and scheduling options."""

    name: str
    source_format: str  # "xer", "mspdi", "pmxml", "synthetic"
    data_date: datetime  # progress is as of this instant; nothing remaining starts before it
    default_calendar_id: str
    calendars: dict[str, Calendar]
    activities: list[Activity]
    relationships: list[Relationship] = field(default_factory=list)
    wbs: list[WBSNode] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    lag_calendar: LagCalendar = "predecessor"
    retained_logic: bool = True  # False: progress override
    # P6 resumes started work at the data date; MS Project right after the work already done.
    resume_at_data_date: bool = True
    must_finish_by: datetime | None = None
    planned_start: datetime | None = None
    warnings: list[str] = field(default_factory=list)

    def activity(self, activity_id: str) -> Activity:
        for a in self.activities:
            if a.id == activity_id:
                return a
        raise ScheduleError(f"no activity {activity_id!r} in schedule {self.name!r}")

    def wbs_path(self) -> dict[str, str]:
        """WBS id -> dotted code path from the root (e.g. "P.2.3"), for grouping and reports."""
        by_id = {w.id: w for w in self.wbs}
        out: dict[str, str] = {}
        for node in self.wbs:
            parts, seen, cur = [], set(), node
            while cur is not None and cur.id not in seen:
                seen.add(cur.id)
                parts.append(cur.code)
                cur = by_id.get(cur.parent_id) if cur.parent_id else None
            out[node.id] = ".".join(reversed(parts))
        return out
