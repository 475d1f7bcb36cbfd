"""Primavera P6 XML (PMXML, `<APIBusinessObjects>`) files: read into a `Schedule`.

P6 exports XML as well as XER; the same fields under other names. Durations and lags are
hours; work times are inclusive minutes (`07:00`-`11:59` is 07:00-12:00). The first
`<Project>` is read, with the global calendars and those inside the project.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

from opm_ml.schedule.model import (
    Activity,
    Assignment,
    Calendar,
    Relationship,
    Resource,
    Role,
    Schedule,
    ScheduleError,
    WBSNode,
)
from opm_ml.schedule.xml_io import clock_minutes, number, read_xml, text, timestamp

DAYS = {"Monday": 0, "Tuesday": 1, "Wednesday": 2, "Thursday": 3, "Friday": 4, "Saturday": 5,
        "Sunday": 6}
LINK_TYPES = {"Finish to Start": "FS", "Start to Start": "SS", "Finish to Finish": "FF",
              "Start to Finish": "SF"}
CONSTRAINTS = {"Start On or After": "SNET", "Finish On or After": "FNET",
               "Start On or Before": "SNLT", "Finish On or Before": "FNLT", "Start On": "SO",
               "Finish On": "FO", "Mandatory Start": "MSO", "Mandatory Finish": "MFO",
               "As Late As Possible": "ALAP"}
KINDS = {"Start Milestone": "start_milestone", "Finish Milestone": "finish_milestone",
         "Level of Effort": "level_of_effort", "WBS Summary": "level_of_effort"}
LAG_CALENDARS = {"Predecessor Activity Calendar": "predecessor",
                 "Successor Activity Calendar": "successor", "24 Hour Calendar": "24h",
                 "Project Default Calendar": "project"}


def read_pmxml(path: Path | str, data: bytes | None = None) -> Schedule:
    """Read the first project of a P6 XML export; or of its bytes `data`, `path` naming it."""
    path = Path(path)
    root = read_xml(path, data)
    if root.tag != "APIBusinessObjects":
        raise ScheduleError(f"{path.name}: not a P6 XML file (root <{root.tag}>)")
    project = root.find("Project")
    if project is None:
        raise ScheduleError(f"{path.name}: no <Project> element; nothing to schedule")
    where = f"{path.name} project {text(project, 'Id')}"
    data_date = timestamp(project, "DataDate", where) or timestamp(project, "PlannedStartDate",
                                                                   where)
    if data_date is None:
        raise ScheduleError(f"{where}: neither DataDate nor PlannedStartDate")
    calendars = {}
    for cal in [*root.iterfind("Calendar"), *project.iterfind("Calendar")]:
        calendars[text(cal, "ObjectId")] = _calendar(cal, path.name)
    default = text(project, "ActivityDefaultCalendarObjectId") or next(
        (c for c in calendars), "")
    activities, by_object = [], {}
    for act in project.iterfind("Activity"):
        a = _activity(act, default, f"{path.name} activity {text(act, 'Id')}")
        by_object[text(act, "ObjectId")] = a.id
        activities.append(a)
    relationships = []
    for rel in [*project.iterfind("Relationship"), *root.iterfind("Relationship")]:
        pred = by_object.get(text(rel, "PredecessorActivityObjectId"))
        succ = by_object.get(text(rel, "SuccessorActivityObjectId"))
        rwhere = f"{path.name} relationship {text(rel, 'ObjectId')}"
        if pred is None or succ is None:
            raise ScheduleError(f"{rwhere}: an end is not an activity of the project "
                                "(dangling relationship)")
        kind = text(rel, "Type", "Finish to Start")
        if kind not in LINK_TYPES:
            raise ScheduleError(f"{rwhere}: Type {kind!r} is not one of {', '.join(LINK_TYPES)}")
        relationships.append(Relationship(pred, succ, LINK_TYPES[kind],
                                          number(rel, "Lag", rwhere)))
    assignments = [Assignment(by_object[text(a, "ActivityObjectId")],
                              text(a, "ResourceObjectId") or None,
                              text(a, "RoleObjectId") or None,
                              number(a, "PlannedUnits", "assignment"),
                              number(a, "RemainingUnits", "assignment"),
                              number(a, "ActualUnits", "assignment"))
                   for a in project.iterfind("ResourceAssignment")
                   if text(a, "ActivityObjectId") in by_object]
    return Schedule(
        name=text(project, "Id") or path.stem, source_format="pmxml", data_date=data_date,
        default_calendar_id=default, calendars=calendars, activities=activities,
        relationships=relationships,
        wbs=[WBSNode(text(w, "ObjectId"), text(w, "Code"), text(w, "Name"),
                     text(w, "ParentObjectId") or None) for w in project.iterfind("WBS")],
        resources=[Resource(text(r, "ObjectId"), text(r, "Name"),
                            text(r, "ResourceType", "Labor").lower().replace("-", ""),
                            text(r, "CalendarObjectId") or None,
                            text(r, "PrimaryRoleObjectId") or None)
                   for r in root.iterfind("Resource")],
        roles=[Role(text(r, "ObjectId"), text(r, "Name")) for r in root.iterfind("Role")],
        assignments=assignments,
        lag_calendar=LAG_CALENDARS.get(text(project, "RelationshipLagCalendar"), "predecessor"),
        retained_logic=text(project, "OutOfSequenceScheduleType",
                            "Retained Logic") != "Progress Override",
        must_finish_by=timestamp(project, "MustFinishByDate", where),
        planned_start=timestamp(project, "PlannedStartDate", where))


def _activity(act: Element, default_cal: str, where: str) -> Activity:
    status = text(act, "Status", "Not Started")
    start = timestamp(act, "ActualStartDate", where) if status != "Not Started" else None
    finish = timestamp(act, "ActualFinishDate", where) if status == "Completed" else None
    constraint = CONSTRAINTS.get(text(act, "PrimaryConstraintType"))
    constraint2 = CONSTRAINTS.get(text(act, "SecondaryConstraintType"))
    reported = {
        "early_start": timestamp(act, "EarlyStartDate", where)
        or timestamp(act, "RemainingEarlyStartDate", where),
        "early_finish": timestamp(act, "EarlyFinishDate", where)
        or timestamp(act, "RemainingEarlyFinishDate", where),
        "late_start": timestamp(act, "LateStartDate", where)
        or timestamp(act, "RemainingLateStartDate", where),
        "late_finish": timestamp(act, "LateFinishDate", where)
        or timestamp(act, "RemainingLateFinishDate", where),
        "total_float_hours": number(act, "TotalFloat", where, None)}
    return Activity(
        id=text(act, "Id") or text(act, "ObjectId"), name=text(act, "Name"),
        calendar_id=text(act, "CalendarObjectId") or default_cal,
        duration_hours=number(act, "PlannedDuration", where),
        remaining_hours=number(act, "RemainingDuration", where, None),
        kind=KINDS.get(text(act, "Type"), "task"), wbs_id=text(act, "WBSObjectId") or None,
        actual_start=start, actual_finish=finish,
        percent_complete=100 * number(act, "PercentComplete", where),
        constraint=constraint,
        constraint_date=timestamp(act, "PrimaryConstraintDate", where) if constraint else None,
        constraint2=constraint2,
        constraint2_date=timestamp(act, "SecondaryConstraintDate", where)
        if constraint2 else None,
        baseline_start=timestamp(act, "PlannedStartDate", where),
        baseline_finish=timestamp(act, "PlannedFinishDate", where),
        baseline_duration_hours=number(act, "PlannedDuration", where),
        reported={k: v for k, v in reported.items() if v is not None})


def _calendar(cal: Element, name: str) -> Calendar:
    cid = text(cal, "ObjectId")
    where = f"{name}: calendar {cid} ({text(cal, 'Name')})"
    week: list[tuple] = [()] * 7
    for day in cal.iterfind("StandardWorkWeek/StandardWorkHours"):
        label = text(day, "DayOfWeek")
        if label not in DAYS:
            raise ScheduleError(f"{where}: DayOfWeek {label!r} is not a weekday name")
        week[DAYS[label]] = _work_times(day, where)
    exceptions = {}
    for exc in cal.iterfind("HolidayOrExceptions/HolidayOrException"):
        day = timestamp(exc, "Date", where)
        if day is None:
            raise ScheduleError(f"{where}: a holiday or exception without a Date")
        exceptions[day.date()] = _work_times(exc, where)
    return Calendar(cid, text(cal, "Name"), tuple(week), exceptions,
                    number(cal, "HoursPerDay", where, 8.0))


def _work_times(day: Element, where: str) -> tuple:
    """P6 XML finish times are the last working minute: 11:59 closes at 12:00."""
    out = []
    for wt in day.iterfind("WorkTime"):
        if not text(wt, "Start"):  # <WorkTime xsi:nil="true"/>: a day off
            continue
        start = clock_minutes(text(wt, "Start"), where)
        end = clock_minutes(text(wt, "Finish"), where) + 1
        out.append((start, end if end > start else end + 1440))
    return tuple(sorted(out))
