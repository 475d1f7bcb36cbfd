"""DCMA 14-point assessment on a schedule built to fail known checks with known offenders."""

from __future__ import annotations

from datetime import datetime

import pytest

from opm_ml.schedule.dcma import assess
from opm_ml.schedule.model import Activity, Assignment, Relationship, Schedule, standard_calendar

DATA_DATE = datetime(2024, 3, 4, 8)


@pytest.fixture(scope="module")
def checks():
    def act(i, hours, **kw):
        return Activity(i, i, "5d", hours, **kw)

    acts = [
        act("S", 0, kind="start_milestone"),
        act("A", 40, actual_start=datetime(2024, 3, 1, 8), remaining_hours=16,
            baseline_finish=datetime(2024, 3, 1, 17)),  # missed: baseline passed, not done
        act("B", 24, baseline_finish=datetime(2024, 3, 1, 17),
            actual_start=datetime(2024, 2, 27, 8), actual_finish=datetime(2024, 2, 29, 17)),
        act("C", 16),
        act("D", 400),  # 50 working days: high duration
        act("E", 8, constraint="FNLT", constraint_date=datetime(2024, 3, 5, 17)),
        act("G", 8),  # a short side branch: high float
        act("H", 8, actual_start=datetime(2024, 3, 6, 8)),  # actual start after the data date
        act("X", 8),  # no successor: missing logic
        act("F", 0, kind="finish_milestone"),
    ]
    rels = [Relationship("S", "A"), Relationship("A", "C", "FS", -8.0),
            Relationship("A", "D", "SS", 16.0), Relationship("D", "F"), Relationship("C", "E"),
            Relationship("E", "F"), Relationship("S", "G"), Relationship("G", "F"),
            Relationship("S", "H"), Relationship("H", "F"), Relationship("S", "X"),
            Relationship("S", "B"), Relationship("B", "F")]
    assigned = [Assignment(i, "R1", None, 8.0) for i in ("A", "B", "C", "D", "E", "G", "H")]
    schedule = Schedule("dcma", "synthetic", DATA_DATE, "5d", {"5d": standard_calendar("5d")},
                        acts, rels, assignments=assigned,
                        must_finish_by=datetime(2024, 5, 31, 17))
    return assess(schedule).set_index("number")


@pytest.mark.parametrize("number, passed, offenders", [
    (1, False, ["X"]),
    (2, False, ["A->C"]),
    (3, False, ["A->D"]),
    (4, True, ["A->D SS"]),  # 12 of 13 are FS: 92 % >= 90 %
    (5, False, ["E"]),
    (6, False, ["G", "H", "X"]),
    (7, False, ["A", "C", "E", "S"]),  # E's finish-by date drives back to the start
    (8, False, ["D"]),
    (9, False, ["H"]),
    (10, False, ["X"]),
    (11, False, ["A"]),
    (12, True, []),
    (14, False, ["A"]),
])
def test_each_check_finds_its_offenders(checks, number, passed, offenders):
    row = checks.loc[number]
    assert row["passed"] is passed or row["passed"] == passed
    assert sorted(row["offenders"]) == offenders


def test_metrics_and_indices(checks):
    assert checks.loc[1, "value"] == pytest.approx(100 / 9)  # 1 of 9 incomplete activities
    assert checks.loc[4, "value"] == pytest.approx(100 * 12 / 13)
    assert checks.loc[14, "value"] == 0.5  # B done of A, B due
    cpli = checks.loc[13]
    assert cpli["value"] > 1 and cpli["passed"]  # finishes well before the must-finish date
    assert list(checks.index) == list(range(1, 15))
