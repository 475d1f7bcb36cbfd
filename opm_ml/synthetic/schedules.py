"""Synthetic activity networks with planned and actual activity durations from documented causes.

Each project is first drawn at project level exactly as `generate_history` draws it (intake
fields, hidden trouble factor T, and its project-level schedule outcome). Its network is then
a sequence of WBS areas (phases), each a small web of activities closed by a milestone:

    log(actual / planned) of activity j in project p =
        s_p                                   project risk factors: schedule linear predictor
                                              + trouble loading x T (`outcomes.linear_predictor`)
      + TYPE_BASE[type_j]                     activity type (approvals and procurement slip most)
      + DURATION_SLOPE x log(planned_j / median of its type)   short tasks overrun relatively more
      + FLOAT_SLOPE x log1p(total float_j in days)            Parkinson: float gets used
      + LOAD_SLOPE x (resource load_j - 1)    concurrent work on the same resource
      + area_effect[p, area_j] ~ N(0, AREA_SD)   a WBS area of a project runs hot or cold
      + TYPE_NOISE[type_j] x N(0, 1)
      + [disruption] x log(1 + Lomax(DISRUPTION_SCALE, DISRUPTION_ALPHA)),
        P(disruption) = expit(logit(TYPE_DISRUPTION[type_j]) + DISRUPTION_TROUBLE x T)

so a project's risk factors raise all its activities' ratios, as they raise its project-level
delay. Planned durations are scaled so the planned critical path matches the project's
planned duration. Resource load and float come from the planned CPM (`run_cpm`). Everything
is seeded; each project's draws are vectorised over its activities. See docs/schedule-risk.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from opm_ml.schedule.activity_features import activity_features
from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.model import (
    Activity,
    Assignment,
    Calendar,
    Relationship,
    Resource,
    Schedule,
    WBSNode,
    standard_calendar,
)
from opm_ml.synthetic.intake import sample_intake
from opm_ml.synthetic.outcomes import (
    linear_predictor,
    outcome_drivers,
    sample_outcomes,
    trouble_loading,
)

ACTIVITY_TYPES = ("design", "procurement", "build", "test", "approval")
TYPE_BASE = dict(zip(ACTIVITY_TYPES, (0.02, 0.08, 0.03, 0.05, 0.10)))
TYPE_NOISE = dict(zip(ACTIVITY_TYPES, (0.20, 0.25, 0.18, 0.22, 0.30)))
TYPE_DISRUPTION = dict(zip(ACTIVITY_TYPES, (0.03, 0.06, 0.04, 0.05, 0.08)))
TYPE_MEDIAN_DAYS = dict(zip(ACTIVITY_TYPES, (10.0, 20.0, 15.0, 8.0, 5.0)))
DURATION_SLOPE = -0.05
FLOAT_SLOPE = 0.03
LOAD_SLOPE = 0.06
AREA_SD = 0.06
DISRUPTION_TROUBLE = 0.5
DISRUPTION_SCALE, DISRUPTION_ALPHA = 0.4, 2.5
RATIO_BOUNDS = (0.3, 6.0)
# Phases in order, with their activity-type mix (ACTIVITY_TYPES order).
PHASES = {"initiation": (0.3, 0.0, 0.0, 0.1, 0.6), "design": (0.7, 0.05, 0.0, 0.1, 0.15),
          "procurement": (0.1, 0.7, 0.1, 0.0, 0.1), "delivery": (0.05, 0.05, 0.75, 0.1, 0.05),
          "testing": (0.05, 0.0, 0.15, 0.7, 0.1), "handover": (0.1, 0.0, 0.1, 0.3, 0.5)}
SEVEN_DAY_TYPES = ("procurement",)  # supplier lead times run on calendar days
FEATURES = ("activity_type", "wbs_area", "log_planned_hours", "total_float_days",
            "resource_load", "project_type", "methodology", "complexity",
            "requirements_volatility", "num_vendors", "num_dependencies", "pm_experience_years",
            "log_budget", "num_identified_risks", "mean_risk_severity")


@dataclass
class ScheduleHistory:
    """Generated projects: intake + project-level outcome, activities, and their schedules."""

    projects: pd.DataFrame  # one row per project; `project_log_ratio` = generator's delay
    activities: pd.DataFrame  # FEATURES + planned/actual hours and `ratio` (actual/planned)
    schedules: dict[str, Schedule]  # planned schedules (nothing started), by project id


def generate_schedules(n_projects: int, seed: int = 0, activities: tuple[int, int] = (30, 90),
                       start: date = date(2024, 1, 8)) -> ScheduleHistory:
    """`n_projects` synthetic projects with `activities` (min, max) activities each."""
    if n_projects < 1 or activities[0] < 8 or activities[1] < activities[0]:
        raise ValueError("need n_projects >= 1 and 8 <= min activities <= max activities")
    intake_rng, outcome_rng, net_rng = (np.random.default_rng(s)
                                        for s in np.random.SeedSequence(seed).spawn(3))
    columns, trouble = sample_intake(n_projects, intake_rng, np.datetime64("2025-12-31"))
    outcomes = sample_outcomes(columns, trouble, outcome_rng)
    d = outcome_drivers(columns)
    systematic = linear_predictor(d, "schedule") + trouble_loading(d, "schedule") * trouble
    projects = pd.DataFrame({k: v for k, v in columns.items()
                             if np.asarray(v).ndim == 1 and k != "start_date"})
    projects.insert(0, "project_id", [f"S{i + 1:05d}" for i in range(n_projects)])
    projects["trouble"] = trouble
    projects["systematic_log_ratio"] = systematic
    projects["project_log_ratio"] = np.log(outcomes.actual_days
                                           / columns["planned_duration_days"])
    frames, schedules = [], {}
    for _, row in projects.iterrows():
        n = int(net_rng.integers(activities[0], activities[1] + 1))
        schedule, frame = _project(row, n, start, net_rng)
        schedules[row["project_id"]] = schedule
        frames.append(frame)
    return ScheduleHistory(projects, pd.concat(frames, ignore_index=True), schedules)


def generate_schedule(n_activities: int, seed: int = 0,
                      start: date = date(2024, 1, 8)) -> tuple[Schedule, pd.DataFrame]:
    """One synthetic project of exactly `n_activities` (benchmarks, examples)."""
    history = generate_schedules(1, seed, (n_activities, n_activities), start)
    return next(iter(history.schedules.values())), history.activities


def project_fields(row) -> dict:
    """The project-level model features of one project row (intake fields)."""
    return {name: float(np.log(row["budget_at_completion"])) if name == "log_budget"
            else row[name] for name in FEATURES[5:]}


def calendars_for(start: date) -> dict[str, Calendar]:
    """Standard 5-day calendar with fixed holidays, and a 7-day calendar for lead times."""
    holidays = tuple(date(y, m, d) for y in range(start.year - 1, start.year + 30)
                     for m, d in ((1, 1), (12, 25), (12, 26)))
    five = standard_calendar("1", "Standard 5 day", holidays)
    seven = Calendar("2", "7 day (lead times)", (((480, 1020),),) * 7, {}, 9.0)
    return {"1": five, "2": seven}


def _project(row: pd.Series, n: int, start: date, rng: np.random.Generator):
    """The network, planned schedule and activity-level outcomes of one project."""
    phases = list(PHASES)[: max(3, min(len(PHASES), n // 12))]
    area = np.sort(rng.integers(0, len(phases), n - 2))  # first/last slot: start/finish mstones
    mix = np.array([PHASES[phases[a]] for a in area])
    types = np.array(ACTIVITY_TYPES)[(rng.random(len(area))[:, None]
                                      > np.cumsum(mix, axis=1)).sum(axis=1)]
    raw_days = np.array([TYPE_MEDIAN_DAYS[t] for t in types]) * np.exp(
        0.5 * rng.standard_normal(len(types)))
    pid = row["project_id"]
    ids = [f"{pid}-M0"] + [f"{pid}-A{j + 1:04d}" for j in range(len(types))] + [f"{pid}-MF"]
    rels = _links(ids, area, rng)
    hours = _scale_to_plan(raw_days * 8.0, rels, ids, float(row["planned_duration_days"]))
    wbs = [WBSNode(f"{pid}", pid, f"Project {pid}")] + [
        WBSNode(f"{pid}.{k}", str(k + 1), name, pid) for k, name in enumerate(phases)]
    acts = [Activity(ids[0], "Project start", "1", 0.0, kind="start_milestone", wbs_id=pid,
                     activity_type="milestone")]
    for j, t in enumerate(types):
        acts.append(Activity(ids[j + 1], f"{phases[area[j]]} {t} {j + 1}",
                             "2" if t in SEVEN_DAY_TYPES else "1", float(round(hours[j])),
                             wbs_id=f"{pid}.{area[j]}", activity_type=str(t)))
    acts.append(Activity(ids[-1], "Project finish", "1", 0.0, kind="finish_milestone",
                         wbs_id=pid, activity_type="milestone"))
    n_res = max(2, int(np.sqrt(len(types))))
    resource = rng.integers(0, n_res, len(types))
    data_date = datetime.combine(start, datetime.min.time()) + timedelta(hours=8)
    schedule = Schedule(f"{pid}", "synthetic", data_date, "1", calendars_for(start), acts,
                        rels, wbs, [Resource(f"{pid}-R{r}", f"Crew {r}") for r in range(n_res)],
                        lag_calendar="successor", planned_start=data_date)
    planned = run_cpm(schedule)
    planned_cpm = planned.frame
    for a in acts:  # the plan is the baseline
        a.baseline_start, a.baseline_finish = (planned_cpm.at[a.id, k].to_pydatetime()
                                               for k in ("early_start", "early_finish"))
        a.baseline_duration_hours = a.duration_hours
    schedule.assignments = [Assignment(a.id, f"{pid}-R{r}", None, a.duration_hours,
                                       a.duration_hours) for a, r in zip(acts[1:-1], resource)]
    frame = activity_features(schedule, project_fields(row), planned).loc[ids[1:-1]]
    planned = np.exp(frame["log_planned_hours"].to_numpy())
    ratio = _ratios(row, types, area, planned, frame["total_float_days"].to_numpy(),
                    frame["resource_load"].to_numpy(), rng)
    frame = frame.reset_index()
    frame.insert(0, "project_id", pid)
    frame["planned_hours"] = planned
    frame["actual_hours"] = np.round(planned * ratio, 1)
    frame["ratio"] = frame["actual_hours"] / frame["planned_hours"]
    return schedule, frame


def _links(ids: list[str], area: np.ndarray, rng) -> list[Relationship]:
    """Each activity follows 1-2 earlier ones in its area (or the previous area's last ones)."""
    rels, m = [], len(area)
    has_succ = np.zeros(m, dtype=bool)
    for j in range(m):
        same = np.flatnonzero(area[:j] == area[j])
        earlier = same if len(same) else np.flatnonzero(area[:j] == (area[j - 1] if j else -1))
        if not len(earlier):
            rels.append(Relationship(ids[0], ids[j + 1]))
            continue
        picks = rng.choice(earlier[-6:], size=min(len(earlier[-6:]), rng.integers(1, 3)),
                           replace=False)
        for p in np.sort(picks):
            kind = rng.choice(["FS", "SS", "FF"], p=[0.85, 0.1, 0.05])
            lag = float(rng.choice([0, 0, 0, 8, 16])) if kind != "FS" or rng.random() < 0.1 \
                else 0.0
            rels.append(Relationship(ids[p + 1], ids[j + 1], str(kind), lag))
            has_succ[p] = True
    rels += [Relationship(ids[j + 1], ids[-1]) for j in np.flatnonzero(~has_succ)]
    return rels


def _scale_to_plan(hours: np.ndarray, rels, ids, planned_days: float) -> np.ndarray:
    """Scale durations so the longest FS path (working hours) spans the planned duration."""
    index = {a: i for i, a in enumerate(ids)}
    finish = np.zeros(len(ids))
    dur = np.concatenate([[0.0], hours, [0.0]])
    by_succ: dict[int, list[int]] = {}
    for r in rels:
        by_succ.setdefault(index[r.successor], []).append(index[r.predecessor])
    for i in range(len(ids)):
        finish[i] = max((finish[p] for p in by_succ.get(i, [])), default=0.0) + dur[i]
    target = planned_days * 5 / 7 * 8.0
    return np.maximum(hours * target / max(finish.max(), 1.0), 4.0)


def _ratios(row, types, area, planned, float_days, load, rng) -> np.ndarray:
    """Actual / planned duration of each activity from the causes in the module docstring."""
    m = len(types)
    base = np.array([TYPE_BASE[t] for t in types])
    median = np.array([TYPE_MEDIAN_DAYS[t] for t in types]) * 8.0
    area_effect = AREA_SD * rng.standard_normal(len(PHASES))[area]
    noise = np.array([TYPE_NOISE[t] for t in types]) * rng.standard_normal(m)
    p_disrupt = expit(logit(np.array([TYPE_DISRUPTION[t] for t in types]))
                      + DISRUPTION_TROUBLE * row["trouble"])
    extra = DISRUPTION_SCALE * ((1 - rng.random(m)) ** (-1 / DISRUPTION_ALPHA) - 1)
    log_ratio = (row["systematic_log_ratio"] + base
                 + DURATION_SLOPE * np.log(planned / median) + FLOAT_SLOPE * np.log1p(float_days)
                 + LOAD_SLOPE * (load - 1) + area_effect + noise
                 + (rng.random(m) < p_disrupt) * np.log1p(extra))
    return np.exp(np.clip(log_ratio, *np.log(RATIO_BOUNDS)))
