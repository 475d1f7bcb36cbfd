"""Score and rank intake candidates: finance, risk-adjusted value, scorecard, MoSCoW.

`score_candidates` is the one path behind `opm-ml intake score` and `POST /v1/intake/score`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.intake import finance, scorecard
from opm_ml.intake.candidates import Candidates
from opm_ml.intake.risk import Forecaster, assess_risk, drivers_text

_MOSCOW_ORDER = {c: k for k, c in enumerate(scorecard.MOSCOW)}


@dataclass
class ScoredCandidates:
    """Ranked table plus what portfolio selection needs, in the input's row order."""

    candidates: Candidates
    table: pd.DataFrame  # one row per candidate, input order; `rank` 1 = best
    drivers: dict[str, list[list[dict]]]  # family -> per candidate top SHAP drivers
    monthly_hours: list[np.ndarray]  # per candidate (roles, planned months), P50
    cost_factor: np.ndarray  # E[cost] / BAC
    config_version: str

    def ranked(self) -> pd.DataFrame:
        return self.table.sort_values("rank").reset_index(drop=True)


def score_candidates(candidates: Candidates, forecaster: Forecaster,
                     config: scorecard.ScorecardConfig | None = None,
                     top_k: int = 3) -> ScoredCandidates:
    """Finance + model forecasts + weighted scorecard + MoSCoW for every candidate."""
    config = config or scorecard.load_config()
    c = candidates
    flows = c.benefits - c.costs
    irr, irr_note = finance.irr(flows)
    risk = assess_risk(c, forecaster, top_k)
    r = risk["table"]
    fit = scorecard.strategic_fit(c.alignment, c.model_input["strategic_fit"].to_numpy(), config)
    scores = scorecard.criterion_scores(r["risk_adjusted_npv"], fit, r["probability_late"],
                                        r["overrun_pct_p90"], r["effort_hours_p50"])
    pts = scorecard.points(scores, config)
    klass = scorecard.moscow(pts["score"], r["risk_adjusted_npv"], c.mandatory, config)
    table = pd.DataFrame({
        "project_id": c.ids,
        **({"name": c.frame["name"].astype(str)} if "name" in c.frame else {}),
        "moscow": klass,
        "score": pts["score"].round(2),
        **{f"points_{k}": pts[f"points_{k}"].round(2) for k in scorecard.CRITERIA},
        **{f"score_{k}": scores[k].round(4) for k in scorecard.CRITERIA},
        "mandatory": c.mandatory,
        "npv": finance.npv(flows, c.discount_rate),
        "roi": finance.roi(c.costs, c.benefits),
        "payback_years": finance.payback_years(flows),
        "irr": irr,
        "irr_note": [n or "" for n in irr_note],
        **r,
        "total_cost": c.costs.sum(axis=1),
        "cost_basis": c.cost_basis,
        "benefit_basis": c.benefit_basis,
        "top_drivers_delay": drivers_text(risk["drivers"]["delay"]),
        "top_drivers_overrun": drivers_text(risk["drivers"]["overrun"]),
        "scorecard_version": config.version,
    })
    # Rank: must first, then by MoSCoW class, then score; ties by risk-adjusted value.
    order = np.lexsort((-table["risk_adjusted_npv"].to_numpy(), -table["score"].to_numpy(),
                        table["moscow"].map(_MOSCOW_ORDER).to_numpy()))
    rank = np.empty(len(table), int)
    rank[order] = np.arange(1, len(table) + 1)
    table.insert(0, "rank", rank)
    return ScoredCandidates(c, table, risk["drivers"], risk["monthly_hours"],
                            risk["cost_factor"], config.version)
