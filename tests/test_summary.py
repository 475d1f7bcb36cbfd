"""Portfolio summary: percentiles and late share computed on a hand-checkable history."""

import pandas as pd
import pytest

from opm_ml.summary import portfolio_summary


def _projects() -> pd.DataFrame:
    start = pd.Timestamp("2024-01-01")
    rows = [
        # type, planned days, actual days (None = in flight), BAC, actual cost
        ("it_software", 100, 150, 100.0, 200.0),  # +100 % cost, +50 % time
        ("it_software", 100, 105, 100.0, 110.0),  # +10 % cost, +5 % time
        ("it_software", 100, None, 100.0, None),  # still running: counted, not in percentiles
        ("construction", 200, 200, 1000.0, 1000.0),  # on plan
    ]
    return pd.DataFrame(
        {
            "project_type": [r[0] for r in rows],
            "start_date": [start] * len(rows),
            "planned_duration_days": [r[1] for r in rows],
            "actual_finish_date": [
                start + pd.Timedelta(days=r[2]) if r[2] else pd.NaT for r in rows
            ],
            "budget_at_completion": [r[3] for r in rows],
            "actual_cost": [r[4] for r in rows],
        }
    )


def test_counts_and_percentiles_by_type():
    summary = portfolio_summary(_projects())
    it = summary.loc["it_software"]
    assert (it["projects"], it["completed"]) == (3, 2)
    assert it["cost_overrun_p50_pct"] == pytest.approx(55.0)  # median of 100 % and 10 %
    assert it["cost_overrun_mean_pct"] == pytest.approx(55.0)
    assert it["schedule_overrun_p90_pct"] == pytest.approx(5 + 0.9 * 45)  # linear interpolation
    assert it["late_share"] == pytest.approx(0.5)  # only the +50 % project is >10 % late
    assert summary.loc["construction", "cost_overrun_p10_pct"] == pytest.approx(0.0)


def test_all_row_pools_every_type():
    summary = portfolio_summary(_projects())
    overall = summary.loc["all"]
    assert (overall["projects"], overall["completed"]) == (4, 3)
    assert overall["cost_overrun_p50_pct"] == pytest.approx(10.0)
    assert overall["late_share"] == pytest.approx(1 / 3)
