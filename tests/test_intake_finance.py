"""NPV, ROI, payback and IRR against values worked out by hand (in the comments)."""

import math

import numpy as np
import pytest

from opm_ml.intake import finance


def test_npv_by_hand():
    # -100 at end of year 1, +60 at end of years 2 and 3, at 10 %:
    # -100/1.1 + 60/1.21 + 60/1.331 = -90.9091 + 49.5868 + 45.0789 = 3.7566
    assert finance.npv([[-100, 60, 60]], 0.10)[0] == pytest.approx(3.7566, abs=1e-4)
    # Zero rate: plain sum.
    assert finance.npv([[-100, 60, 60]], 0.0)[0] == pytest.approx(20.0)


def test_npv_delay_shifts_every_flow():
    # 121 at end of year 2, delayed one year, at 10 %: 121 / 1.1^3 = 90.9091
    assert finance.npv([[0, 121]], 0.10, delay_years=1.0)[0] == pytest.approx(90.9091, abs=1e-4)
    # Vectorised: one row per candidate, each with its own rate.
    out = finance.npv([[110, 0], [0, 121]], [0.10, 0.10])
    np.testing.assert_allclose(out, [100.0, 100.0])


def test_roi_by_hand():
    # costs 100 + 50 = 150, benefits 90 + 120 = 210: (210 - 150) / 150 = 0.4
    assert finance.roi([[100, 50]], [[90, 120]])[0] == pytest.approx(0.4)


def test_payback_by_hand():
    # cumulative: -100, -40, +20 -> pays back 40/60 into year 3 = 2.6667 years
    assert finance.payback_years([[-100, 60, 60]])[0] == pytest.approx(2 + 40 / 60)
    # 0, -100, +50, +100: cumulative -100 after year 2, -50 after 3 -> 3 + 50/100 = 3.5
    assert finance.payback_years([[0, -100, 50, 100]])[0] == pytest.approx(3.5)
    assert math.isnan(finance.payback_years([[-100, 30, 30]])[0])  # never pays back


def test_irr_by_hand():
    # -100 then +110 one year later: 110/(1+r)^2 = 100/(1+r) -> r = 10 %
    rates, notes = finance.irr([[-100, 110, 0], [-100, 60, 60]])
    assert rates[0] == pytest.approx(0.10, abs=1e-9)
    # -100/(1+r) + 60/(1+r)^2 + 60/(1+r)^3 = 0 -> 60 q^2 + 60 q - 100 = 0 with q = 1/(1+r):
    # q = (-60 + sqrt(3600 + 24000)) / 120 = 0.884437 -> r = 13.0662 %
    q = (-60 + math.sqrt(3600 + 24000)) / 120
    assert rates[1] == pytest.approx(1 / q - 1, abs=1e-9)
    assert notes == [None, None]


def test_irr_missing_with_reason():
    rates, notes = finance.irr([[100, 50], [-100, -5]])
    assert np.isnan(rates).all()
    assert all("never changes sign" in n for n in notes)


def test_nan_flows_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        finance.npv([[1, np.nan]], 0.1)
