"""Tests for opm_ml.opm_metrics: worked EVM/ES examples computed by hand, edge cases, errors
and hypothesis properties on baselines with plateaus (on-plan project, late completion,
SV/SV(t) signs, frame = single)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opm_ml.opm_metrics import METRIC_COLUMNS, EvmResult, evm_frame, evm_single

D = dt.date
NUMERIC = METRIC_COLUMNS[:-1]

# Lipke-style baseline: start 2024-01-01, planned finish 2024-07-01 (6 months = 182 days in the
# leap year 2024), BAC 1000, cumulative PV at each month start:
#   date  : Feb 1  Mar 1  Apr 1  May 1  Jun 1  Jul 1
#   day   :   31     60     91    121    152    182
#   PV    :  100    250    450    700    900   1000
LIPKE_START = D(2024, 1, 1)
LIPKE_CURVE = [(D(2024, 2, 1), 100.0), (D(2024, 3, 1), 250.0), (D(2024, 4, 1), 450.0),
               (D(2024, 5, 1), 700.0), (D(2024, 6, 1), 900.0)]


def lipke(**overrides) -> EvmResult:
    kwargs = dict(bac=1000.0, start_date=LIPKE_START, planned_duration_days=182,
                  pv_curve=LIPKE_CURVE)
    return evm_single(**(kwargs | overrides))


def test_pmbok_worked_example():
    # BAC 100,000, PV 50,000, EV 40,000, AC 45,000; start 2024-01-01, 100 planned days,
    # status 2024-02-20 = day 50 (31 days of January + 19).
    r = evm_single(bac=100_000, pv=50_000, ev=40_000, ac=45_000, start_date=D(2024, 1, 1),
                   planned_duration_days=100, status_date=D(2024, 2, 20))
    assert r.sv == -10_000  # 40,000 - 50,000
    assert r.cv == -5_000  # 40,000 - 45,000
    assert r.spi == pytest.approx(0.8)  # 40/50
    assert r.cpi == pytest.approx(0.888888889)  # 40/45
    assert r.eac_cpi == pytest.approx(112_500)  # 100,000 * 45/40
    assert r.eac_plan_rate == pytest.approx(105_000)  # 45,000 + 60,000
    assert r.eac_cpi_spi == pytest.approx(129_375)  # 45,000 + 60,000 / (8/9 * 0.8 = 0.7111)
    assert r.etc == pytest.approx(67_500)  # 112,500 - 45,000
    assert r.vac == pytest.approx(-12_500)  # 100,000 - 112,500
    assert r.tcpi_bac == pytest.approx(1.090909091)  # 60,000 / 55,000
    assert r.tcpi_eac == pytest.approx(0.888888889)  # 60,000 / 67,500
    # Baseline (0, 0) - (50, 50,000) - (100, 100,000) is a straight line of 1,000 a day, so
    # EV 40,000 is earned schedule day 40; AT 50; SPI(t) 0.8; IEAC(t) 100/0.8 = 125 days;
    # 2024-01-01 + 125 days = 2024-05-05 (May 1 is day 121).
    assert r.es_days == pytest.approx(40)
    assert r.at_days == 50
    assert r.sv_t_days == pytest.approx(-10)
    assert r.spi_t == pytest.approx(0.8)
    assert r.ieac_t_days == pytest.approx(125)
    assert r.forecast_finish_date == D(2024, 5, 5)
    assert r.reasons == {}
    assert r.as_dict()["eac_cpi"] == r.eac_cpi and r.as_dict()["reasons"] == {}


def test_lipke_earned_schedule_example():
    # Status 2024-05-01 (AT = day 121 = 4 months), PV 700, EV 350, AC 400.
    # EV 350 lies between PV(Mar 1) = 250 (day 60, C = 2 months) and PV(Apr 1) = 450
    # (day 91): I = (350 - 250) / (450 - 250) = 0.5, ES = 2.5 months
    #   = 60 + 0.5 * 31 = 75.5 days.   (In months: SPI(t) = 2.5 / 4 = 0.625.)
    # SV(t) = 75.5 - 121 = -45.5 days; SPI(t) = 75.5 / 121 = 0.623966942
    # IEAC(t) = 182 / SPI(t) = 182 * 121 / 75.5 = 291.682119 days -> 292 whole days
    # forecast = 2024-01-01 + 292 days = 2024-10-19 (Oct 1 is day 274).
    # Cost side: SV = -350, SPI = 0.5, CV = -50, CPI = 0.875.
    r = lipke(pv=700.0, ev=350.0, ac=400.0, status_date=D(2024, 5, 1))
    assert r.es_days == pytest.approx(75.5)
    assert r.at_days == 121
    assert r.sv_t_days == pytest.approx(-45.5)
    assert r.spi_t == pytest.approx(0.623966942)
    assert r.ieac_t_days == pytest.approx(291.682119)
    assert r.forecast_finish_date == D(2024, 10, 19)
    assert (r.sv, r.spi, r.cv, r.cpi) == pytest.approx((-350, 0.5, -50, 0.875))


def test_late_project_past_planned_finish():
    # Status 2024-08-30 = day 242 (Aug 1 is day 213), PV = BAC = 1000, EV 900, AC 1100.
    # EV 900 is exactly the Jun 1 knot: ES = 152; SV(t) = 152 - 242 = -90; SPI(t) = 152/242;
    # IEAC(t) = 182 * 242 / 152 = 289.763 -> 290 days -> 2024-10-17 (Oct 1 = day 274).
    r = lipke(pv=1000.0, ev=900.0, ac=1100.0, status_date=D(2024, 8, 30))
    assert (r.es_days, r.at_days, r.sv_t_days) == (152, 242, -90)
    assert r.spi_t == pytest.approx(152 / 242)
    assert r.ieac_t_days == pytest.approx(289.763158)
    assert r.forecast_finish_date == D(2024, 10, 17)
    assert r.spi == pytest.approx(0.9) and r.cpi == pytest.approx(900 / 1100)
    # EAC = 1000 / (9/11) = 1222.22, ETC = 122.22, TCPI(EAC) = 100 / 122.22 = 0.8182 = CPI;
    # TCPI(BAC) = 100 / (1000 - 1100) is meaningless: the BAC cannot be met any more.
    assert r.eac_cpi == pytest.approx(1222.222222)
    assert r.tcpi_eac == pytest.approx(0.818181818)
    assert r.tcpi_bac is None and "ac exceeds bac" in r.reasons["tcpi_bac"]
    # Finished on 2024-08-30: EV = BAC, so ES = planned duration 182, IEAC(t) = AT = 242 days
    # and the forecast finish is the status date itself. SPI = 1 although 60 days late.
    done = lipke(pv=1000.0, ev=1000.0, ac=1100.0, status_date=D(2024, 8, 30))
    assert (done.spi, done.es_days, done.ieac_t_days) == (1.0, 182, pytest.approx(242))
    assert done.forecast_finish_date == D(2024, 8, 30)
    assert done.tcpi_eac is None and "no work remaining" in done.reasons["tcpi_eac"]


def test_ev_zero_and_ac_zero():
    # EV = 0 with cost booked: SPI = CPI = 0, so EAC = BAC / 0 is undefined; ES = 0,
    # SPI(t) = 0 and IEAC(t) = 182 / 0 is undefined.
    r = lipke(pv=100.0, ev=0.0, ac=50.0, status_date=D(2024, 2, 1))
    assert (r.spi, r.cpi, r.es_days, r.spi_t, r.sv_t_days) == (0, 0, 0, 0, -31)
    assert r.eac_cpi is None and r.reasons["eac_cpi"] == "cpi is 0 (ev is 0)"
    assert r.eac_plan_rate == 1050  # 50 + (1000 - 0)
    assert r.ieac_t_days is None and r.forecast_finish_date is None
    assert r.reasons["ieac_t_days"] == "spi_t is 0 (earned schedule is 0)"
    # AC = 0 with EV > 0: CPI and everything built on it is undefined; TCPI(BAC) = 900/1000.
    r = lipke(pv=100.0, ev=100.0, ac=0.0, status_date=D(2024, 2, 1))
    assert r.cpi is None and r.reasons["cpi"] == "ac is 0 (no cost booked yet)"
    for m in ("eac_cpi", "eac_cpi_spi", "etc", "vac", "tcpi_eac"):
        assert getattr(r, m) is None and r.reasons[m] == "cpi is undefined (ac is 0)"
    assert r.tcpi_bac == pytest.approx(0.9) and r.spi_t == 1


def test_status_before_start_and_at_start():
    before = lipke(pv=0.0, ev=0.0, ac=10.0, status_date=D(2023, 12, 20))
    for m in ("es_days", "at_days", "sv_t_days", "spi_t", "ieac_t_days", "forecast_finish_date"):
        assert getattr(before, m) is None
        assert before.reasons[m] == "status date is before the start date"
    assert before.spi is None and before.cv == -10
    # On the start day AT = 0: ES is defined (0) but SPI(t) = ES / 0 is not.
    at_start = lipke(pv=0.0, ev=0.0, ac=0.0, status_date=LIPKE_START)
    assert (at_start.es_days, at_start.at_days, at_start.sv_t_days) == (0, 0, 0)
    assert at_start.spi_t is None and "actual time is 0" in at_start.reasons["spi_t"]


def test_tcpi_budget_used_up_and_overflow():
    r = lipke(pv=450.0, ev=300.0, ac=1000.0, status_date=D(2024, 4, 1))
    assert r.tcpi_bac is None and r.reasons["tcpi_bac"] == "bac - ac is 0 (budget used up)"
    # A denormal AC makes CPI overflow to inf in floating point: reported, never returned.
    r = lipke(pv=450.0, ev=300.0, ac=1e-320, status_date=D(2024, 4, 1))
    assert r.cpi is None and "not a finite number" in r.reasons["cpi"]
    assert all(v is None or np.isfinite(v) for v in (getattr(r, m) for m in NUMERIC))
    # EV of 1e-6 on a 1e9 budget: ES = 1e-6 / 1e9 * 3650 = 3.65e-12 days, so
    # IEAC(t) = 3650 * 50 / 3.65e-12 = 5e16 days, a finish date no calendar holds.
    r = evm_single(bac=1e9, pv=1e9 * 50 / 3650, ev=1e-6, ac=1.0, start_date=D(2024, 1, 1),
                   planned_duration_days=3650, status_date=D(2024, 2, 20))
    assert r.ieac_t_days == pytest.approx(5e16)
    assert r.forecast_finish_date is None
    assert r.reasons["forecast_finish_date"] == "forecast finish is after 9999"


def snapshot_table() -> pd.DataFrame:
    """Three projects interleaved and unsorted, on a string index."""
    rows = [
        # Lipke project: the month-start snapshots are its baseline points.
        ("L", 1000, 100, 80, 90, LIPKE_START, 182, D(2024, 2, 1)),
        ("L", 1000, 700, 350, 400, LIPKE_START, 182, D(2024, 5, 1)),
        ("L", 1000, 250, 200, 210, LIPKE_START, 182, D(2024, 3, 1)),
        ("L", 1000, 450, 300, 330, LIPKE_START, 182, D(2024, 4, 1)),
        ("L", 1000, 900, 600, 700, LIPKE_START, 182, D(2024, 6, 1)),
        # PMBOK project: one snapshot, baseline a straight line.
        ("P", 100_000, 50_000, 40_000, 45_000, D(2024, 1, 1), 100, D(2024, 2, 20)),
        # Not started yet, status before its start.
        ("Q", 500, 0, 0, 0, D(2024, 3, 1), 30, D(2024, 2, 1)),
    ]
    df = pd.DataFrame(rows, columns=["project_id", "bac", "pv", "ev", "ac", "start_date",
                                     "planned_duration_days", "status_date"])
    df.index = [f"r{i}" for i in range(len(df))]
    for c in ("start_date", "status_date"):
        df[c] = pd.to_datetime(df[c])
    order = [3, 5, 0, 6, 4, 1, 2]
    return df.iloc[order]


def test_frame_interleaved_projects_by_hand():
    out = evm_frame(snapshot_table())
    assert list(out.columns) == [*METRIC_COLUMNS, "undefined"]
    assert list(out.index) == ["r3", "r5", "r0", "r6", "r4", "r1", "r2"]
    assert all(out[m].dtype == "Float64" for m in NUMERIC)
    assert out["forecast_finish_date"].dtype.kind == "M"
    # Project L's curve is its snapshots (+ origin and finish), i.e. the Lipke curve:
    # r0 EV  80 on [0, 100]   : ES = 80/100 * 31              = 24.8
    # r2 EV 200 on [100, 250] : ES = 31 + (100/150) * 29      = 50.3333
    # r3 EV 300 on [250, 450] : ES = 60 + (50/200) * 31       = 67.75
    # r1 EV 350 on [250, 450] : ES = 60 + (100/200) * 31      = 75.5
    # r4 EV 600 on [450, 700] : ES = 91 + (150/250) * 30      = 109
    expected_es = {"r0": 24.8, "r2": 50.333333, "r3": 67.75, "r1": 75.5, "r4": 109.0,
                   "r5": 40.0}
    for label, es in expected_es.items():
        assert out.loc[label, "es_days"] == pytest.approx(es)
    assert out.loc["r1", "forecast_finish_date"] == pd.Timestamp("2024-10-19")
    assert out.loc["r5", "eac_cpi"] == pytest.approx(112_500)
    assert out.loc["r5", "undefined"] == ""
    # Project Q: nothing planned, nothing spent, status a month before its start.
    q = out.loc["r6"]
    assert q["sv"] == 0 and q["eac_plan_rate"] == 500 and q["tcpi_bac"] == 1  # 500 / 500
    assert pd.isna(q["spi"]) and pd.isna(q["es_days"]) and pd.isna(q["forecast_finish_date"])
    assert q["undefined"].split("; ")[:2] == ["spi: pv is 0 (nothing planned yet)",
                                             "cpi: ac is 0 (no cost booked yet)"]
    assert "forecast_finish_date: status date is before the start date" in q["undefined"]


def single_from_row(df, label, row):
    """evm_single for one row of a snapshot table, its project's other PV points as the curve."""
    others = df[(df.project_id == row.project_id) & (df.index != label)]
    return evm_single(
        bac=row.bac, pv=row.pv, ev=row.ev, ac=row.ac, start_date=row.start_date,
        planned_duration_days=row.planned_duration_days, status_date=row.status_date,
        pv_curve=list(zip(others.status_date, others.pv)),
    )


