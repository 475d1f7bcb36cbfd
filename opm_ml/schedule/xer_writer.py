"""Write a `Schedule` as a P6 XER file that `read_xer` (and P6's importer) reads back.

Object ids are renumbered as P6 wants them (integers); activity ids (`task_code`), names,
calendars, WBS codes and everything the CPM uses are kept. `Activity.activity_type` travels
as the activity code "Activity type". Dates the CPM computed can be written as P6's early and
late dates (`cpm=`), so a tool opening the file sees the same dates we do.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd

from opm_ml.schedule.cpm import CPMResult
from opm_ml.schedule.model import Schedule
from opm_ml.schedule.p6_calendar import format_calendar_data
from opm_ml.schedule.xer import (
    CONSTRAINTS,
    DATE_FORMAT,
    ENCODING,
    KINDS,
    LAG_CALENDARS,
    RESOURCE_TYPES,
    TYPE_CODE_NAME,
)

PROJECT_ID = "1"


def _inverse(mapping: dict) -> dict:
    out = {}
    for k, v in mapping.items():
        out.setdefault(v, k)
    return out


def _d(value: datetime | None) -> str:
    return "" if value is None else value.strftime(DATE_FORMAT)


def _n(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def write_xer(schedule: Schedule, path: Path | str, cpm: CPMResult | None = None) -> Path:
    """Write `schedule` to `path` (cp1252, CRLF as P6 writes); returns the path."""
    cal_ids = {c: str(i) for i, c in enumerate(schedule.calendars, start=1)}
    wbs_ids = {w.id: str(i) for i, w in enumerate(schedule.wbs, start=100)}
    task_ids = {a.id: str(i) for i, a in enumerate(schedule.activities, start=1000)}
    rsrc_ids = {r.id: str(i) for i, r in enumerate(schedule.resources, start=1)}
    role_ids = {r.id: str(i) for i, r in enumerate(schedule.roles, start=1)}
    types = sorted({a.activity_type for a in schedule.activities if a.activity_type})
    type_ids = {t: str(i) for i, t in enumerate(types, start=1)}
    lines = [f"ERMHDR\t8.4\t{datetime.now():%Y-%m-%d}\tProject\tadmin\topm-ml\tdbxDatabaseNoName"
             "\tProject Management\tUSD"]

    def table(name: str, fields: list[str], rows: list[list[str]]) -> None:
        lines.append(f"%T\t{name}")
        lines.append("%F\t" + "\t".join(fields))
        lines.extend("%R\t" + "\t".join(row) for row in rows)

    options = _inverse(LAG_CALENDARS)
    table("PROJECT", ["proj_id", "proj_short_name", "clndr_id", "last_recalc_date",
                      "plan_start_date", "plan_end_date"],
          [[PROJECT_ID, schedule.name, cal_ids.get(schedule.default_calendar_id, ""),
            _d(schedule.data_date), _d(schedule.planned_start), _d(schedule.must_finish_by)]])
    table("CALENDAR", ["clndr_id", "default_flag", "clndr_name", "proj_id", "base_clndr_id",
                       "clndr_type", "day_hr_cnt", "clndr_data"],
          [[cal_ids[c.id], "Y" if c.id == schedule.default_calendar_id else "N", c.name, "",
            "", "CA_Base", _n(c.hours_per_day), format_calendar_data(c)]
           for c in schedule.calendars.values()])
    table("SCHEDOPTIONS", ["schedoptions_id", "proj_id", "sched_retained_logic",
                           "sched_progress_override", "sched_calendar_on_relationship_lag"],
          [["1", PROJECT_ID, "Y" if schedule.retained_logic else "N",
            "N" if schedule.retained_logic else "Y", options[schedule.lag_calendar]]])
    table("PROJWBS", ["wbs_id", "proj_id", "wbs_short_name", "wbs_name", "parent_wbs_id"],
          [[wbs_ids[w.id], PROJECT_ID, w.code, w.name, wbs_ids.get(w.parent_id, "")]
           for w in schedule.wbs])
    table("ROLES", ["role_id", "role_name", "role_short_name"],
          [[role_ids[r.id], r.name, r.name] for r in schedule.roles])
    table("RSRC", ["rsrc_id", "rsrc_name", "rsrc_short_name", "rsrc_type", "clndr_id",
                   "role_id"],
          [[rsrc_ids[r.id], r.name, r.name, _inverse(RESOURCE_TYPES).get(r.type, "RT_Labor"),
            cal_ids.get(r.calendar_id, ""), role_ids.get(r.role_id, "")]
           for r in schedule.resources])
    table("ACTVTYPE", ["actv_code_type_id", "actv_code_type", "proj_id",
                       "actv_code_type_scope"],
          [["1", TYPE_CODE_NAME, PROJECT_ID, "AS_Project"]] if types else [])
    table("ACTVCODE", ["actv_code_id", "actv_code_type_id", "actv_code_name", "short_name"],
          [[type_ids[t], "1", t, t] for t in types])
    table("TASK", TASK_FIELDS, [_task_row(a, task_ids, cal_ids, wbs_ids, cpm)
                                for a in schedule.activities])
    table("TASKPRED", ["task_pred_id", "task_id", "pred_task_id", "proj_id", "pred_proj_id",
                       "pred_type", "lag_hr_cnt"],
          [[str(i), task_ids[r.successor], task_ids[r.predecessor], PROJECT_ID, PROJECT_ID,
            f"PR_{r.type}", _n(r.lag_hours)]
           for i, r in enumerate(schedule.relationships, start=1)])
    table("TASKACTV", ["task_id", "actv_code_type_id", "actv_code_id", "proj_id"],
          [[task_ids[a.id], "1", type_ids[a.activity_type], PROJECT_ID]
           for a in schedule.activities if a.activity_type])
    table("TASKRSRC", ["taskrsrc_id", "task_id", "proj_id", "rsrc_id", "role_id", "target_qty",
                       "remain_qty", "act_reg_qty"],
          [[str(i), task_ids[s.activity_id], PROJECT_ID, rsrc_ids.get(s.resource_id, ""),
            role_ids.get(s.role_id, ""), _n(s.planned_units), _n(s.remaining_units),
            _n(s.actual_units)] for i, s in enumerate(schedule.assignments, start=1)])
    lines.append("%E")
    path = Path(path)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(ENCODING, errors="replace"))
    return path


TASK_FIELDS = ["task_id", "proj_id", "wbs_id", "clndr_id", "phys_complete_pct",
               "complete_pct_type", "task_type", "status_code", "task_code", "task_name",
               "total_float_hr_cnt", "remain_drtn_hr_cnt", "target_drtn_hr_cnt", "cstr_date",
               "act_start_date", "act_end_date", "late_start_date", "late_end_date",
               "early_start_date", "early_end_date", "target_start_date", "target_end_date",
               "cstr_type", "cstr_date2", "cstr_type2"]


def _task_row(a, task_ids, cal_ids, wbs_ids, cpm: CPMResult | None) -> list[str]:
    status = {"not_started": "TK_NotStart", "in_progress": "TK_Active",
              "complete": "TK_Complete"}[a.status]
    dates = ["", "", "", "", ""]
    if cpm is not None and a.id in cpm.frame.index:
        row = cpm.frame.loc[a.id]
        stamps = [None if pd.isna(row[k]) else row[k].to_pydatetime()
                  for k in ("late_start", "late_finish", "early_start", "early_finish")]
        total_float = row["total_float_hours"]
        dates = ["" if pd.isna(total_float) else _n(total_float), *map(_d, stamps)]
    constraint = _inverse(CONSTRAINTS)
    return [task_ids[a.id], PROJECT_ID, wbs_ids.get(a.wbs_id, ""), cal_ids[a.calendar_id],
            _n(a.percent_complete), "CP_Phys", _inverse(KINDS)[a.kind], status, a.id, a.name,
            dates[0], _n(a.remaining), _n(a.duration_hours), _d(a.constraint_date),
            _d(a.actual_start), _d(a.actual_finish), dates[1], dates[2], dates[3], dates[4],
            _d(a.baseline_start), _d(a.baseline_finish), constraint.get(a.constraint, ""),
            _d(a.constraint2_date), constraint.get(a.constraint2, "")]
