"""Primavera P6 XER files: read into a `Schedule`, and write one back.

XER is tab-separated text (cp1252): `ERMHDR` header, then per table `%T name`, `%F` field
names and `%R` rows, closed by `%E`. Durations and lags are hours; dates `YYYY-MM-DD HH:MM`.
The first project in the file is read. A calendar whose data is corrupt is dropped with a
warning (P6 itself tolerates it) unless an activity or the project uses it: then it is an
error. Everything else that would make the network unusable is a `ScheduleError` naming the
table, row and field.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

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
from opm_ml.schedule.p6_calendar import parse_calendar_data
from opm_ml.schedule.xml_io import read_bytes

ENCODING = "cp1252"
DATE_FORMAT = "%Y-%m-%d %H:%M"
CONSTRAINTS = {"CS_MSOA": "SNET", "CS_MEOA": "FNET", "CS_MSOB": "SNLT", "CS_MEOB": "FNLT",
               "CS_MSO": "SO", "CS_MEO": "FO", "CS_MANDSTART": "MSO", "CS_MANDFIN": "MFO",
               "CS_ALAP": "ALAP"}
KINDS = {"TT_Task": "task", "TT_Rsrc": "task", "TT_Mile": "start_milestone",
         "TT_FinMile": "finish_milestone", "TT_LOE": "level_of_effort",
         "TT_WBS": "level_of_effort"}
LAG_CALENDARS = {"rcal_Predecessor": "predecessor", "rcal_Successor": "successor",
                 "rcal_24Hour": "24h", "rcal_ProjDefault": "project"}
RESOURCE_TYPES = {"RT_Labor": "labor", "RT_Equip": "nonlabor", "RT_Mat": "material"}
TYPE_CODE_NAME = "Activity type"  # the activity code that carries `Activity.activity_type`

Tables = dict[str, list[dict[str, str]]]


def read_xer(path: Path | str, data: bytes | None = None) -> Schedule:
    """Read the first project of a P6 XER file; or of its bytes `data`, `path` naming it."""
    path = Path(path)
    text = (read_bytes(path) if data is None else data).decode(ENCODING, errors="replace")
    return schedule_from_tables(parse_tables(text, path.name), path.stem)


def parse_tables(text: str, where: str = "XER") -> Tables:
    """All tables of an XER text as lists of field->value dicts."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or not lines[0].startswith("ERMHDR"):
        raise ScheduleError(f"{where}: not an XER file (it does not start with ERMHDR)")
    tables: Tables = {}
    table = fields = None
    ended = False
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        tag, _, rest = line.partition("\t")
        if tag == "%T":
            table, fields = rest.strip(), None
            tables[table] = []
        elif tag == "%F":
            fields = rest.split("\t")
        elif tag == "%R":
            if table is None or fields is None:
                raise ScheduleError(f"{where} line {number}: a %R row before its %T/%F header")
            values = rest.split("\t")
            if len(values) > len(fields):
                raise ScheduleError(f"{where} line {number}: table {table} row has "
                                    f"{len(values)} values for {len(fields)} fields")
            tables[table].append(dict(zip(fields, values + [""] * (len(fields) - len(values)))))
        elif tag == "%E":
            ended = True
            break
        else:
            raise ScheduleError(f"{where} line {number}: unexpected line start {tag[:12]!r}")
    if not ended:
        raise ScheduleError(f"{where}: the file is truncated (no %E end-of-file line)")
    return tables


def _date(row: dict, key: str, where: str) -> datetime | None:
    value = row.get(key, "").strip()
    if not value:
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        raise ScheduleError(f"{where}: {key} {value!r} is not a date "
                            "(YYYY-MM-DD HH:MM)") from None


