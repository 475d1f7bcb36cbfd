"""Write a `Schedule` as MS Project XML (MSPDI) that `read_mspdi` and MS Project read back.

WBS nodes become summary tasks with the activities beneath them (outline levels); activity
ids and types travel in text fields aliased "Activity ID" and "Activity type". Tasks are
auto-scheduled; lags are written in tenths of a minute as MS Project stores them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

from opm_ml.schedule.model import Activity, Schedule
from opm_ml.schedule.mspdi import CONSTRAINTS, ID_ALIAS, LINK_TYPES, TYPE_ALIAS

NAMESPACE = "http://schemas.microsoft.com/project"
TEXT_FIELDS = {ID_ALIAS: ("188743731", "Text1"), TYPE_ALIAS: ("188743734", "Text2")}
_WEEKDAY_TO_MSP = {0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 7, 6: 1}


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def _duration(hours: float) -> str:
    minutes = round(hours * 60, 6)
    whole = int(minutes // 60)
    rest = minutes - whole * 60
    return f"PT{whole}H{rest:g}M0S"


def _add(parent: Element, tag: str, value) -> Element:
    child = SubElement(parent, tag)
    child.text = str(value)
    return child


def _clock(minutes: int) -> str:
    return f"{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"


def write_mspdi(schedule: Schedule, path: Path | str) -> Path:
    """Write `schedule` as MSPDI XML; returns the path."""
    default = schedule.calendars[schedule.default_calendar_id]
    root = Element("Project", xmlns=NAMESPACE)
    for tag, value in (("SaveVersion", 14), ("Name", schedule.name), ("Title", schedule.name),
                       ("ScheduleFromStart", 1), ("StartDate", _iso(schedule.data_date)),
                       ("StatusDate", _iso(schedule.data_date)),
                       ("CalendarUID", _uid(schedule.default_calendar_id, schedule)),
                       ("MinutesPerDay", round(default.hours_per_day * 60)),
                       ("NewTasksAreManual", 0)):
        _add(root, tag, value)
    attributes = SubElement(root, "ExtendedAttributes")
    for alias, (field_id, field_name) in TEXT_FIELDS.items():
        attribute = SubElement(attributes, "ExtendedAttribute")
        _add(attribute, "FieldID", field_id)
        _add(attribute, "FieldName", field_name)
        _add(attribute, "Alias", alias)
    calendars = SubElement(root, "Calendars")
    for cal in schedule.calendars.values():
        _calendar(SubElement(calendars, "Calendar"), cal, _uid(cal.id, schedule))
    tasks = SubElement(root, "Tasks")
    uids = {a.id: i for i, a in enumerate(schedule.activities, start=1)}
    next_uid = len(uids) + 1
    children: dict[str | None, list] = {}
    known = {w.id for w in schedule.wbs}
    for node in schedule.wbs:  # a parent outside the file (P6's EPS) makes a top-level node
        children.setdefault(node.parent_id if node.parent_id in known else None, []).append(node)
    members: dict[str | None, list[Activity]] = {}
    for a in schedule.activities:
        members.setdefault(a.wbs_id if a.wbs_id in known else None, []).append(a)
    by_succ: dict[str, list] = {}
    for r in schedule.relationships:
        by_succ.setdefault(r.successor, []).append(r)

    def emit(wbs_id: str | None, level: int) -> None:
        nonlocal next_uid
        for a in members.get(wbs_id, []):
            _task(SubElement(tasks, "Task"), a, uids, level, by_succ.get(a.id, []), schedule)
        for node in children.get(wbs_id, []):
            task = SubElement(tasks, "Task")
            for tag, value in (("UID", next_uid), ("ID", next_uid), ("Name", node.name),
                               ("WBS", node.code), ("OutlineLevel", level), ("Summary", 1)):
                _add(task, tag, value)
            next_uid += 1
            emit(node.id, level + 1)

    emit(None, 1)
    resources = SubElement(root, "Resources")
    res_uids = {r.id: i for i, r in enumerate(schedule.resources, start=1)}
    for r in schedule.resources:
        element = SubElement(resources, "Resource")
        _add(element, "UID", res_uids[r.id])
        _add(element, "Name", r.name)
        _add(element, "Type", {"material": 0, "labor": 1, "nonlabor": 2}.get(r.type, 1))
    assignments = SubElement(root, "Assignments")
    for i, s in enumerate(schedule.assignments, start=1):
        if s.resource_id not in res_uids:
            continue
        element = SubElement(assignments, "Assignment")
        for tag, value in (("UID", i), ("TaskUID", uids[s.activity_id]),
                           ("ResourceUID", res_uids[s.resource_id]),
                           ("Work", _duration(s.planned_units)),
                           ("RemainingWork", _duration(s.remaining_units)),
                           ("ActualWork", _duration(s.actual_units))):
            _add(element, tag, value)
    tree = ElementTree(root)
    indent(tree)
    path = Path(path)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _uid(calendar_id: str, schedule: Schedule) -> int:
    return list(schedule.calendars).index(calendar_id) + 1


def _calendar(element: Element, cal, uid: int) -> None:
    for tag, value in (("UID", uid), ("Name", cal.name), ("IsBaseCalendar", 1),
                       ("BaseCalendarUID", -1)):
        _add(element, tag, value)
    days = SubElement(element, "WeekDays")
    for weekday in sorted(range(7), key=lambda d: _WEEKDAY_TO_MSP[d]):
        day = SubElement(days, "WeekDay")
        _add(day, "DayType", _WEEKDAY_TO_MSP[weekday])
        _times(day, cal.week[weekday])
    exceptions = SubElement(element, "Exceptions")
    for when, intervals in sorted(cal.exceptions.items()):
        exc = SubElement(exceptions, "Exception")
        period = SubElement(exc, "TimePeriod")
        _add(period, "FromDate", f"{when:%Y-%m-%d}T00:00:00")
        _add(period, "ToDate", f"{when:%Y-%m-%d}T23:59:00")
        _add(exc, "Occurrences", 1)
        _add(exc, "Type", 1)
        _times(exc, intervals)


def _times(parent: Element, intervals) -> None:
    _add(parent, "DayWorking", 1 if intervals else 0)
    if intervals:
        times = SubElement(parent, "WorkingTimes")
        for start, end in intervals:
            wt = SubElement(times, "WorkingTime")
            _add(wt, "FromTime", _clock(start))
            _add(wt, "ToTime", _clock(end))


def _task(task: Element, a: Activity, uids: dict, level: int, links: list,
          schedule: Schedule) -> None:
    constraint = {v: k for k, v in CONSTRAINTS.items()}
    fields = [("UID", uids[a.id]), ("ID", uids[a.id]), ("Name", a.name), ("Active", 1),
              ("Manual", 0), ("OutlineLevel", level), ("Summary", 0),
              ("Milestone", 1 if a.is_milestone else 0),
              ("Duration", _duration(a.duration_hours)), ("DurationFormat", 7),
              ("RemainingDuration", _duration(a.remaining)),
              ("PercentComplete", round(a.percent_complete)),
              ("CalendarUID", _uid(a.calendar_id, schedule)),
              ("ConstraintType", constraint.get(a.constraint, 0))]
    if a.constraint_date is not None:
        fields.append(("ConstraintDate", _iso(a.constraint_date)))
    for tag, value in (("ActualStart", a.actual_start), ("ActualFinish", a.actual_finish)):
        if value is not None:
            fields.append((tag, _iso(value)))
    for tag, value in fields:
        _add(task, tag, value)
    kinds = {v: k for k, v in LINK_TYPES.items()}
    for r in links:
        link = SubElement(task, "PredecessorLink")
        _add(link, "PredecessorUID", uids[r.predecessor])
        _add(link, "Type", kinds[r.type])
        _add(link, "LinkLag", round(r.lag_hours * 600))
        _add(link, "LagFormat", 8 if r.lag_elapsed else 7)
    for alias, value in ((ID_ALIAS, a.id), (TYPE_ALIAS, a.activity_type)):
        if value:
            attribute = SubElement(task, "ExtendedAttribute")
            _add(attribute, "FieldID", TEXT_FIELDS[alias][0])
            _add(attribute, "Value", value)
    if a.baseline_start is not None:
        baseline = SubElement(task, "Baseline")
        _add(baseline, "Number", 0)
        _add(baseline, "Start", _iso(a.baseline_start))
        if a.baseline_finish is not None:
            _add(baseline, "Finish", _iso(a.baseline_finish))
        if a.baseline_duration_hours is not None:
            _add(baseline, "Duration", _duration(a.baseline_duration_hours))
