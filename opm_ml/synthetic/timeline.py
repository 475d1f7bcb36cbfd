"""Monthly earned-value snapshots and resource usage, consistent with each project's outcome.

Ragged per-project month sequences are built without Python loops: counts per project, then
`np.repeat` for the project index and `arange - repeat(offsets)` for the month within it.
Dates are int64 days since 1970-01-01 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from opm_ml.contract import ROLES
from opm_ml.synthetic import params as P


@dataclass(frozen=True)
class Plan:
    """Per-project inputs of the timeline: baseline, realised outcome (hidden if in flight)."""

    start: np.ndarray  # days
    planned_days: np.ndarray
    actual_days: np.ndarray
    bac: np.ndarray
    actual_cost: np.ndarray
    role_effort: np.ndarray  # (n, len(ROLES)) final hours per role
    late_cpi_drift: np.ndarray  # log CPI lost between the drift onset and completion

    @property
    def finish(self) -> np.ndarray:
        return self.start + self.actual_days


def month_number(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_first_day(months: np.ndarray) -> np.ndarray:
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def month_last_day(months: np.ndarray) -> np.ndarray:
    return month_first_day(months + 1) - 1


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row -> (project index, position within the project) for ragged counts; plus offsets."""
    offsets = np.cumsum(counts) - counts
    project = np.repeat(np.arange(len(counts)), counts)
    position = np.arange(counts.sum()) - np.repeat(offsets, counts)
    return project, position, offsets


def kumaraswamy_cdf(x: np.ndarray, a, b) -> np.ndarray:
    """A closed-form S-curve on [0, 1] (like a beta CDF, but cheap at millions of rows)."""
    return 1 - (1 - np.clip(x, 0, 1) ** a) ** b


def _running_max(values: np.ndarray, project: np.ndarray) -> np.ndarray:
    """Cumulative maximum within each project for values in [0, 1] (projects contiguous)."""
    return np.maximum.accumulate(values + 2.0 * project) - 2.0 * project


