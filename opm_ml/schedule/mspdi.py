"""Microsoft Project XML (MSPDI) files: read into a `Schedule`.

Summary tasks become WBS nodes (their outline gives the tree); every other active task is an
activity. Durations are ISO `PT8H0M0S` working time; link lags are tenths of a minute, working
time unless the lag format is elapsed (then 24-hour time). Activity ids are task UIDs, or the
text field aliased "Activity ID" when the file defines one (our writer does, so ids such as
`A1000` survive a round trip). MS Project schedules from the project start and resumes started
work right after the work done, which `Schedule.resume_at_data_date = False` tells the CPM.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element

from opm_ml.schedule.model import (
    Activity,
    Assignment,
    Calendar,
    Relationship,
    Resource,
    Schedule,
    ScheduleError,
    WBSNode,
)
from opm_ml.schedule.xml_io import clock_minutes, number, read_xml, text, timestamp

LINK_TYPES = {"0": "FF", "1": "FS", "2": "SF", "3": "SS"}
CONSTRAINTS = {"0": None, "1": "ALAP", "2": "MSO", "3": "MFO", "4": "SNET", "5": "SNLT",
               "6": "FNET", "7": "FNLT"}
ELAPSED_FORMATS = {4, 6, 8, 10, 12, 20, 36, 38, 40, 42, 44, 52}
PERCENT_FORMATS = {19, 20, 51, 52}
ID_ALIAS, TYPE_ALIAS = "Activity ID", "Activity type"
_DURATION = re.compile(r"^(-)?P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?"
                       r"(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_MSP_DAY_TO_WEEKDAY = {1: 6, 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5}  # 1 = Sunday


def duration_hours(value: str, where: str, hours_per_day: float = 24.0) -> float:
    """'PT8H30M0S' -> 8.5 (a 'D' part counts `hours_per_day`)."""
    match = _DURATION.match(value.strip())
    if not match:
        raise ScheduleError(f"{where}: duration {value!r} is not an ISO duration like PT8H0M0S")
    sign, days, hours, minutes, seconds = match.groups()
    total = (float(days or 0) * hours_per_day + float(hours or 0) + float(minutes or 0) / 60
             + float(seconds or 0) / 3600)
    return -total if sign else total


def read_mspdi(path: Path | str, data: bytes | None = None) -> Schedule:
    """Read an MSPDI file written by MS Project (or by `write_mspdi`); or its bytes `data`,
    with `path` only naming it."""
    path = Path(path)
    root = read_xml(path, data)
    if root.tag != "Project":
        raise ScheduleError(f"{path.name}: not an MSPDI file (root element <{root.tag}>, "
                            "expected <Project>)")
    where = f"{path.name} <Project>"
    start = timestamp(root, "StartDate", where)
    if start is None:
        raise ScheduleError(f"{where}: no StartDate; the project cannot be scheduled")
    minutes_per_day = number(root, "MinutesPerDay", where, 480.0)
    calendars = _calendars(root, path.name, minutes_per_day / 60)
    default_cal = text(root, "CalendarUID", next(iter(calendars), ""))
    aliases = {text(a, "Alias"): text(a, "FieldID")
               for a in root.iterfind("ExtendedAttributes/ExtendedAttribute")}
    warnings: list[str] = []
    activities, wbs, uid_to_id = [], [], {}
    parents: list[tuple[int, str]] = []  # (outline level, wbs id) of open summary tasks
    links: list[tuple[str, Element]] = []
    for task in root.iterfind("Tasks/Task"):
        uid = text(task, "UID")
        twhere = f"task UID {uid} ({text(task, 'Name')})"
        if uid == "0" or text(task, "IsNull") == "1" or text(task, "Active", "1") == "0":
            continue
        level = int(number(task, "OutlineLevel", twhere, 1))
        while parents and parents[-1][0] >= level:
            parents.pop()
        parent = parents[-1][1] if parents else None
        if text(task, "Summary") == "1":
            wbs.append(WBSNode(f"W{uid}", text(task, "WBS", text(task, "OutlineNumber", uid)),
                               text(task, "Name"), parent))
            parents.append((level, f"W{uid}"))
            continue
        extended = {text(e, "FieldID"): text(e, "Value") for e in task.iterfind(
            "ExtendedAttribute")}
        activity_id = extended.get(aliases.get(ID_ALIAS, "-"), "") or uid
        uid_to_id[uid] = activity_id
        activity = _activity(task, activity_id, twhere, parent, default_cal,
                             extended.get(aliases.get(TYPE_ALIAS, "-"), ""), minutes_per_day)
        if int(number(task, "DurationFormat", twhere, 7)) in ELAPSED_FORMATS:
            warnings.append(f"{twhere}: elapsed duration scheduled as working time")
        activities.append(activity)
        links += [(activity_id, link) for link in task.iterfind("PredecessorLink")]
    relationships = [_relationship(succ, link, uid_to_id, path.name) for succ, link in links]
    # MSPDI has one milestone kind; one without predecessors marks a start (dated at the
    # next working start, not at the previous day's close).
    driven = {r.successor for r in relationships}
    for a in activities:
        if a.kind == "finish_milestone" and a.id not in driven:
            a.kind = "start_milestone"
    resources = [Resource(text(r, "UID"), text(r, "Name"),
                          {"0": "material", "1": "labor", "2": "nonlabor"}.get(
                              text(r, "Type", "1"), "labor"), text(r, "CalendarUID") or None)
                 for r in root.iterfind("Resources/Resource") if text(r, "UID") != "0"]
    known = {r.id for r in resources}
    assignments = [Assignment(uid_to_id[text(a, "TaskUID")], text(a, "ResourceUID"), None,
                              duration_hours(text(a, "Work", "PT0H"), "assignment"),
                              duration_hours(text(a, "RemainingWork", "PT0H"), "assignment"),
                              duration_hours(text(a, "ActualWork", "PT0H"), "assignment"))
                   for a in root.iterfind("Assignments/Assignment")
                   if text(a, "TaskUID") in uid_to_id and text(a, "ResourceUID") in known]
    return Schedule(
        name=text(root, "Title") or text(root, "Name") or path.stem, source_format="mspdi",
        data_date=start, default_calendar_id=default_cal, calendars=calendars,
        activities=activities, relationships=relationships, wbs=wbs, resources=resources,
        assignments=assignments, lag_calendar="successor", retained_logic=True,
        resume_at_data_date=False, must_finish_by=None, planned_start=start,
        warnings=warnings)


def _activity(task: Element, activity_id: str, where: str, wbs_id: str | None,
              default_cal: str, activity_type: str, minutes_per_day: float) -> Activity:
    hours_per_day = minutes_per_day / 60
    duration = duration_hours(text(task, "Duration", "PT0H0M0S"), where, hours_per_day)
    remaining = text(task, "RemainingDuration")
    actual_start = timestamp(task, "ActualStart", where)
    actual_finish = timestamp(task, "ActualFinish", where)
    constraint = CONSTRAINTS.get(text(task, "ConstraintType", "0"))
    baseline = next((b for b in task.iterfind("Baseline") if text(b, "Number") == "0"), None)
    calendar = text(task, "CalendarUID", "-1")
    total_slack = number(task, "TotalSlack", where, None)
    reported = {"early_start": timestamp(task, "EarlyStart", where),
                "early_finish": timestamp(task, "EarlyFinish", where),
                "late_start": timestamp(task, "LateStart", where),
                "late_finish": timestamp(task, "LateFinish", where),
                "total_float_hours": None if total_slack is None else total_slack / 600}
    return Activity(
        id=activity_id, name=text(task, "Name"),
        calendar_id=default_cal if calendar == "-1" else calendar,
        duration_hours=duration,
        remaining_hours=duration_hours(remaining, where, hours_per_day) if remaining else None,
        kind="finish_milestone" if text(task, "Milestone") == "1" else "task",
        wbs_id=wbs_id, activity_type=activity_type,
        actual_start=actual_start, actual_finish=actual_finish,
        percent_complete=number(task, "PercentComplete", where),
        constraint=constraint,
        constraint_date=timestamp(task, "ConstraintDate", where) if constraint not in (
            None, "ALAP") else None,
        baseline_start=timestamp(baseline, "Start", where) if baseline is not None else None,
        baseline_finish=timestamp(baseline, "Finish", where) if baseline is not None else None,
        baseline_duration_hours=duration_hours(text(baseline, "Duration"), where, hours_per_day)
        if baseline is not None and text(baseline, "Duration") else None,
        reported={k: v for k, v in reported.items() if v is not None})


def _relationship(successor: str, link: Element, uid_to_id: dict, name: str) -> Relationship:
    pred_uid = text(link, "PredecessorUID")
    where = f"{name}: link {pred_uid} -> {successor}"
    if pred_uid not in uid_to_id:
        raise ScheduleError(f"{where}: predecessor UID {pred_uid} is not an active task of "
                            "this project (dangling relationship)")
    kind = text(link, "Type", "1")
    if kind not in LINK_TYPES:
        raise ScheduleError(f"{where}: link Type {kind!r} is not 0-3 (FF, FS, SF, SS)")
    lag_format = int(number(link, "LagFormat", where, 7))
    if lag_format in PERCENT_FORMATS:
        raise ScheduleError(f"{where}: percent lags are not supported; give the lag as time")
    return Relationship(uid_to_id[pred_uid], successor, LINK_TYPES[kind],
                        number(link, "LinkLag", where) / 600.0,
                        lag_elapsed=lag_format in ELAPSED_FORMATS)


def _calendars(root: Element, name: str, hours_per_day: float) -> dict[str, Calendar]:
    """Calendars by UID; derived calendars inherit their base's days and exceptions."""
    elements = {text(c, "UID"): c for c in root.iterfind("Calendars/Calendar")}
    out: dict[str, Calendar] = {}

    def build(uid: str, chain: tuple = ()) -> Calendar:
        if uid in out:
            return out[uid]
        if uid in chain:
            raise ScheduleError(f"{name}: calendar {uid} derives from itself")
        cal = elements[uid]
        base_uid = text(cal, "BaseCalendarUID", "-1")
        base = build(base_uid, (*chain, uid)) if base_uid in elements else None
        week = [list(base.week[d]) if base else [] for d in range(7)]
        exceptions = dict(base.exceptions) if base else {}
        where = f"{name}: calendar {uid} ({text(cal, 'Name')})"
        for day in cal.iterfind("WeekDays/WeekDay"):
            kind = int(number(day, "DayType", where))
            times = _working_times(day, where)
            if kind == 0:  # a dated exception in the pre-2007 layout
                _add_exception(exceptions, day, times, where)
            else:
                week[_MSP_DAY_TO_WEEKDAY[kind]] = times
        for exc in cal.iterfind("Exceptions/Exception"):
            _add_exception(exceptions, exc, _working_times(exc, where), where)
        out[uid] = Calendar(uid, text(cal, "Name"), tuple(tuple(d) for d in week), exceptions,
                            hours_per_day)
        return out[uid]

    for uid in elements:
        build(uid)
    return out


def _working_times(day: Element, where: str) -> list[tuple[int, int]]:
    if text(day, "DayWorking", "0") != "1":
        return []
    out = []
    for wt in day.iterfind("WorkingTimes/WorkingTime"):
        start = clock_minutes(text(wt, "FromTime"), where)
        end = clock_minutes(text(wt, "ToTime"), where)
        out.append((start, end if end > start else end + 1440))
    return sorted(out)


def _add_exception(exceptions: dict, element: Element, times, where: str) -> None:
    first = timestamp(element.find("TimePeriod"), "FromDate", where)
    last = timestamp(element.find("TimePeriod"), "ToDate", where)
    if first is None or last is None:
        raise ScheduleError(f"{where}: exception without a TimePeriod FromDate/ToDate")
    day = first.date()
    while day <= last.date():
        exceptions[day] = tuple(times)
        day = day.fromordinal(day.toordinal() + 1)
