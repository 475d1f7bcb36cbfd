"""Generated schedules written as P6 XER and MS Project XML read back as the same network,
with the same CPM dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest

from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.files import read_schedule, write_schedule
from opm_ml.synthetic.schedules import generate_schedule

DATES = ["early_start", "early_finish", "late_start", "late_finish", "total_float_hours",
         "free_float_hours", "critical"]


def signature(schedule):
    """Everything the network and the CPM depend on, free of file-specific object ids."""
    calendar = {c.id: c.name for c in schedule.calendars.values()}
    wbs_names = {w.id: w.name for w in schedule.wbs}
    return {
        "activities": sorted(
            (a.id, a.name, calendar[a.calendar_id], round(a.duration_hours, 6),
             round(a.remaining, 6), a.kind, wbs_names.get(a.wbs_id), a.activity_type,
             a.actual_start, a.actual_finish, a.constraint, a.constraint_date,
             a.baseline_start, a.baseline_finish) for a in schedule.activities),
        "relationships": sorted((r.predecessor, r.successor, r.type, round(r.lag_hours, 6))
                                for r in schedule.relationships),
        "calendars": sorted((c.name, c.week, tuple(sorted(c.exceptions.items())))
                            for c in schedule.calendars.values()),
        "wbs": sorted((w.code, w.name) for w in schedule.wbs),
        "assignments": sorted((s.activity_id, s.planned_units) for s in schedule.assignments),
    }


@pytest.fixture(scope="module")
def generated():
    schedule, _ = generate_schedule(120, seed=21)
    return schedule


def _progressed(schedule):
    """The same project four weeks in: some activities done, some started, one constrained."""
    cpm = run_cpm(schedule).frame
    data_date = schedule.data_date + timedelta(days=28)
    acts = []
    for a in schedule.activities:
        start, finish = (cpm.at[a.id, k].to_pydatetime() for k in ("early_start", "early_finish"))
        if finish <= data_date:
            a = replace(a, actual_start=start, actual_finish=finish, remaining_hours=0.0,
                        percent_complete=100.0)
        elif start < data_date:
            a = replace(a, actual_start=start, remaining_hours=a.duration_hours / 2,
                        percent_complete=50.0)
        acts.append(a)
    acts[-2] = replace(acts[-2], constraint="SNET",
                       constraint_date=data_date + timedelta(days=40, hours=8))
    return replace(schedule, data_date=data_date, activities=acts)


@pytest.mark.parametrize("suffix", [".xer", ".xml"])
def test_generated_schedule_round_trips(generated, tmp_path, suffix):
    path = write_schedule(generated, tmp_path / f"plan{suffix}")
    back = read_schedule(path)
    assert signature(back) == signature(generated)
    ours = run_cpm(generated).frame[DATES]
    pd.testing.assert_frame_equal(run_cpm(back).frame[DATES], ours)


def test_progressed_schedule_round_trips_through_xer(generated, tmp_path):
    progressed = _progressed(generated)
    statuses = {a.status for a in progressed.activities}
    assert statuses == {"complete", "in_progress", "not_started"}
    back = read_schedule(write_schedule(progressed, tmp_path / "update.xer",
                                        run_cpm(progressed)))
    assert signature(back) == signature(progressed)
    pd.testing.assert_frame_equal(run_cpm(back).frame[DATES], run_cpm(progressed).frame[DATES])
    # the CPM dates we wrote are what a P6 reader sees as the tool's own dates
    assert back.activities[5].reported["early_start"] == run_cpm(progressed).frame.at[
        back.activities[5].id, "early_start"]
