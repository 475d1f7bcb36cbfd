"""Risk-adjusted value from the delay, overrun and resource-demand forecasts.

* Expected cost = Pearson-Tukey mean of the overrun model's cost quantiles,
  E[C] ~ 0.185 P10 + 0.63 P50 + 0.185 P90 (Keefer & Bodily 1983): a three-point approximation
  of a skewed distribution's mean, better than P50 alone when overruns have a long right tail.
  Every year's cost is scaled by E[C] / BAC.
* Benefits arrive later by the delay model's P50 delay (signed, in years), then are discounted.
* Resource demand: the resource model's P50 hours per role spread over the planned months.
risk-adjusted value = NPV(delayed benefits) - NPV(expected costs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from opm_ml.contract import ROLES
from opm_ml.intake import finance
from opm_ml.intake.candidates import Candidates

PEARSON_TUKEY = (0.185, 0.63, 0.185)
# family -> function(model input frame) -> the family pyfunc's output frame
Forecaster = Mapping[str, Callable[[pd.DataFrame], pd.DataFrame]]


def model_forecaster(models: Mapping) -> dict[str, Callable[[pd.DataFrame], pd.DataFrame]]:
    """Forecaster over fitted `FamilyModel`s by family (what a `ModelSet` serves)."""
    return {family: (lambda frame, m=model: m.predict(frame).to_frame())
            for family, model in models.items()}


def top_drivers(forecast: pd.DataFrame, k: int = 3, prefix: str = "shap__") -> list[list[dict]]:
    """Per row, the k features with the largest |SHAP| (log-ratio space of the P50)."""
    cols = [c for c in forecast.columns if c.startswith(prefix)]
    values = forecast[cols].to_numpy(float)
    magnitude = np.where(np.isnan(values), -1.0, np.abs(values))
    order = np.argsort(-magnitude, axis=1, kind="stable")[:, :k]
    names = np.asarray([c[len(prefix):] for c in cols], dtype=object)
    return [[{"feature": names[j], "contribution": float(values[i, j])} for j in row]
            for i, row in enumerate(order.tolist())]


def drivers_text(drivers: list[list[dict]]) -> list[str]:
    return ["; ".join(f"{d['feature']} {d['contribution']:+.3f}" for d in row) for row in drivers]


def assess_risk(candidates: Candidates, forecaster: Forecaster, top_k: int = 3) -> dict:
    """Forecasts, risk-adjusted finance and monthly role demand of every candidate.

    Returns {"table": per-candidate DataFrame, "drivers": {family: [[driver, ...], ...]},
    "monthly_hours": list of (roles, months) arrays, "cost_factor": (n,) E[C] / BAC}.
    """
    x = candidates.model_input
    delay = forecaster["delay"](x)
    overrun = forecaster["overrun"](x)
    resource = forecaster["resource"](x)
    bac = x["budget_at_completion"].to_numpy()
    quantiles = overrun[["cost_p10", "cost_p50", "cost_p90"]].to_numpy(float)
    expected_cost = quantiles @ np.asarray(PEARSON_TUKEY)
    cost_factor = expected_cost / bac
    delay_years = delay["delay_days_p50"].to_numpy(float) / 365.25
    rate = candidates.discount_rate
    benefit_pv = finance.npv(candidates.benefits, rate, delay_years)
    cost_pv = finance.npv(candidates.costs * cost_factor[:, None], rate)
    profiles = [json.loads(p) for p in resource["monthly_profile"]]
    monthly = [np.array([p["hours"][r] for r in ROLES]) for p in profiles]
    table = pd.DataFrame({
        "delay_days_p50": delay["delay_days_p50"].to_numpy(float),
        "delay_days_p90": delay["delay_days_p90"].to_numpy(float),
        "probability_late": delay["probability_late"].to_numpy(float),
        "overrun_pct_p50": overrun["overrun_pct_p50"].to_numpy(float),
        "overrun_pct_p90": overrun["overrun_pct_p90"].to_numpy(float),
        "expected_cost": expected_cost,
        "expected_cost_pv": cost_pv,
        "risk_adjusted_npv": benefit_pv - cost_pv,
        "effort_hours_p50": resource["effort_hours_p50"].to_numpy(float),
        **{f"effort_{r}_hours_p50": resource[f"effort_{r}_hours_p50"].to_numpy(float)
           for r in ROLES},
    })
    drivers = {"delay": top_drivers(delay, top_k), "overrun": top_drivers(overrun, top_k)}
    return {"table": table, "drivers": drivers, "monthly_hours": monthly,
            "cost_factor": cost_factor}
