"""Intake attributes of synthetic projects: what a PMO knows when a project is approved.

Also draws the hidden "trouble" factor T ~ N(0, 1), because three intake fields leak it
(claimed ROI, number and severity of registered risks); T itself is never published.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_ml.contract import METHODOLOGIES, PROJECT_TYPES, REGIONS, ROLES, SECTORS
from opm_ml.synthetic import params as P
from opm_ml.synthetic.params import INTAKE_LINKS as K
from opm_ml.synthetic.params import LATENT_SIGNALS as L
from opm_ml.synthetic.regime import DEFAULT, Regime

CATEGORY_LISTS = {"project_type": PROJECT_TYPES, "sector": SECTORS, "region": REGIONS,
                  "methodology": METHODOLOGIES}


def sample_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category code per row of `probs` (rows sum to 1), by inverting the row's CDF."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return (u[:, None] >= cdf).sum(axis=1)


def _counts(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Over-dispersed counts (gamma-Poisson): real vendor and dependency counts vary a lot."""
    shape = K.count_dispersion_shape
    return np.minimum(rng.poisson(rng.gamma(shape, mean / shape)), 500).astype(np.int64)


def _ordinal(score: np.ndarray) -> np.ndarray:
    """A latent score cut into the contract's 1-5 scale."""
    return (1 + np.searchsorted(np.asarray(K.ordinal_cuts), score)).astype(np.int64)


