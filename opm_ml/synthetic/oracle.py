"""The oracle: the generator's exact conditional distribution of outcomes given intake fields.

No model can beat it on average, so its errors are the achievable floor. Given the intake, the
only unknowns are the normal noise, the black-swan draw and the latent trouble factor T, whose
posterior we get from the three fields that leak it (claimed ROI, risk count, risk severity):
a fine grid finds each posterior's mean and sd, then adaptive Gauss-Hermite nodes integrate.
Approximations: the rare outcome caps (`params.COST_RATIO_BOUNDS` etc.) and whole-day rounding
of durations are ignored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import expit, gammaln, logit, logsumexp, ndtr

from opm_ml.synthetic import params as P
from opm_ml.synthetic.intake import risk_log_rate, severity_mean_logit
from opm_ml.synthetic.outcomes import (
    Drivers, linear_predictor, noise_sd, outcome_drivers, swan_tail, trouble_loading,
)
from opm_ml.synthetic.params import LATENT_SIGNALS as L

LATE_THRESHOLD = 1.1  # "late" = actual duration more than 10 % over plan
_GRID = np.linspace(-6, 6, 241)  # spacing 0.05, finer than the sharpest posterior sd (~0.1)
_NODES, _NODE_WEIGHTS = hermegauss(16)
_TAIL_U = (np.arange(16) + 0.5) / 16  # midpoint quantiles of a black swan's extra overrun
_CHUNK = 20_000


def _log_posterior(projects: pd.DataFrame, d: Drivers, trouble: np.ndarray) -> np.ndarray:
    """Unnormalised log posterior of T at points `trouble` (n, k): prior x leak likelihoods."""
    t = d.type_code[:, None]
    fit = np.asarray(projects["strategic_fit"], dtype=float)[:, None]
    log_roi = np.log1p(np.asarray(projects["expected_roi"], dtype=float))[:, None]
    roi_mean = (P.type_array("roi_log_mean")[t] + L.roi_per_fit_point * (fit - 6)
                + L.roi_per_trouble * trouble)
    out = -0.5 * trouble**2 - 0.5 * ((log_roi - roi_mean) / P.type_array("roi_sigma")[t]) ** 2

    n_risks = np.asarray(projects["num_identified_risks"], dtype=float)[:, None]
    log_rate = risk_log_rate(
        d.type_code, d.complexity + 3, d.volatility + 3, d.log_size,
        np.asarray(projects["pm_experience_years"], dtype=float),
    )[:, None] + L.risks_per_trouble * trouble
    poisson = n_risks * log_rate - np.exp(log_rate) - gammaln(n_risks + 1)
    keep = 1 - P.NO_RISK_REGISTER_PROB
    out += np.where(n_risks > 0, np.log(keep) + poisson,
                    np.log(P.NO_RISK_REGISTER_PROB + keep * np.exp(poisson)))

    severity = np.asarray(projects["mean_risk_severity"], dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = logit((severity - 1) / 4)
    z_mean = severity_mean_logit(d.complexity + 3)[:, None] + L.severity_per_trouble * trouble
    z_sd = L.severity_risk_sd / np.sqrt(np.maximum(n_risks, 1))
    out += np.where(n_risks > 0, -0.5 * ((z - z_mean) / z_sd) ** 2, 0.0)
    return out


def trouble_posterior(projects: pd.DataFrame, d: Drivers) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive Gauss-Hermite nodes (n, 16) of T's posterior and their weights (rows sum to 1)."""
    grid = np.broadcast_to(_GRID, (len(d.type_code), len(_GRID)))
    log_post = _log_posterior(projects, d, grid)
    w = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
    mean = (w * _GRID).sum(axis=1)
    sd = np.sqrt(np.maximum((w * _GRID**2).sum(axis=1) - mean**2, 1e-6))
    nodes = mean[:, None] + sd[:, None] * _NODES
    log_w = np.log(_NODE_WEIGHTS) + 0.5 * _NODES**2 + _log_posterior(projects, d, nodes)
    return nodes, np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))


