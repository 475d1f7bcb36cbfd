"""Monte Carlo proofs: a chain sums means and variances, parallel paths show the merge bias of
the maximum (closed form for normals), zero variance is deterministic CPM, correlation,
risk events, criticality; bad input is refused."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from scipy import stats

from opm_ml.schedule.calendars import to_minutes
from opm_ml.schedule.cpm import run_cpm
from opm_ml.schedule.distributions import Estimate, RiskEvent, Uncertainty
from opm_ml.schedule.model import (
    Activity,
    Relationship,
    Schedule,
    ScheduleError,
    twenty_four_hour_calendar,
)
from opm_ml.schedule.montecarlo import _groups, correlated_normals, run_monte_carlo
from opm_ml.schedule.network import compile_network
from opm_ml.synthetic.schedules import generate_schedule

START = datetime(2024, 1, 1)
N = 20_000


def _network(paths: int, length: int, hours: float = 10.0) -> Schedule:
    """`paths` parallel chains of `length` activities (24-hour calendar: hours are minutes/60)."""
    acts = [Activity(f"P{p}-{i}", "x", "24", hours) for p in range(paths) for i in range(length)]
    acts.append(Activity("END", "finish", "24", 0.0, kind="finish_milestone"))
    rels = [Relationship(f"P{p}-{i}", f"P{p}-{i + 1}") for p in range(paths)
            for i in range(length - 1)] + [Relationship(f"P{p}-{length - 1}", "END")
                                           for p in range(paths)]
    return Schedule("mc", "synthetic", START, "24", {"24": twenty_four_hour_calendar("24")},
                    acts, rels)


def _hours(result) -> np.ndarray:
    return (result.finish - to_minutes(START)) / 60.0


@pytest.mark.parametrize("estimate, mean, var", [
    (Estimate("triangular", 4, 6, 14), (4 + 6 + 14) / 3,
     (16 + 36 + 196 - 24 - 56 - 84) / 18),
    (Estimate("pert", 4, 6, 14), (4 + 4 * 6 + 14) / 6,
     # Beta(alpha, beta) scaled to [4, 14]: alpha = 1 + 4 * 0.2, beta = 1 + 4 * 0.8
     100 * 1.8 * 4.2 / ((6.0 ** 2) * 7.0)),
    (Estimate("lognormal", 8, 0.25, 0.25), 8 * np.exp(0.25 ** 2 / 2),
     64 * (np.exp(0.25 ** 2) - 1) * np.exp(0.25 ** 2)),
])
def test_chain_finish_has_the_sum_of_means_and_variances(estimate, mean, var):
    length = 5
    schedule = _network(1, length)
    uncertainty = Uncertainty({a.id: estimate for a in schedule.activities if a.id != "END"})
    total = _hours(run_monte_carlo(schedule, uncertainty, N, seed=1))
    se_mean = np.sqrt(length * var / N)
    assert abs(total.mean() - length * mean) < 4 * se_mean
    # variance of a sample variance ~ 2 sigma^4 / N for near-normal sums
    assert abs(total.var() / (length * var) - 1) < 4 * np.sqrt(2 / N) + 0.02


def test_merge_bias_of_two_parallel_paths_matches_the_normal_closed_form():
    # 12 symmetric triangular activities per path: each path is close to normal, so
    # E[max of two iid N(mu, s^2)] = mu + s / sqrt(pi) (Clark 1961).
    length = 12
    estimate = Estimate("triangular", 6, 10, 14)
    var = (36 + 100 + 196 - 60 - 84 - 140) / 18
    mu, sd = length * 10, np.sqrt(length * var)
    schedule = _network(2, length)
    uncertainty = Uncertainty({a.id: estimate for a in schedule.activities if a.id != "END"})
    result = run_monte_carlo(schedule, uncertainty, N, seed=2)
    finish = _hours(result)
    expected = mu + sd / np.sqrt(np.pi)
    assert abs(finish.mean() - expected) < 4 * finish.std() / np.sqrt(N)
    assert finish.mean() - mu > 0.9 * sd / np.sqrt(np.pi)  # the bias is really there
    # each path drives the finish about half the time
    np.testing.assert_allclose(result.activities.loc[["P0-0", "P1-0"], "criticality_index"],
                               0.5, atol=0.02)


def test_zero_variance_reproduces_deterministic_cpm_exactly():
    schedule, _ = generate_schedule(150, seed=4)  # two calendars, all link types, lags
    fixed = {a.id: Estimate("triangular", a.remaining, a.remaining, a.remaining)
             for a in schedule.activities}
    risks = [RiskEvent("never", 0.0, (schedule.activities[3].id,), (8, 16, 24))]
    result = run_monte_carlo(schedule, Uncertainty(fixed, {a.id: a.wbs_id for a in
                                                           schedule.activities}, 0.5, risks),
                             300, seed=3, chunk=128)
    cpm = run_cpm(schedule)
    assert np.all(result.finish == to_minutes(cpm.project_finish))
    critical = result.activities["criticality_index"]
    assert set(critical.index[critical == 1.0]) == set(cpm.critical)
    assert set(critical.unique()) <= {0.0, 1.0}
    assert result.duration_ratio(50) == 1.0


def test_copula_correlates_a_group_and_leaves_others_independent():
    schedule = _network(3, 1)
    estimate = Estimate("lognormal", 10, 0.3, 0.3)
    uncertainty = Uncertainty({a: estimate for a in ("P0-0", "P1-0", "P2-0")},
                              {"P0-0": "g", "P1-0": "g"}, correlation=0.6)
    net = compile_network(schedule)
    group, n_groups = _groups(net, uncertainty)
    assert n_groups == 3  # group g, P2-0 alone, END alone
    z = correlated_normals(np.random.default_rng(0), group, n_groups, 0.6, N)
    rows = [net.ids.index(a) for a in ("P0-0", "P1-0", "P2-0")]
    corr = np.corrcoef(z[rows])
    assert abs(corr[0, 1] - 0.6) < 0.02 and abs(corr[0, 2]) < 0.03
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=0.02)  # marginals stay N(0, 1)
    # Correlated paths merge with less bias: the expected maximum drops.
    together = _hours(run_monte_carlo(schedule, uncertainty, N, seed=5)).mean()
    apart = _hours(run_monte_carlo(schedule, Uncertainty(uncertainty.estimates), N,
                                   seed=5)).mean()
    assert together < apart - 0.2


def test_risk_event_adds_its_impact_when_it_occurs():
    schedule = _network(1, 3)
    certain = RiskEvent("late permit", 1.0, ("P0-1",), (5, 5, 5))
    finish = _hours(run_monte_carlo(schedule, Uncertainty(risks=[certain]), 100, seed=1))
    assert np.all(finish == 35.0)
    coin = RiskEvent("rework", 0.5, ("P0-0", "P0-2"), (1, 2, 3))
    result = run_monte_carlo(schedule, Uncertainty(risks=[coin]), N, seed=2)
    finish = _hours(result)
    assert abs(np.mean(finish > 30) - 0.5) < 0.02
    assert abs(finish[finish > 30].mean() - 34.0) < 0.05  # two activities, +2 h each on average
    swing = result.tornado.set_index("input")["p80_swing_days"]
    # P80 with the risk: 30 h + 2 x the triangular(1, 2, 3) P80 (3 - sqrt(0.4)); without: 30 h
    assert swing["rework"] == pytest.approx(2 * (3 - np.sqrt(0.4)) / 24, abs=0.005)
    assert "P0-1" not in swing  # P0-1 never varies: not an input


def test_outputs_are_consistent():
    schedule, _ = generate_schedule(60, seed=8)
    estimates = {a.id: Estimate.three_point(0.8 * a.remaining, a.remaining, 1.5 * a.remaining)
                 for a in schedule.activities if a.remaining > 0}
    result = run_monte_carlo(schedule, Uncertainty(estimates), 4000, seed=1)
    p = result.finish_percentiles()
    assert p[10] < p[50] < p[80] < p[90]
    assert result.histogram(20)["count"].sum() == 4000
    curve = result.s_curve()
    assert curve["finish"].is_monotonic_increasing and curve["probability"].iloc[-1] == 1.0
    assert set(result.milestones["activity_id"]) == {schedule.activities[0].id,
                                                      schedule.activities[-1].id}
    # Milestones are dated as the CPM dates them: the start milestone at the data date (a
    # Monday 08:00, not the Friday 17:00 before it), the finish milestone at the finish.
    start, finish = result.milestones.set_index("activity_id").loc[
        [schedule.activities[0].id, schedule.activities[-1].id], "P50"]
    assert start == schedule.data_date
    assert finish == result.finish_percentiles()[50]
    assert result.activities["criticality_index"].between(0, 1).all()
    assert result.duration_ratio(50) > 1.0  # PERT skewed right plus merge bias


def test_bad_input_is_refused():
    schedule = _network(1, 2)
    with pytest.raises(ScheduleError, match="iterations must be between 1"):
        run_monte_carlo(schedule, Uncertainty(), 0)
    with pytest.raises(ScheduleError, match="estimates name activities not in the schedule: X"):
        run_monte_carlo(schedule, Uncertainty({"X": Estimate("pert", 1, 2, 3)}), 10)
    with pytest.raises(ScheduleError, match="risk 'r' names activity 'Y'"):
        run_monte_carlo(schedule, Uncertainty(risks=[RiskEvent("r", 0.5, ("Y",), (1, 1, 1))]),
                        10)
    with pytest.raises(ScheduleError, match="low <= most likely <= high"):
        Estimate("pert", 5, 2, 3)
    with pytest.raises(ScheduleError, match="probability must be in"):
        RiskEvent("r", 1.5, ("A",), (1, 1, 1))
    assert stats.norm.ppf(0.9) == pytest.approx(1.2815515655446004)