def sample_intake(
    n: int, rng: np.random.Generator, as_of: np.datetime64, regime: Regime = DEFAULT
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Intake columns (categories by name, dates as datetime64[D]) and the hidden factor T."""
    t = rng.choice(len(PROJECT_TYPES), size=n, p=regime.type_shares(P.type_array("share")))
    sector = sample_categorical(rng, P.type_array("sector_probs")[t])
    region = sample_categorical(rng, P.type_array("region_probs")[t])

    first = np.datetime64(regime.first_start or P.FIRST_START, "D").astype(np.int64)
    last = (np.datetime64(regime.last_start, "D") if regime.last_start else
            as_of - np.timedelta64(P.START_WINDOW_END_GAP_DAYS, "D")).astype(np.int64)
    start = rng.integers(first, last + 1, size=n)
    y0, y1 = P.METHOD_DRIFT_YEARS
    drift = np.clip((1970 + start / 365.2425 - y0) / (y1 - y0), 0, 1)[:, None]
    method = sample_categorical(rng, (1 - drift) * P.type_array("method_probs_2012")[t]
                                + drift * P.type_array("method_probs_2025")[t])

    bac_median, bac_sigma = P.type_array("bac_median")[t], P.type_array("bac_sigma")[t]
    bac = np.round(np.clip(bac_median * np.exp(bac_sigma * rng.standard_normal(n)), 2e4, 2e10), 2)
    log_size = np.log(bac / bac_median)
    z_size = log_size / bac_sigma
    planned_days = P.type_array("duration_median_days")[t] * np.exp(
        P.type_array("duration_exponent")[t] * log_size
        + P.type_array("duration_sigma")[t] * rng.standard_normal(n))
    planned_days = np.clip(np.round(planned_days), 30, 3650).astype(np.int64)

    rate = (np.array(list(P.REGION_RATES.values()))[region] * P.type_array("rate_multiplier")[t]
            * np.exp(K.rate_sigma * rng.standard_normal(n)))
    effort = np.round(np.clip(bac * P.type_array("labour_share")[t] / rate, 1, 1e8), 1)
    mean_heads = effort / (planned_days / 365.25 * P.HOURS_PER_FTE_YEAR)
    team = np.clip(np.ceil(P.PEAK_TO_MEAN_STAFFING * mean_heads), 1, 5000).astype(np.int64)

    draws = rng.gamma(P.ROLE_MIX_CONCENTRATION * P.type_array("role_mix")[t])
    shares = np.round(draws / draws.sum(axis=1, keepdims=True), 4)
    build = ROLES.index("build")  # the largest share absorbs the rounding residue
    shares[:, build] = 1 - (shares.sum(axis=1) - shares[:, build])

    complexity_score = (P.type_array("complexity_offset")[t] + K.complexity_per_size_sd * z_size
                        + rng.standard_normal(n))
    complexity = _ordinal(complexity_score)
    # Teams choose agile where scope is expected to churn: a selection effect, not causation.
    volatility = _ordinal(P.type_array("volatility_offset")[t]
                          + np.asarray(K.volatility_method_shift)[method]
                          + K.volatility_per_complexity_score * complexity_score
                          + regime.volatility_shift + rng.standard_normal(n))

    vendors = _counts(rng, P.type_array("vendors_mean")[t]
                      * np.exp(K.vendors_per_log_size * log_size))
    public = sector == SECTORS.index("public")
    dependencies = _counts(rng, P.type_array("dependencies_mean")[t]
                           * np.exp(K.dependencies_per_log_size * log_size
                                    + K.dependencies_per_complexity * (complexity - 3))
                           * np.where(public, K.dependencies_public_factor, 1.0))
    # Bigger projects get more experienced managers: a confounder of size and experience.
    pm_years = rng.gamma(*K.pm_years_gamma, n) * np.exp(K.pm_years_per_size_sd * z_size)
    pm_years = np.round(np.clip(pm_years, 0, 45), 1)
    fit = np.round(10 * rng.beta(*K.strategic_fit_beta, n), 1)

    trouble = rng.standard_normal(n)
    log_roi = (P.type_array("roi_log_mean")[t] + L.roi_per_fit_point * (fit - 6)
               + L.roi_per_trouble * trouble
               + P.type_array("roi_sigma")[t] * rng.standard_normal(n))

    kept = rng.random(n) >= P.NO_RISK_REGISTER_PROB
    risk_rate = np.exp(risk_log_rate(t, complexity, volatility, log_size, pm_years)
                       + L.risks_per_trouble * trouble)
    n_risks = np.where(kept, np.minimum(rng.poisson(risk_rate), 1000), 0).astype(np.int64)
    severity_logit = (severity_mean_logit(complexity) + L.severity_per_trouble * trouble
                      + L.severity_risk_sd / np.sqrt(np.maximum(n_risks, 1))
                      * rng.standard_normal(n))
    severity = np.where(n_risks > 0, 1 + 4 / (1 + np.exp(-severity_logit)), 0.0)

    columns = {
        "project_type": t, "sector": sector, "region": region, "methodology": method,
        "start_date": start.astype("datetime64[D]"), "planned_duration_days": planned_days,
        "budget_at_completion": bac, "planned_effort_hours": effort, "planned_team_size": team,
        **{f"role_share_{r}": shares[:, i] for i, r in enumerate(ROLES)},
        "complexity": complexity, "requirements_volatility": volatility,
        "num_vendors": vendors, "num_dependencies": dependencies,
        "pm_experience_years": pm_years, "strategic_fit": fit,
        "expected_benefits": np.round(bac * np.exp(log_roi), 2), "expected_roi": np.expm1(log_roi),
        "num_identified_risks": n_risks, "mean_risk_severity": severity,
    }
    for name, categories in CATEGORY_LISTS.items():  # sampled as codes, published by name
        columns[name] = np.asarray(categories)[columns[name]]
    return columns, trouble


def risk_log_rate(t, complexity, volatility, log_size, pm_years) -> np.ndarray:
    """Log of the expected number of registered risks, before the trouble factor."""
    return (np.log(P.type_array("risks_mean")[t]) + L.risks_per_complexity * (complexity - 3)
            + L.risks_per_volatility * (volatility - 3) + L.risks_per_log_size * log_size
            + L.risks_per_log_pm * np.log((pm_years + 1) / 10))


def severity_mean_logit(complexity) -> np.ndarray:
    """Mean of the severity logit before the trouble factor."""
    return L.severity_base + L.severity_per_complexity * (np.asarray(complexity) - 3)


def codes(values, categories: tuple[str, ...], name: str) -> np.ndarray:
    """Category strings to codes; an unknown value raises, naming the column and the value."""
    values = np.asarray(values, dtype=object)
    cat = pd.Categorical(values, categories=list(categories))
    bad = cat.codes < 0
    if bad.any():
        raise ValueError(f"{name}: unknown category {values[bad][0]!r}; "
                         f"allowed: {', '.join(categories)}")
    return cat.codes.astype(np.int64)