@lru_cache(maxsize=2)
def swan_log_tail_mean(outcome: Literal["cost", "schedule"]) -> np.ndarray:
    """E[log(1 + black-swan extra overrun)] per project type (fine midpoint quadrature)."""
    u = (np.arange(100_000) + 0.5) / 100_000
    return np.array([np.log1p(swan_tail(u, np.full(u.size, t), outcome)).mean()
                     for t in range(len(P.TYPE_PROFILES))])


class _Conditional:
    """Mixture over T nodes of a normal body with or without a black-swan tail (one outcome)."""

    def __init__(self, d: Drivers, nodes, weights, swan_p, outcome: Literal["cost", "schedule"]):
        self.location = (linear_predictor(d, outcome)[:, None]
                         + trouble_loading(d, outcome)[:, None] * nodes)
        self.sd = noise_sd(d, outcome)[:, None]
        self.weights, self.swan_p = weights, swan_p
        u = np.broadcast_to(_TAIL_U, (len(d.type_code), _TAIL_U.size))
        self.tail = np.log1p(swan_tail(u, np.repeat(d.type_code[:, None], _TAIL_U.size, 1),
                                       outcome))
        tail_mean = swan_log_tail_mean(outcome)[d.type_code][:, None]
        self.mean = (weights * (self.location + swan_p * tail_mean)).sum(axis=1)

    def cdf(self, q: np.ndarray) -> np.ndarray:
        """P(log ratio <= q) per project."""
        gap = (q[:, None] - self.location) / self.sd  # (n, k)
        body = ndtr(gap)
        swan = ndtr(gap[:, :, None] - self.tail[:, None, :] / self.sd[:, :, None]).mean(axis=2)
        return (self.weights * ((1 - self.swan_p) * body + self.swan_p * swan)).sum(axis=1)

    def median(self, iterations: int = 24) -> np.ndarray:
        """Conditional median by bisection on [-3, 3] (log ratio; ~4e-7 precision)."""
        lo = np.full(len(self.mean), -3.0)
        hi = np.full(len(self.mean), 3.0)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            below = self.cdf(mid) < 0.5
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return (lo + hi) / 2


def _conditionals(projects: pd.DataFrame) -> tuple[_Conditional, _Conditional]:
    """Cost and schedule conditionals of one chunk of projects."""
    d = outcome_drivers(projects)
    nodes, weights = trouble_posterior(projects, d)
    swan_p = expit(linear_predictor(d, "black_swan")[:, None]
                   + trouble_loading(d, "black_swan")[:, None] * nodes)
    return (_Conditional(d, nodes, weights, swan_p, "cost"),
            _Conditional(d, nodes, weights, swan_p, "schedule"))


def _chunks(projects: pd.DataFrame):
    return (projects.iloc[i:i + _CHUNK] for i in range(0, len(projects), _CHUNK))


FORECAST_COLUMNS = ("expected_log_cost_ratio", "expected_log_duration_ratio",
                    "median_cost_ratio", "median_duration_ratio", "p_late", "p_cost_overrun")


def oracle_forecast(projects: pd.DataFrame) -> pd.DataFrame:
    """Per project: expected and median log ratios and P(late), from intake fields only.

    Columns (FORECAST_COLUMNS): expected log ratios, median ratios, p_late = P(actual duration
    > 1.1 x planned) and p_cost_overrun = P(actual cost > 1.1 x BAC). Index follows `projects`.
    """
    parts = []
    for chunk in _chunks(projects):
        cost, schedule = _conditionals(chunk)
        threshold = np.full(len(chunk), np.log(LATE_THRESHOLD))
        values = (cost.mean, schedule.mean, np.exp(cost.median()), np.exp(schedule.median()),
                  1 - schedule.cdf(threshold), 1 - cost.cdf(threshold))
        parts.append(pd.DataFrame(dict(zip(FORECAST_COLUMNS, values)), index=chunk.index))
    if not parts:
        return pd.DataFrame(columns=list(FORECAST_COLUMNS), dtype=float)
    return pd.concat(parts)


def expected_log_overrun(projects: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """E[log(actual_cost / BAC) | intake] and E[log(actual / planned duration) | intake]."""
    means = [(c.mean, s.mean) for c, s in map(_conditionals, _chunks(projects))]
    if not means:
        return np.empty(0), np.empty(0)
    cost, schedule = zip(*means)
    return np.concatenate(cost), np.concatenate(schedule)