def test_frame_matches_single_and_ignores_row_order():
    df = snapshot_table()
    out = evm_frame(df)
    shuffled = evm_frame(df.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(out, shuffled.loc[out.index])
    for label, row in df.iterrows():
        single = single_from_row(df, label, row)
        assert_same(out.loc[label], single)


def assert_same(row: pd.Series, single: EvmResult) -> None:
    for m in NUMERIC:
        value = getattr(single, m)
        assert (value is None) == pd.isna(row[m]), m
        if value is not None:
            assert row[m] == pytest.approx(value, rel=1e-12, abs=1e-9), m
    date = single.forecast_finish_date
    if date is None:
        assert pd.isna(row["forecast_finish_date"])
    else:
        assert row["forecast_finish_date"] == pd.Timestamp(date)
    expected = "; ".join(f"{m}: {single.reasons[m]}" for m in METRIC_COLUMNS
                         if m in single.reasons)
    assert row["undefined"] == expected


def test_frame_without_project_id_uses_each_row_alone():
    df = snapshot_table().drop(columns="project_id")
    out = evm_frame(df)
    # r1 alone: baseline (0, 0) - (121, 700) - (182, 1000); EV 350 -> ES = 121 * 350/700.
    assert out.loc["r1", "es_days"] == pytest.approx(60.5)


def test_flat_pv_gives_es_at_the_end_of_the_plateau_as_lipke():
    # Issue 13's example: PV reaches 500 on day 10 and stays there to the status date (day 30);
    # everything planned up to day 30 is earned, so Lipke's C is day 30: ES = 30, SPI(t) = 1.
    r = evm_single(bac=1000.0, pv=500.0, ev=500.0, ac=500.0, start_date=D(2024, 1, 1),
                   planned_duration_days=100, status_date=D(2024, 1, 31),
                   pv_curve=[(D(2024, 1, 11), 500.0)])
    assert (r.spi, r.es_days, r.at_days, r.sv_t_days, r.spi_t) == (1, 30, 30, 0, 1)
    assert r.ieac_t_days == 100 and r.forecast_finish_date == D(2024, 4, 10)


def test_pv_zero_mobilisation_does_not_give_spi_t_zero():
    # Nothing planned for the first 20 days (PV = 0), nothing earned at day 20: on schedule.
    r = evm_single(bac=1000.0, pv=0.0, ev=0.0, ac=40.0, start_date=D(2024, 1, 1),
                   planned_duration_days=100, status_date=D(2024, 1, 21),
                   pv_curve=[(D(2024, 2, 10), 250.0)])
    assert (r.es_days, r.sv_t_days, r.spi_t, r.ieac_t_days) == (20, 0, 1, 100)
    # Between two plateau knots the earned schedule is still interpolated on the rise after it:
    # EV 125 is half-way from (day 20, 0) to (day 40, 250).
    r = evm_single(bac=1000.0, pv=250.0, ev=125.0, ac=140.0, start_date=D(2024, 1, 1),
                   planned_duration_days=100, status_date=D(2024, 2, 10),
                   pv_curve=[(D(2024, 1, 21), 0.0)])
    assert (r.es_days, r.sv_t_days) == (30, -10)


def test_tiny_dip_in_baseline_is_tolerated_and_es_is_the_plateau_end():
    # PV 500 on day 10, a rounding dip of 1e-7 on day 20, 500 again on day 30 (the status
    # date): the dip is noise, so the curve is flat at EV = 500 up to day 30.
    curve = [(D(2024, 1, 11), 500.0), (D(2024, 1, 21), 500.0 - 1e-7)]
    r = evm_single(bac=1000.0, pv=500.0, ev=500.0, ac=500.0, start_date=D(2024, 1, 1),
                   planned_duration_days=60, status_date=D(2024, 1, 31), pv_curve=curve)
    assert r.es_days == 30 and r.at_days == 30 and r.spi_t == 1


def test_es_stops_at_the_planned_finish_when_pv_reaches_bac_early_or_late():
    # The baseline reaches BAC on day 80 of 100, and snapshots after the finish repeat BAC:
    # a finished project has ES = the planned duration, never a later snapshot's day.
    frame = pd.DataFrame({
        "project_id": ["A"] * 3, "bac": [1000.0] * 3, "pv": [1000.0] * 3,
        "ev": [900.0, 1000.0, 1000.0], "ac": [900.0, 1000.0, 1000.0],
        "start_date": pd.to_datetime(["2024-01-01"] * 3), "planned_duration_days": [100] * 3,
        "status_date": pd.to_datetime(["2024-03-21", "2024-04-10", "2024-05-20"]),
    })
    out = evm_frame(frame)
    # EV 900 lies on the rise from (0, 0) to (80, 1000).
    assert list(out["es_days"]) == [pytest.approx(72), 100, 100]
    assert list(out["at_days"]) == [80, 100, 140]


BASE = dict(project_id=["A", "A"], bac=[1000.0, 1000.0], pv=[100.0, 300.0],
            ev=[100.0, 250.0], ac=[120.0, 260.0], planned_duration_days=[100, 100],
            start_date=pd.to_datetime(["2024-01-01"] * 2),
            status_date=pd.to_datetime(["2024-01-11", "2024-01-31"]))


@pytest.mark.parametrize(("change", "message"), [
    ({"ev": [100.0, 1200.0]}, "ev exceeds bac"),
    ({"pv": [100.0, 1200.0]}, "pv exceeds bac"),
    ({"ac": [-1.0, 260.0]}, "ac must be >= 0"),
    ({"ev": [np.nan, 250.0]}, "ev must be a finite number"),
    ({"bac": [1000.0, 2000.0]}, "bac must be the same"),
    ({"pv": [400.0, 300.0]}, "pv must not decrease"),
    ({"status_date": pd.to_datetime(["2024-01-31"] * 2)}, "pv differs on one status date"),
    ({"status_date": pd.to_datetime(["2023-12-01", "2024-01-31"])}, "pv must be 0 before"),
    ({"status_date": pd.to_datetime(["2024-01-11", "2024-04-10"])}, "pv must equal bac"),
    ({"status_date": ["2024-01-11", "2024-01-31"]}, "status_date must hold dates"),
    ({"pv": ["100", "300"]}, "pv must be numeric"),
    ({"project_id": ["A", None]}, "project_id has missing values"),
])
def test_frame_rejects_bad_input(change, message):
    with pytest.raises(ValueError, match=message):
        evm_frame(pd.DataFrame(BASE | change))


def test_frame_rejects_missing_column_and_accepts_date_objects():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['ac'\]"):
        evm_frame(pd.DataFrame(BASE).drop(columns="ac"))
    as_dates = pd.DataFrame(BASE | {"start_date": pd.Series([D(2024, 1, 1)] * 2, dtype=object)})
    pd.testing.assert_frame_equal(evm_frame(as_dates), evm_frame(pd.DataFrame(BASE)))


def test_single_rejects_bad_input():
    ok = dict(bac=1000.0, pv=100.0, ev=50.0, ac=60.0, start_date=D(2024, 1, 1),
              planned_duration_days=100, status_date=D(2024, 1, 11))
    evm_single(**ok)
    for change, message in [
        ({"status_date": "2024-01-11"}, "status_date must be a date"),
        ({"ac": True}, "ac must be a number"),
        ({"ev": 1500.0}, "ev exceeds bac"),
        ({"planned_duration_days": 0}, "planned_duration_days must be > 0"),
        ({"pv_curve": [(D(2024, 1, 21), 50.0)]}, "pv must not decrease"),
        ({"pv_curve": [(D(2024, 1, 21), 5000.0)]}, "pv_curve exceeds bac"),
        ({"pv_curve": [D(2024, 1, 21)]}, "pv_curve must be a sequence of"),
    ]:
        with pytest.raises(ValueError, match=message):
            evm_single(**(ok | change))


# --------------------------------------------------------------------------- properties


@st.composite
def baselines(draw, max_points: int = 6):
    """A non-decreasing integer PV baseline: (duration, bac, [(day, pv), ...] in (0, D)).

    Values may repeat, so the curve has plateaus: a PV = 0 mobilisation, pauses, and BAC
    reached before the planned finish.
    """
    duration = draw(st.integers(7, 3650))
    bac = draw(st.integers(10_000, 10**9))
    k = draw(st.integers(1, min(max_points, duration - 1)))
    days = sorted(draw(st.sets(st.integers(1, duration - 1), min_size=k, max_size=k)))
    pool = draw(st.lists(st.integers(0, bac), min_size=1, max_size=k))  # few values: repeats
    values = sorted(draw(st.sampled_from(pool)) for _ in range(k))
    return duration, bac, list(zip(days, values, strict=True))


def plateau_end(duration: int, bac: int, points, pv: float) -> int:
    """Lipke's answer for EV = PV on a knot: the last day the baseline is still at that PV."""
    return duration if pv == bac else max(d for d, v in [(0, 0), *points] if v == pv)


def curve_dates(start: dt.date, points) -> list[tuple[dt.date, float]]:
    return [(start + dt.timedelta(days=d), float(v)) for d, v in points]


START = D(2021, 3, 1)


@settings(max_examples=100, deadline=None)
@given(baselines(), st.data())
def test_on_plan_project_has_unit_indices_and_equal_eacs(baseline, data):
    duration, bac, points = baseline
    i = data.draw(st.integers(0, len(points) - 1))
    day, pv = points[i]
    others = curve_dates(START, points[:i] + points[i + 1:])
    r = evm_single(bac=bac, pv=pv, ev=pv, ac=pv, start_date=START,
                   planned_duration_days=duration, status_date=START + dt.timedelta(days=day),
                   pv_curve=others)
    # On a plateau everything planned up to its end is earned: ES is the plateau's end.
    assert r.es_days == plateau_end(duration, bac, points, pv)
    if pv:
        assert (r.spi, r.cpi) == (1, 1)
    if r.es_days == day:  # the status date ends its plateau (always, without plateaus)
        assert (r.spi_t, r.sv_t_days) == (1, 0)
        assert r.ieac_t_days == pytest.approx(duration)
    else:
        assert r.spi_t > 1 and r.sv_t_days > 0
    if pv:  # PV = EV = AC = 0 leaves SPI, CPI and the EACs undefined
        assert r.eac_cpi == pytest.approx(bac)
        assert r.eac_plan_rate == pytest.approx(bac)
        assert r.eac_cpi_spi == pytest.approx(bac)


@settings(max_examples=60, deadline=None)
@given(baselines(), st.integers(1, 2000), st.floats(0, 1e10))
def test_late_completion_earned_schedule_is_planned_duration(baseline, late_days, ac):
    duration, bac, points = baseline
    at = duration + late_days
    r = evm_single(bac=bac, pv=bac, ev=bac, ac=ac, start_date=START,
                   planned_duration_days=duration, status_date=START + dt.timedelta(days=at),
                   pv_curve=curve_dates(START, points))
    assert r.es_days == duration and r.at_days == at
    assert r.spi == 1 and r.spi_t == pytest.approx(duration / at)
    assert r.ieac_t_days == pytest.approx(at)
    assert r.forecast_finish_date == START + dt.timedelta(days=at)


@settings(max_examples=100, deadline=None)
@given(baselines(), st.data())
def test_sv_t_sign_agrees_with_sv_sign(baseline, data):
    duration, bac, points = baseline
    points = points + [(duration, bac)]  # status on a knot up to the planned finish
    i = data.draw(st.integers(0, len(points) - 1))
    day, pv = points[i]
    ev = data.draw(st.sampled_from([v for _, v in points]) | st.integers(0, bac))
    r = evm_single(bac=bac, pv=pv, ev=ev, ac=1.0, start_date=START,
                   planned_duration_days=duration, status_date=START + dt.timedelta(days=day),
                   pv_curve=curve_dates(START, points))
    if ev == pv:  # on plan: ahead in time only if PV stays flat after the status date
        assert r.sv_t_days == plateau_end(duration, bac, points, pv) - day >= 0
    else:
        assert np.sign(r.sv_t_days) == np.sign(r.sv)


@st.composite
def snapshot_frames(draw):
    """Random valid multi-project snapshot frames with zeros, pre-start and post-finish rows."""
    rows = []
    for p in range(draw(st.integers(1, 4))):
        duration = draw(st.integers(7, 400))
        bac = draw(st.floats(1, 1e9))
        power = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
        lag = draw(st.sampled_from([0, 0, duration // 3]))  # PV = 0 mobilisation up to `lag`
        # A pause: PV stays flat on [hold, hold + pause] (time after it shifts by `pause`).
        hold, pause = draw(st.integers(0, duration)), draw(st.sampled_from([0, duration // 4]))
        start = D(2022, 1, 1) + dt.timedelta(days=draw(st.integers(0, 700)))
        for day in draw(st.sets(st.integers(-30, duration + 200), min_size=1, max_size=5)):
            t = day - min(max(day - hold, 0), pause)
            share = min(max((t - lag) / (duration - pause - lag), 0.0), 1.0) ** power
            ev_share = draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 1))
            ac = draw(st.sampled_from([0.0, bac]) | st.floats(0, 2 * bac))
            rows.append((f"p{p}", bac, bac * share, bac * ev_share, ac, start, duration,
                         start + dt.timedelta(days=day)))
    df = pd.DataFrame(rows, columns=["project_id", "bac", "pv", "ev", "ac", "start_date",
                                     "planned_duration_days", "status_date"])
    df["start_date"] = pd.to_datetime(df["start_date"])
    df["status_date"] = pd.to_datetime(df["status_date"])
    order = draw(st.permutations(range(len(df))))
    return df.iloc[list(order)].reset_index(drop=True)


@settings(max_examples=40, deadline=None)
@given(snapshot_frames())
def test_frame_agrees_with_single_and_never_leaks_inf_or_nan(df):
    out = evm_frame(df)
    values = out[list(NUMERIC)].to_numpy(dtype=float, na_value=np.nan)
    assert not np.isinf(values).any()
    for label, row in df.iterrows():
        single = single_from_row(df, label, row)
        assert_same(out.loc[label], single)
        # Every null metric is explained in `undefined`, and only those.
        named = {part.split(":")[0] for part in out.loc[label, "undefined"].split("; ") if part}
        assert named == {m for m in METRIC_COLUMNS if pd.isna(out.loc[label, m])}