def snapshots(plan: Plan, as_of: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Month-end status reports from the first month-end after start up to finish or `as_of`.

    A finished project gets a last report on its finish date with EV = BAC and AC = actual cost.
    """
    n = len(plan.start)
    finished = plan.finish <= as_of
    m_start = month_number(plan.start)
    first = m_start + (month_last_day(m_start) == plan.start)
    m_as_of = month_number(np.array([as_of]))[0]
    last_open = m_as_of - (month_last_day(np.array([m_as_of]))[0] != as_of)
    last = np.where(finished, month_number(plan.finish) - 1, last_open)
    monthly = np.maximum(last - first + 1, 0)
    counts = monthly + finished
    project, k, _ = expand(counts)
    final = finished[project] & (k == monthly[project])
    status = np.where(final, plan.finish[project], month_last_day(first[project] + k))

    # Per-project curve shape and how slippage shows: uniformly slow, or on plan then drifting.
    a = rng.uniform(*P.S_CURVE_A, n)
    b = rng.uniform(*P.S_CURVE_B, n)
    uniform_weight = rng.beta(*P.UNIFORM_SLIPPAGE_BETA, n)
    log_cost = np.log(plan.actual_cost / plan.bac)
    cpi_bias = P.CPI_EARLY_BIAS * log_cost + P.CPI_EARLY_NOISE * rng.standard_normal(n)
    cpi_drift = P.CPI_DRIFT_NOISE * rng.standard_normal(n)

    elapsed = (status - plan.start[project]).astype(float)
    u = elapsed / plan.actual_days[project]
    ratio = (plan.actual_days / plan.planned_days)[project]
    drift = np.where(ratio >= 1, 1 - (1 - u) ** ratio, ratio * u + (1 - ratio) * u**2)
    w = uniform_weight[project]
    work_done = w * u + (1 - w) * drift  # fraction of planned work-time completed
    a_p, b_p, bac = a[project], b[project], plan.bac[project]
    pv = bac * kumaraswamy_cdf(elapsed / plan.planned_days[project], a_p, b_p)

    rows = len(project)
    # Noise on the logit scale keeps progress inside (0, 1) and small near both ends.
    noisy = expit(logit(kumaraswamy_cdf(work_done, a_p, b_p))
                  + P.EV_NOISE * rng.standard_normal(rows))
    progress = np.where(final, 1.0, _running_max(noisy, project))
    # Cumulative CPI: early optimism that settles by ~20 % complete, a random drift to final,
    # and a systematic late worsening whose size the intake drivers partly predict.
    onset = P.LATE_CPI_DRIFT.onset_progress
    late = np.minimum((1 - progress) / (1 - onset), 1.0)
    cpi = (plan.bac / plan.actual_cost)[project] * np.exp(
        cpi_bias[project] * np.exp(-progress / P.CPI_SETTLE_PROGRESS)
        + cpi_drift[project] * (1 - progress) + plan.late_cpi_drift[project] * late)
    ac_share = progress * bac / cpi * np.exp(P.AC_NOISE * rng.standard_normal(rows))
    ac_share = np.minimum(ac_share / plan.actual_cost[project], 1.0)
    ac_share = np.where(final, 1.0, _running_max(ac_share, project))
    # Currency in cents, like a ledger; a running project stays at least a cent short of BAC.
    ev = np.where(final, bac, np.minimum(np.round(progress * bac, 2), bac - 0.01))
    return {
        "project": project,
        "status_date": status,
        "pv": np.round(pv, 2),
        "ev": ev,
        "ac": np.where(final, plan.actual_cost[project],
                       np.round(ac_share * plan.actual_cost[project], 2)),
        "percent_complete": np.where(final, 100.0, np.minimum(100 * ev / bac, 100.0)),
    }


def resource_usage(plan: Plan, as_of: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Hours per role per calendar month: role effort spread along its phase profile (+ noise).

    Work runs over the days [start, finish); a finished project's rows sum, per role, exactly to
    its actual effort; an in-flight project has rows up to `as_of` only.
    """
    finished = plan.finish <= as_of
    end = np.where(finished, plan.finish, as_of + 1)  # exclusive
    m_start = month_number(plan.start)
    counts = month_number(end - 1) - m_start + 1
    project, k, offsets = expand(counts)
    month = m_start[project] + k
    start, days = plan.start[project], plan.actual_days[project].astype(float)
    lower = np.clip(month_first_day(month) - start, 0, None) / days
    upper = (np.minimum(month_first_day(month + 1), end[project]) - start) / days

    hours = np.empty((len(project), len(ROLES)))
    for j, role in enumerate(ROLES):  # six roles: a loop over columns, not rows
        a, b = P.ROLE_PHASE_SHAPES[role]
        hours[:, j] = kumaraswamy_cdf(upper, a, b) - kumaraswamy_cdf(lower, a, b)
    expected = plan.role_effort[project] * hours
    noisy = expected * np.exp(P.MONTHLY_HOURS_NOISE * rng.standard_normal(expected.shape))
    # Rescale the noise so each project-role total equals the noiseless total exactly.
    target = np.add.reduceat(expected, offsets, axis=0)
    got = np.add.reduceat(noisy, offsets, axis=0)
    scale = np.divide(target, got, out=np.zeros_like(target), where=got > 0)
    return {"project": project, "month_index": k,
            "hours": _round_keeping_totals(noisy * scale[project], project, offsets)}


def _round_keeping_totals(hours: np.ndarray, project: np.ndarray, offsets: np.ndarray):
    """Round to 0.01 h so that each project's running total (hence its sum) rounds exactly."""
    running = np.cumsum(hours, axis=0)
    running -= (running[offsets] - hours[offsets])[project]  # restart at each project
    cents = np.round(running * 100)
    before = np.roll(cents, 1, axis=0)
    before[offsets] = 0
    return (cents - before) / 100
