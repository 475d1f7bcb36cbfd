"""Schedule readers on the real P6/MS Project exports, CPM agreement with the tools' own dates,
and bad input: each fault one clear `ScheduleError`.

The real files are MPXJ test data (Jon Iles et al.), read from ../shared/data/schedules.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from opm_ml.schedule.cpm import agreement, run_cpm
from opm_ml.schedule.files import read_schedule
from opm_ml.schedule.model import ScheduleError

SCHEDULES = Path(__file__).resolve().parents[2] / "shared/data/schedules"
needs_files = pytest.mark.skipif(not SCHEDULES.is_dir(),
                                 reason=f"{SCHEDULES} (real schedule exports) not present")
ALL_FILES = sorted(p.name for p in SCHEDULES.glob("*.x*")) if SCHEDULES.is_dir() else []
# MS Project leaves the late dates of a manually scheduled SS/SF predecessor unconstrained by
# the link (tasks 11 and 13 of task-links are SF and SS predecessors); standard CPM does not.
MSP_MANUAL_LATE = {"11", "13"}


@pytest.fixture(scope="module")
def schedules():
    return {name: read_schedule(SCHEDULES / name) for name in ALL_FILES}


@needs_files
def test_every_file_is_read_or_recovered(schedules):
    assert len(schedules) == 17
    formats = {name: s.source_format for name, s in schedules.items()}
    assert sum(f == "xer" for f in formats.values()) == 7
    assert sum(f == "mspdi" for f in formats.values()) == 5
    assert sum(f == "pmxml" for f in formats.values()) == 5
    # invalid-8.4.xer: calendar 180's data is cut short; nothing uses it, so it is reported
    # and skipped (recovered), and the valid calendars and all 12 activities are read.
    invalid = schedules["invalid-8.4.xer"]
    assert sorted(invalid.calendars) == ["178", "179"]
    assert len(invalid.warnings) == 1 and "calendar 180 'Test - Invalid'" in invalid.warnings[0]
    assert "truncated or malformed" in invalid.warnings[0]
    assert len(invalid.activities) == 12


@needs_files
def test_cpm_agrees_with_the_tools_own_dates(schedules):
    report = []
    for name, schedule in schedules.items():
        if not schedule.activities:  # calendar-calendars holds calendars only
            continue
        table = agreement(run_cpm(schedule))
        per_activity = table.groupby("activity_id")["agree"].all()
        report.append((name, int(table["agree"].sum()), len(table), int(per_activity.sum()),
                       len(per_activity)))
        wrong = table[~table["agree"]]
        if name == "task-links-project2019-mspdi.xml":
            assert set(wrong["activity_id"]) == MSP_MANUAL_LATE
            assert set(wrong["field"]) <= {"late_start", "late_finish", "total_float_hours"}
        else:
            assert wrong.empty, wrong
    print("\nCPM agreement with the dates stored in each file: activities whose every stored "
          "date and float match / compared (fields matching / compared)")
    for name, ok, total, acts_ok, acts in report:
        print(f"  {name:42s} {acts_ok:4d} / {acts:<4d} ({ok} / {total} fields)")
    assert sum(r[2] for r in report) == 1298  # every stored date and float compared
    assert sum(r[3] for r in report) == sum(r[4] for r in report) - 2  # all but tasks 11, 13


@needs_files
def test_links_calendars_progress_and_resources_are_read(schedules):
    links = schedules["task-links-project2019-mspdi.xml"]
    by_succ = {(r.predecessor, r.successor): r for r in links.relationships}
    assert (by_succ[("11", "12")].type, by_succ[("11", "12")].lag_hours) == ("SF", 16.0)
    assert (by_succ[("9", "10")].type, by_succ[("9", "10")].lag_hours) == ("FS", 80.0)
    assert {r.type for r in links.relationships} == {"FS", "SS", "FF", "SF"}
    p6_xml = schedules["PredecessorCalendar.xml"]
    assert p6_xml.calendars["12002"].week[0] == ((420, 720), (750, 930))  # 11:59 -> 12:00
    assert p6_xml.lag_calendar == "predecessor"
    assert schedules["TwentyFourHourCalendar.xer"].lag_calendar == "24h"
    progress = {a.id: a for a in schedules["percent-complete-8.4.xer"].activities}
    assert progress["A1010"].status == "in_progress" and progress["A1010"].remaining == 600
    assert progress["A1060"].percent_complete == 75
    assert progress["A1000"].status == "not_started"
    holidays = schedules["percent-complete-8.4.xer"].calendars["178"].exceptions
    assert len(holidays) == 24 and all(v == () for v in holidays.values())
    rates = schedules["resource-rates-test.xer"]
    assert [r.name for r in rates.resources] == ["Resource 1"]
    assert [r.name for r in rates.roles] == ["Role 1"]
    assert sum(s.role_id == "332" for s in rates.assignments) == 2
    done = schedules["PredecessorCalendar.xer"].activities[0]
    assert done.status == "complete" and done.actual_finish == datetime(2019, 6, 12, 17)


def _xer(tmp_path: Path, replace: tuple[str, str] | None = None, cut: int | None = None,
         extra_pred: str | None = None) -> Path:
    """A copy of percent-complete-8.4.xer with one fault injected."""
    text = (SCHEDULES / "percent-complete-8.4.xer").read_bytes().decode("cp1252")
    if replace:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1], 1)
    if extra_pred:
        text = text.replace("%E", "%T\tTASKPRED\n%F\ttask_pred_id\ttask_id\tpred_task_id\t"
                            "proj_id\tpred_proj_id\tpred_type\tlag_hr_cnt\n" + extra_pred + "%E")
    if cut:
        text = text[:cut]
    path = tmp_path / "bad.xer"
    path.write_bytes(text.encode("cp1252"))
    return path


# One fault each, injected into percent-complete-8.4.xer (`_xer`), and the message it gets.
XER_FAULTS = [
    ({"cut": 6000}, "truncated (no %E end-of-file line)"),
    ({"replace": ("2015-02-24 08:00\t\t\t\t\t\t\t2015-02-24 08:00\t2015-06-08",
                  "2015-02-31 08:00\t\t\t\t\t\t\t2015-02-24 08:00\t2015-06-08")},
     "TASK A1010: act_start_date '2015-02-31 08:00' is not a date"),
    ({"replace": ("101718\t4507\t26010\t178", "101718\t4507\t26010\t999")},
     "activity 'A1010' (Duration 25%) uses calendar '999', which the file does not define"),
    ({"extra_pred": "%R\t1\t101718\t555\t4507\t4507\tPR_FS\t0\n"},
     "TASKPRED 1: task_id 555 is not a TASK of this project (dangling relationship)"),
    ({"extra_pred": "%R\t1\t101718\t101717\t4507\t4507\tPR_FS\t0\n"
                    "%R\t2\t101719\t101718\t4507\t4507\tPR_SS\t8\n"
                    "%R\t3\t101717\t101719\t4507\t4507\tPR_FS\t0\n"},
     "logic loop: A1010 -> A1020 -> A1000 -> A1010"),
]


@needs_files
@pytest.mark.parametrize("fault, message", XER_FAULTS)
def test_bad_xer_input_gets_one_clear_message(tmp_path, fault, message):
    with pytest.raises(ScheduleError) as caught:
        run_cpm(read_schedule(_xer(tmp_path, **fault)))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@needs_files
def test_bad_xml_input_gets_one_clear_message(tmp_path):
    text = (SCHEDULES / "task-links-project2019-mspdi.xml").read_text(encoding="utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ScheduleError, match="cut.xml: the file is truncated"):
        read_schedule(cut)
    dangling = tmp_path / "dangling.xml"
    dangling.write_text(text.replace("<PredecessorUID>15</PredecessorUID>",
                                     "<PredecessorUID>77</PredecessorUID>"), encoding="utf-8")
    with pytest.raises(ScheduleError, match="predecessor UID 77 is not an active task"):
        read_schedule(dangling)
    bad_date = tmp_path / "date.xml"
    bad_date.write_text(text.replace(
        "<Name>Task 1</Name>", "<Name>Task 1</Name><ActualStart>2018-13-01T08:00</ActualStart>",
        1), encoding="utf-8")
    with pytest.raises(ScheduleError, match="ActualStart '2018-13-01T08:00' is not a date"):
        read_schedule(bad_date)
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaa">]>'
                    "<Project><Name>&a;</Name></Project>", encoding="utf-8")
    with pytest.raises(ScheduleError, match="refused unsafe XML"):
        read_schedule(bomb)
    other = tmp_path / "notes.txt"
    other.write_text("hello", encoding="utf-8")
    with pytest.raises(ScheduleError, match="not a schedule file this tool reads"):
        read_schedule(other)
