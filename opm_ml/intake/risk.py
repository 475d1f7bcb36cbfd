"""Risk-adjusted value from the delay, overrun and resource-demand forecasts.

* Expected cost = Pearson-Tukey mean of the overrun model's cost quantiles,
  E[C] ~ 0.185 P10 + 0.63 P50 + 0.185 P90 (Keefer & Bodily 1983): a three-point approximation
  of a skewed distribution's mean, better than P50 alone when overruns have a long right tail.
  Every year's cost is scaled by E[C] / BAC.
* Benefits arrive later by the delay model's P50 delay (signed, in years), then are discounted.
* Resource demand: the resource model's P50 hours per role spread over the planned months.
risk-adjusted value = NPV(delayed benefits) - NPV(expected costs).

Models trained on a dataset profile may lack a family. A missing family contributes neutrally
and `notes` says so: no overrun model -> expected cost = the planned cost (cost factor 1, no
overrun %); no delay model -> benefits on plan (delay 0, no P(late)); no resource model -> no
effort and no role hours. The risk measure then averages the terms it has, and a criterion
with no measure at all scores the neutral 0.5 (`neutral`).
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


NEUTRAL_SCORE = 0.5  # a criterion's 0..1 score when no served model measures it


def missing_note(family: str, profile: str, consequence: str) -> str:
    return f"no {family} model in profile {profile}: {consequence}"


def assess_risk(candidates: Candidates, forecaster: Forecaster, top_k: int = 3) -> dict:
    """Forecasts, risk-adjusted finance and monthly role demand of every candidate.

    Returns {"table": per-candidate DataFrame, "drivers": {family: [[driver, ...], ...]},
    "monthly_hours": list of (roles, months) arrays, "cost_factor": (n,) E[C] / BAC,
    "roles": the role names of those rows ("no_roles": why none), "notes": what a missing
    family changes,
    "neutral": criteria no served model measures}.
    """
    x = candidates.model_input
    n, profile = len(x), candidates.profile
    notes: list[str] = []
    nan = np.full(n, np.nan)
    planned = candidates.planned_cost
    planned = (x["budget_at_completion"].to_numpy() if planned is None
               else np.asarray(planned, float))
    drivers: dict[str, list[list[dict]]] = {}
    if "delay" in forecaster:
        delay = forecaster["delay"](x)
        delay_p50 = delay["delay_days_p50"].to_numpy(float)
        delay_p90 = delay["delay_days_p90"].to_numpy(float)
        late = (delay["probability_late"].to_numpy(float) if "probability_late" in delay
                else nan)
        drivers["delay"] = top_drivers(delay, top_k)
    else:
        delay_p50, delay_p90, late = np.zeros(n), np.zeros(n), nan
        notes.append(missing_note("delay", profile, "benefits arrive as planned (delay 0) and "
                                  "the risk criterion has no P(late)"))
    if "overrun" in forecaster:
        overrun = forecaster["overrun"](x)
        quantiles = overrun[["cost_p10", "cost_p50", "cost_p90"]].to_numpy(float)
        expected_cost = quantiles @ np.asarray(PEARSON_TUKEY)
        cost_factor = expected_cost / planned
        overrun_p50 = overrun["overrun_pct_p50"].to_numpy(float)
        overrun_p90 = overrun["overrun_pct_p90"].to_numpy(float)
        drivers["overrun"] = top_drivers(overrun, top_k)
    else:
        expected_cost, cost_factor, overrun_p50, overrun_p90 = planned, np.ones(n), nan, nan
        notes.append(missing_note("overrun", profile, "expected cost = planned cost (cost "
                                  "factor 1) and the risk criterion has no overrun"))
    delay_years = delay_p50 / 365.25
    rate = candidates.discount_rate
    benefit_pv = finance.npv(candidates.benefits, rate, delay_years)
    cost_pv = finance.npv(candidates.costs * cost_factor[:, None], rate)
    roles: tuple[str, ...] = ()
    no_roles = ""  # why there are no role hours, when there are none
    by_role: dict[str, np.ndarray] = {}
    if "resource" in forecaster:
        resource = forecaster["resource"](x)
        effort = resource["effort_hours_p50"].to_numpy(float)
        if "monthly_profile" in resource:
            profiles = [json.loads(p) for p in resource["monthly_profile"]]
            roles = tuple(ROLES) if candidates.manifest is None else tuple(
                candidates.manifest.roles)
            monthly = [np.array([p["hours"][r] for r in roles]) for p in profiles]
            by_role = {r: resource[f"effort_{r}_hours_p50"].to_numpy(float) for r in roles}
        else:
            monthly = [np.zeros((0, m)) for m in candidates.planned_months]
            no_roles = f"the resource model of profile {profile} forecasts no hours by role"
            notes.append(f"{no_roles}: portfolio capacity by role cannot be checked")
    else:
        effort = nan
        monthly = [np.zeros((0, m)) for m in candidates.planned_months]
        no_roles = f"profile {profile} has no resource model"
        notes.append(missing_note("resource", profile, "no effort forecast, so the resource "
                                  f"load criterion scores a neutral {NEUTRAL_SCORE} and "
                                  "portfolio capacity by role cannot be checked"))
    neutral = [c for c, missing in (("risk", np.isnan(late).all() and np.isnan(overrun_p90).all()),
                                    ("resource_load", "resource" not in forecaster)) if missing]
    if "risk" in neutral:
        notes.append(f"neither a delay nor an overrun model in profile {profile}: the risk "
                     f"criterion scores a neutral {NEUTRAL_SCORE}")
    table = pd.DataFrame({
        "delay_days_p50": delay_p50,
        "delay_days_p90": delay_p90,
        "probability_late": late,
        "overrun_pct_p50": overrun_p50,
        "overrun_pct_p90": overrun_p90,
        "expected_cost": expected_cost,
        "expected_cost_pv": cost_pv,
        "risk_adjusted_npv": benefit_pv - cost_pv,
        "effort_hours_p50": effort,
        **{f"effort_{r}_hours_p50": hours for r, hours in by_role.items()},
    })
    return {"table": table, "drivers": drivers, "monthly_hours": monthly,
            "cost_factor": cost_factor, "roles": roles, "no_roles": no_roles, "notes": notes,
            "neutral": neutral}