def _number(row: dict, key: str, where: str, default: float | None = 0.0) -> float | None:
    value = row.get(key, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ScheduleError(f"{where}: {key} {value!r} is not a number") from None


def schedule_from_tables(tables: Tables, name: str) -> Schedule:
    """Build the `Schedule` of the first PROJECT row."""
    projects = tables.get("PROJECT", [])
    if not projects:
        raise ScheduleError(f"{name}: no PROJECT table row; nothing to schedule")
    project = projects[0]
    pid = project["proj_id"]
    warnings = [f"{len(projects)} projects in the file; read the first "
                f"({project.get('proj_short_name')})"] if len(projects) > 1 else []
    where = f"PROJECT {project.get('proj_short_name', pid)}"
    data_date = _date(project, "last_recalc_date", where) or _date(project, "plan_start_date",
                                                                    where)
    if data_date is None:
        raise ScheduleError(f"{where}: neither last_recalc_date (data date) nor plan_start_date")
    tasks = [t for t in tables.get("TASK", []) if t.get("proj_id") == pid]
    calendars = _calendars(tables.get("CALENDAR", []), warnings,
                           used={t["clndr_id"] for t in tasks} | {project.get("clndr_id", "")})
    options = next((o for o in tables.get("SCHEDOPTIONS", []) if o.get("proj_id") == pid), {})
    codes = _activity_codes(tables)
    activities, by_task_id = [], {}
    for row in tasks:
        a = _activity(row, codes.get(row["task_id"], ""))
        by_task_id[row["task_id"]] = a.id
        activities.append(a)
    relationships = []
    for row in tables.get("TASKPRED", []):
        if row.get("proj_id", pid) != pid and row.get("pred_proj_id", pid) != pid:
            continue
        rwhere = f"TASKPRED {row.get('task_pred_id')}"
        pred, succ = by_task_id.get(row["pred_task_id"]), by_task_id.get(row["task_id"])
        if pred is None or succ is None:
            missing = row["pred_task_id"] if pred is None else row["task_id"]
            raise ScheduleError(f"{rwhere}: task_id {missing} is not a TASK of this project "
                                "(dangling relationship)")
        kind = row.get("pred_type", "PR_FS")
        if kind not in ("PR_FS", "PR_SS", "PR_FF", "PR_SF"):
            raise ScheduleError(f"{rwhere}: pred_type {kind!r} is not PR_FS/PR_SS/PR_FF/PR_SF")
        relationships.append(Relationship(pred, succ, kind[3:], _number(row, "lag_hr_cnt",
                                                                        rwhere)))
    rsrc_ids = {r["rsrc_id"] for r in tables.get("RSRC", [])}
    return Schedule(
        name=project.get("proj_short_name") or name, source_format="xer", data_date=data_date,
        default_calendar_id=project.get("clndr_id") or next(iter(calendars), ""),
        calendars=calendars, activities=activities, relationships=relationships,
        wbs=[WBSNode(w["wbs_id"], w["wbs_short_name"], w["wbs_name"],
                     w.get("parent_wbs_id") or None)
             for w in tables.get("PROJWBS", []) if w.get("proj_id") == pid],
        resources=[Resource(r["rsrc_id"], r.get("rsrc_name", ""),
                            RESOURCE_TYPES.get(r.get("rsrc_type", ""), "labor"),
                            r.get("clndr_id") or None, r.get("role_id") or None)
                   for r in tables.get("RSRC", [])],
        roles=[Role(r["role_id"], r.get("role_name", "")) for r in tables.get("ROLES", [])],
        assignments=[Assignment(by_task_id[r["task_id"]],
                                r.get("rsrc_id") if r.get("rsrc_id") in rsrc_ids else None,
                                r.get("role_id") or None,
                                _number(r, "target_qty", "TASKRSRC"),
                                _number(r, "remain_qty", "TASKRSRC"),
                                _number(r, "act_reg_qty", "TASKRSRC"))
                     for r in tables.get("TASKRSRC", []) if r.get("task_id") in by_task_id],
        lag_calendar=LAG_CALENDARS.get(options.get("sched_calendar_on_relationship_lag", ""),
                                       "predecessor"),
        retained_logic=options.get("sched_progress_override", "N") != "Y",
        must_finish_by=_date(project, "plan_end_date", where),
        planned_start=_date(project, "plan_start_date", where), warnings=warnings)


def _calendars(rows: list[dict], warnings: list[str], used: set[str]) -> dict[str, Calendar]:
    """Calendars by id; base calendars first so derived ones can inherit their week."""
    out: dict[str, Calendar] = {}
    pending = list(rows)
    for _ in range(len(rows) + 1):
        later = []
        for row in pending:
            base_id = row.get("base_clndr_id") or None
            if base_id and base_id not in out and any(r["clndr_id"] == base_id for r in pending):
                later.append(row)
                continue
            cid = row["clndr_id"]
            try:
                out[cid] = parse_calendar_data(
                    cid, row.get("clndr_name", ""), row.get("clndr_data", ""),
                    _number(row, "day_hr_cnt", f"CALENDAR {cid}", 8.0), out.get(base_id))
            except ScheduleError as err:
                if cid in used:
                    raise
                warnings.append(f"{err}; no activity uses it, so it was skipped")
        pending = later
    return out


def _activity_codes(tables: Tables) -> dict[str, str]:
    """task_id -> value of the activity code named `TYPE_CODE_NAME` (if the file has it)."""
    types = {t["actv_code_type_id"] for t in tables.get("ACTVTYPE", [])
             if t.get("actv_code_type") == TYPE_CODE_NAME}
    values = {c["actv_code_id"]: c.get("short_name", "") for c in tables.get("ACTVCODE", [])
              if c.get("actv_code_type_id") in types}
    return {t["task_id"]: values[t["actv_code_id"]] for t in tables.get("TASKACTV", [])
            if t.get("actv_code_id") in values}


def _activity(row: dict, activity_type: str) -> Activity:
    code = row.get("task_code") or row["task_id"]
    where = f"TASK {code}"
    duration = _number(row, "target_drtn_hr_cnt", where)
    status = row.get("status_code", "TK_NotStart")
    start, finish = _date(row, "act_start_date", where), _date(row, "act_end_date", where)
    if status != "TK_Complete":
        finish = None
    if status == "TK_NotStart":
        start = None
    remaining = _number(row, "remain_drtn_hr_cnt", where, None)
    pct_type = row.get("complete_pct_type", "CP_Drtn")
    if pct_type == "CP_Phys":
        pct = _number(row, "phys_complete_pct", where)
    elif status == "TK_Complete":
        pct = 100.0
    else:
        pct = 100.0 * (1 - (remaining if remaining is not None else duration) / duration) \
            if duration else 0.0
    kind = row.get("task_type", "TT_Task")
    reported = {
        "early_start": _date(row, "early_start_date", where) or _date(row, "restart_date", where),
        "early_finish": _date(row, "early_end_date", where) or _date(row, "reend_date", where),
        "late_start": _date(row, "late_start_date", where)
        or _date(row, "rem_late_start_date", where),
        "late_finish": _date(row, "late_end_date", where)
        or _date(row, "rem_late_end_date", where),
        "total_float_hours": _number(row, "total_float_hr_cnt", where, None)}
    return Activity(
        id=code, name=row.get("task_name", ""), calendar_id=row.get("clndr_id", ""),
        duration_hours=duration, remaining_hours=remaining, kind=KINDS.get(kind, "task"),
        wbs_id=row.get("wbs_id") or None, activity_type=activity_type,
        actual_start=start, actual_finish=finish, percent_complete=max(0.0, min(100.0, pct)),
        constraint=_constraint(row.get("cstr_type", ""), where),
        constraint_date=_date(row, "cstr_date", where),
        constraint2=_constraint(row.get("cstr_type2", ""), where),
        constraint2_date=_date(row, "cstr_date2", where),
        baseline_start=_date(row, "target_start_date", where),
        baseline_finish=_date(row, "target_end_date", where),
        baseline_duration_hours=duration,
        reported={k: v for k, v in reported.items() if v is not None})


def _constraint(value: str, where: str) -> str | None:
    if not value:
        return None
    if value not in CONSTRAINTS:
        raise ScheduleError(f"{where}: constraint type {value!r} is not one of "
                            f"{', '.join(CONSTRAINTS)}")
    return CONSTRAINTS[value]
