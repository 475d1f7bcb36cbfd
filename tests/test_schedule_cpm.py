"""CPM engine: random networks against an independent relaxation oracle, calendar and lag
calendar arithmetic, constraints, progress (retained logic vs progress override), floats."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.model import (
    Activity,
    Relationship,
    Schedule,
    standard_calendar,
    twenty_four_hour_calendar,
)

START = datetime(2024, 3, 1, 8, 0)  # a Friday
FIVE = standard_calendar("5d", holidays=(date(2024, 3, 4),))  # Monday 4 March off
H24 = twenty_four_hour_calendar("24")


def _schedule(acts, rels, **options) -> Schedule:
    return Schedule("t", "synthetic", options.pop("data_date", START), options.pop("default", "5d"),
                    {"5d": FIVE, "24": H24}, acts, rels, **options)


def _oracle(durations, links):
    """ES/EF/LS/LF in minutes by relaxing every link until nothing moves (no topological
    order): the textbook definition, independent of the engine's passes."""
    n = len(durations)
    es = np.zeros(n)
    for _ in range(n + 1):
        old = es.copy()
        for p, s, kind, lag in links:
            bound = {"FS": es[p] + durations[p] + lag, "SS": es[p] + lag,
                     "FF": es[p] + durations[p] + lag - durations[s],
                     "SF": es[p] + lag - durations[s]}[kind]
            es[s] = max(es[s], bound)
        if np.array_equal(es, old):
            break
    ef = es + durations
    lf = np.full(n, ef.max())
    for _ in range(n + 1):
        old = lf.copy()
        for p, s, kind, lag in links:
            ls_s = lf[s] - durations[s]
            bound = {"FS": ls_s - lag, "SS": ls_s - lag + durations[p], "FF": lf[s] - lag,
                     "SF": lf[s] - lag + durations[p]}[kind]
            lf[p] = min(lf[p], bound)
        if np.array_equal(lf, old):
            break
    return es, ef, lf - durations, lf


@pytest.mark.parametrize("seed", range(6))
def test_random_networks_match_the_relaxation_oracle(seed):
    rng = np.random.default_rng(seed)
    n = 40
    hours = rng.integers(0, 41, n).astype(float)
    links = []
    for s in range(1, n):
        for p in rng.choice(s, size=min(s, int(rng.integers(1, 4))), replace=False):
            links.append((int(p), s, str(rng.choice(["FS", "SS", "FF", "SF"])),
                          float(rng.integers(-8, 17))))
    order = rng.permutation(n)  # the file order is not the topological order
    acts = [Activity(f"A{i}", f"a{i}", "24", hours[i]) for i in order]
    rels = [Relationship(f"A{p}", f"A{s}", k, lag) for p, s, k, lag in links]
    frame = run_cpm(_schedule(acts, rels, default="24")).frame.loc[[f"A{i}" for i in range(n)]]
    es, ef, ls, lf = _oracle(hours * 60, [(p, s, k, lag * 60) for p, s, k, lag in links])
    for column, expected in (("early_start", es), ("early_finish", ef), ("late_start", ls),
                             ("late_finish", lf)):
        got = ((frame[column] - START) / timedelta(minutes=1)).to_numpy()
        np.testing.assert_allclose(got, expected, err_msg=column)
    np.testing.assert_allclose(frame["total_float_hours"], (lf - ef) / 60)
    assert set(frame.index[frame["critical"]]) == {f"A{i}" for i in np.flatnonzero(lf == ef)}


def test_working_calendar_skips_weekends_and_holidays():
    acts = [Activity("A", "a", "5d", 16.0), Activity("B", "b", "5d", 8.0)]
    frame = run_cpm(_schedule(acts, [Relationship("A", "B")])).frame
    # Fri 1 Mar 08:00 + 16 h: Friday, (weekend, holiday Monday 4 Mar), Tuesday.
    assert frame.at["A", "early_finish"] == datetime(2024, 3, 5, 17)
    assert frame.at["B", "early_start"] == datetime(2024, 3, 6, 8)


