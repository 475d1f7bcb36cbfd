"""Outcomes of synthetic projects: cost, schedule and effort overrun from documented causes.

log(actual / planned) = type base + true effects x drivers + loading x T + normal noise
                        + [black swan] x log(1 + heavy-tailed extra overrun)
with T the shared latent trouble factor and the black-swan probability itself a logistic
function of the same drivers and T. `opm_ml.synthetic.oracle` integrates exactly this model.
Each project also gets the size of its late CPI drift (how much of the overrun shows only late).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import expit, logit, ndtr, ndtri

from opm_ml.contract import ROLES, SECTORS
from opm_ml.synthetic import params as P
from opm_ml.synthetic.intake import CATEGORY_LISTS, codes
from opm_ml.synthetic.regime import DEFAULT, Regime

Outcome = Literal["cost", "schedule", "black_swan"]


@dataclass(frozen=True)
class Drivers:
    """The centred intake drivers the true effects multiply (see `params.Effects`)."""

    type_code: np.ndarray
    method_code: np.ndarray
    complexity: np.ndarray
    volatility: np.ndarray
    log_vendors: np.ndarray
    log_dependencies: np.ndarray
    log_pm_experience: np.ndarray
    log_size: np.ndarray
    public_sector: np.ndarray


def outcome_drivers(projects) -> Drivers:
    """Drivers from a projects frame (or any mapping of intake columns to arrays)."""
    t = codes(projects["project_type"], CATEGORY_LISTS["project_type"], "project_type")
    num = {name: np.asarray(projects[name], dtype=float) for name in (
        "complexity", "requirements_volatility", "num_vendors", "num_dependencies",
        "pm_experience_years", "budget_at_completion")}
    return Drivers(
        type_code=t,
        method_code=codes(projects["methodology"], CATEGORY_LISTS["methodology"], "methodology"),
        complexity=num["complexity"] - 3,
        volatility=num["requirements_volatility"] - 3,
        log_vendors=np.log1p(num["num_vendors"]) - np.log1p(P.type_array("vendors_mean")[t]),
        log_dependencies=np.log1p(num["num_dependencies"])
        - np.log1p(P.type_array("dependencies_mean")[t]),
        log_pm_experience=np.log((num["pm_experience_years"] + 1) / 10),
        log_size=np.log(num["budget_at_completion"] / P.type_array("bac_median")[t]),
        public_sector=(codes(projects["sector"], SECTORS, "sector") == SECTORS.index("public"))
        .astype(float),
    )


def linear_predictor(d: Drivers, outcome: Outcome) -> np.ndarray:
    """The part of a log ratio (or the black-swan logit) explained by intake drivers."""
    e = P.TRUE_EFFECTS[outcome]
    base = {"cost": P.type_array("cost_base"), "schedule": P.type_array("schedule_base"),
            "black_swan": logit(P.type_array("swan_prob"))}[outcome][d.type_code]
    volatility_slope = np.array([e.volatility_agile, e.volatility_waterfall,
                                 e.volatility_hybrid])[d.method_code]
    method = np.array([e.method_agile, e.method_waterfall, 0.0])[d.method_code]
    return (base + method + volatility_slope * d.volatility + e.complexity * d.complexity
            + e.log_vendors * d.log_vendors + e.log_dependencies * d.log_dependencies
            + e.log_pm_experience * d.log_pm_experience + e.log_size * d.log_size
            + e.public_sector * d.public_sector)


def trouble_loading(d: Drivers, outcome: Outcome) -> np.ndarray:
    """How strongly the latent trouble factor T moves this outcome, per project."""
    scale = P.TRUE_EFFECTS[outcome].latent_trouble
    if outcome == "black_swan":
        return np.full(len(d.type_code), scale)
    return scale * P.type_array(f"{outcome}_trouble")[d.type_code]


def noise_sd(d: Drivers, outcome: Literal["cost", "schedule"]) -> np.ndarray:
    """Sd of the unexplained normal noise of a log ratio, per project."""
    return P.type_array(f"{outcome}_noise")[d.type_code]


def swan_tail(u: np.ndarray, type_code: np.ndarray, outcome: Literal["cost", "schedule"]):
    """Extra overrun of a black swan at quantile `u`: min + Lomax(scale, alpha), fat-tailed."""
    spec = np.array([getattr(P.TYPE_PROFILES[t], f"swan_{outcome}") for t in P.TYPE_PROFILES])
    low, scale, alpha = np.moveaxis(spec[type_code], -1, 0)
    return low + scale * ((1 - u) ** (-1 / alpha) - 1)


@dataclass(frozen=True)
class Outcomes:
    """Realised outcomes of every project, finished or not (the history hides in-flight ones)."""

    actual_days: np.ndarray  # int64
    actual_cost: np.ndarray
    role_effort: np.ndarray  # (n, len(ROLES)) hours
    black_swan: np.ndarray  # bool, never published
    late_cpi_drift: np.ndarray  # log CPI lost after the drift onset, never published


def sample_outcomes(projects, trouble: np.ndarray, rng: np.random.Generator,
                    regime: Regime = DEFAULT) -> Outcomes:
    """Draw cost, schedule and per-role effort outcomes given intake columns and T (plus a
    regime's shift of the log ratios)."""
    d = outcome_drivers(projects)
    n = len(trouble)
    z_cost, z_other = rng.standard_normal((2, n))
    rho = P.COST_SCHEDULE_NOISE_CORRELATION
    noise_cost = noise_sd(d, "cost") * z_cost
    noise_schedule = noise_sd(d, "schedule") * (rho * z_cost + np.sqrt(1 - rho**2) * z_other)

    swan_p = expit(linear_predictor(d, "black_swan") + trouble_loading(d, "black_swan") * trouble)
    swan = rng.random(n) < swan_p
    u_cost = rng.random(n)
    r = P.SWAN_TAIL_RANK_CORRELATION
    u_schedule = ndtr(r * ndtri(u_cost) + np.sqrt(1 - r**2) * rng.standard_normal(n))

    log_cost = (linear_predictor(d, "cost") + trouble_loading(d, "cost") * trouble + noise_cost
                + swan * np.log1p(swan_tail(u_cost, d.type_code, "cost")))
    log_schedule = (linear_predictor(d, "schedule") + trouble_loading(d, "schedule") * trouble
                    + noise_schedule
                    + swan * np.log1p(swan_tail(u_schedule, d.type_code, "schedule")))
    log_cost, log_schedule = log_cost + regime.cost_shift, log_schedule + regime.schedule_shift
    log_cost = np.clip(log_cost, *np.log(P.COST_RATIO_BOUNDS))
    log_schedule = np.clip(log_schedule, *np.log(P.SCHEDULE_RATIO_BOUNDS))

    planned_days = np.asarray(projects["planned_duration_days"], dtype=float)
    actual_days = np.clip(np.round(planned_days * np.exp(log_schedule)), 1,
                          P.MAX_ACTUAL_DURATION_DAYS).astype(np.int64)
    bac = np.asarray(projects["budget_at_completion"], dtype=float)
    actual_cost = np.round(bac * np.exp(log_cost), 2)
    role_effort = _role_effort(projects, d, log_cost, np.log(actual_days / planned_days), rng)
    # Drawn last: the drift never changes the cost, schedule or effort draws above.
    late_drift = late_cpi_drift_size(late_cpi_drift_logit(d)
                                     + P.LATE_CPI_DRIFT.noise * rng.standard_normal(n))
    return Outcomes(actual_days, actual_cost, role_effort, swan, late_drift)


def late_cpi_drift_logit(d: Drivers) -> np.ndarray:
    """Intake-explained logit of the late CPI drift size (see `params.LateCpiDrift`)."""
    c = P.LATE_CPI_DRIFT
    method = np.array([c.method_agile, c.method_waterfall, 0.0])[d.method_code]
    return (c.base + method + c.volatility * d.volatility + c.complexity * d.complexity
            + c.log_vendors * d.log_vendors + c.log_dependencies * d.log_dependencies)


def late_cpi_drift_size(logit_size: np.ndarray) -> np.ndarray:
    """Drift size in log CPI: bounded by `max_size`, so it never dwarfs the final CPI."""
    return P.LATE_CPI_DRIFT.max_size * expit(logit_size)


def _role_effort(projects, d: Drivers, log_cost, log_schedule, rng) -> np.ndarray:
    """Actual hours per role: total effort tracks cost; the mix shifts with churn and delay."""
    n = len(log_cost)
    log_effort = (P.type_array("effort_elasticity")[d.type_code] * log_cost
                  + P.EFFORT_NOISE * rng.standard_normal(n))
    total = np.asarray(projects["planned_effort_hours"], dtype=float) * np.exp(log_effort)
    shares = np.column_stack([np.asarray(projects[f"role_share_{r}"], dtype=float)
                              for r in ROLES])
    volatility_effect = np.array([P.ROLE_VOLATILITY_EFFECT[r] for r in ROLES])
    schedule_effect = np.array([P.ROLE_SCHEDULE_EFFECT[r] for r in ROLES])
    weights = shares * np.exp(volatility_effect * d.volatility[:, None]
                              + schedule_effect * log_schedule[:, None]
                              + P.ROLE_EFFORT_NOISE * rng.standard_normal((n, len(ROLES))))
    return np.round(total[:, None] * weights / weights.sum(axis=1, keepdims=True), 1)