@pytest.mark.parametrize("lag_calendar, successor_start", [
    ("24h", datetime(2024, 3, 5, 8)),  # Fri 17:00 + 24 elapsed hours = Sat 17:00 -> Tue
    ("predecessor", datetime(2024, 3, 8, 8)),  # + 3 working days (Tue, Wed, Thu) -> Fri
])
def test_lag_is_measured_on_the_lag_calendar(lag_calendar, successor_start):
    acts = [Activity("A", "a", "5d", 8.0), Activity("B", "b", "5d", 8.0)]
    rels = [Relationship("A", "B", "FS", 24.0)]
    frame = run_cpm(_schedule(acts, rels, lag_calendar=lag_calendar)).frame
    assert frame.at["B", "early_start"] == successor_start


def test_successor_on_another_calendar_starts_when_its_calendar_works():
    acts = [Activity("A", "a", "5d", 8.0), Activity("B", "b", "24", 24.0)]
    frame = run_cpm(_schedule(acts, [Relationship("A", "B")])).frame
    assert frame.at["B", "early_start"] == datetime(2024, 3, 1, 17)  # Friday 17:00, no break
    assert frame.at["B", "early_finish"] == datetime(2024, 3, 2, 17)


def test_constraints_move_early_dates_and_make_negative_float():
    acts = [Activity("A", "a", "5d", 16.0),
            Activity("B", "b", "5d", 8.0, constraint="SNET",
                     constraint_date=datetime(2024, 3, 12, 8)),
            Activity("C", "c", "5d", 8.0, constraint="FNLT",
                     constraint_date=datetime(2024, 3, 5, 17)),
            Activity("D", "d", "5d", 8.0, constraint="MSO",
                     constraint_date=datetime(2024, 3, 5, 8))]
    rels = [Relationship("A", "C"), Relationship("A", "D")]
    result = run_cpm(_schedule(acts, rels))
    f = result.frame
    assert f.at["B", "early_start"] == datetime(2024, 3, 12, 8)
    assert f.at["C", "early_finish"] == datetime(2024, 3, 6, 17)
    assert f.at["C", "total_float_hours"] == -8.0  # finishes a day after its FNLT date
    assert f.at["A", "total_float_hours"] == -8.0  # the constraint drives its predecessor
    assert f.at["D", "early_start"] == datetime(2024, 3, 5, 8)  # mandatory: logic overruled
    assert f.at["D", "late_start"] == datetime(2024, 3, 5, 8)


@pytest.mark.parametrize("retained, resume", [(True, datetime(2024, 3, 14, 8)),
                                              (False, datetime(2024, 3, 11, 8))])
def test_out_of_sequence_progress_retained_logic_or_override(retained, resume):
    # B started before its FS predecessor A finished; data date Monday 11 March.
    acts = [Activity("A", "a", "5d", 40.0, remaining_hours=24.0,
                     actual_start=datetime(2024, 3, 5, 8)),
            Activity("B", "b", "5d", 16.0, remaining_hours=8.0,
                     actual_start=datetime(2024, 3, 7, 8))]
    schedule = _schedule(acts, [Relationship("A", "B")], data_date=datetime(2024, 3, 11),
                         retained_logic=retained)
    f = run_cpm(schedule).frame
    assert f.at["A", "early_finish"] == datetime(2024, 3, 13, 17)
    assert f.at["B", "early_start"] == resume  # retained: after A; override: at data date
    assert f.at["B", "start"] == datetime(2024, 3, 7, 8)  # the actual start stays


def test_free_float_and_longest_path():
    acts = [Activity("A", "a", "5d", 24.0), Activity("B", "b", "5d", 8.0),
            Activity("C", "c", "5d", 8.0), Activity("M", "done", "5d", 0.0,
                                                    kind="finish_milestone")]
    rels = [Relationship("A", "C"), Relationship("B", "C"), Relationship("C", "M")]
    result = run_cpm(_schedule(acts, rels))
    assert result.frame.at["B", "free_float_hours"] == 16.0
    assert result.frame.at["B", "total_float_hours"] == 16.0
    assert result.frame.at["A", "free_float_hours"] == 0.0
    assert result.critical_path == ["A", "C", "M"]
    assert result.frame.at["M", "early_finish"] == datetime(2024, 3, 7, 17)
