"""Score and rank intake candidates: finance, risk-adjusted value, scorecard, MoSCoW.

`score_candidates` is the one path behind `opm-ml intake score`, `POST /v1/intake/score`, the
portfolio optimiser and the dashboard. Every figure of a candidate comes from its own row and
the scorecard version, so it is the same alone or in any batch; only `rank` (the order of this
answer) looks at the others. The open pipeline's view is separate (`pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opm_ml.intake import finance, scales, scorecard
from opm_ml.intake.candidates import Candidates
from opm_ml.intake.past_projects import PastProjects, for_profile
from opm_ml.intake.risk import NEUTRAL_SCORE, Forecaster, assess_risk, drivers_text
from opm_ml.intake.sensitivity import weight_intervals

_MOSCOW_ORDER = {c: k for k, c in enumerate(scorecard.MOSCOW)}


@dataclass
class ScoredCandidates:
    """Ranked table plus what portfolio selection needs, in the input's row order."""

    candidates: Candidates
    table: pd.DataFrame  # one row per candidate, input order; `rank` 1 = best
    drivers: dict[str, list[list[dict]]]  # family -> per candidate top SHAP drivers
    monthly_hours: list[np.ndarray]  # per candidate (roles, planned months), P50
    cost_factor: np.ndarray  # E[cost] / BAC
    config: scorecard.ScorecardConfig
    criterion_scores: pd.DataFrame  # criterion -> 0..1 score, unrounded
    sensitivity: dict[str, pd.DataFrame] = field(default_factory=dict)  # criterion -> intervals
    roles: tuple[str, ...] = ()  # the rows of `monthly_hours` (none without role forecasts)
    notes: list[str] = field(default_factory=list)  # what a family the models lack changes
    no_roles: str = ""  # why `roles` is empty (what refuses a portfolio's capacity by role)

    @property
    def config_version(self) -> str:
        return self.config.version

    def ranked(self) -> pd.DataFrame:
        return self.table.sort_values("rank").reset_index(drop=True)


def rank_order(moscow: pd.Series, score: pd.Series, value: pd.Series) -> np.ndarray:
    """1-based ranks: by MoSCoW class (must first), then score; ties by risk-adjusted value."""
    order = np.lexsort((-value.to_numpy(float), -score.to_numpy(float),
                        moscow.map(_MOSCOW_ORDER).to_numpy()))
    rank = np.empty(len(order), int)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


def score_candidates(candidates: Candidates, forecaster: Forecaster,
                     config: scorecard.ScorecardConfig | None = None,
                     top_k: int = 3, past: PastProjects | None = None) -> ScoredCandidates:
    """Finance + model forecasts + fixed-scale scorecard + MoSCoW + weight stability.

    `past`: the past projects the models of a dataset profile carry (`past_projects.carried`);
    a profile's percentile scales compare with them, never with the scorecard's reference."""
    c = candidates
    flows = c.benefits - c.costs
    irr, irr_note = finance.irr(flows)
    risk = assess_risk(c, forecaster, top_k)
    r = risk["table"]
    config, unmeasured, notes = for_profile(config or scorecard.load_config(), c.profile, past,
                                            risk["neutral"])
    fit = scorecard.strategic_fit(c.alignment, c.fit, config.objectives.weights, config.version)
    measured = scales.measures(r["risk_adjusted_npv"], r["expected_cost_pv"], fit,
                               r["probability_late"], r["overrun_pct_p90"], r["effort_hours_p50"])
    scores = scorecard.criterion_scores(measured, config)
    for criterion in risk["neutral"] + unmeasured:  # no served model or reference measures it
        scores[criterion] = NEUTRAL_SCORE
    pts = scorecard.points(scores, config.weights)
    klass = scorecard.moscow(pts["score"], r["risk_adjusted_npv"], c.mandatory, config)
    stability = weight_intervals(scores, config.weights, r["risk_adjusted_npv"], c.mandatory,
                                 config)
    table = pd.DataFrame({
        "project_id": c.ids,
        **({"name": c.frame["name"].astype(object).where(c.frame["name"].notna(), None)}
           if "name" in c.frame else {}),
        "moscow": klass,
        "score": pts["score"].round(2),
        **{f"points_{k}": pts[f"points_{k}"].round(2) for k in scorecard.CRITERIA},
        **{f"score_{k}": scores[k].round(4) for k in scorecard.CRITERIA},
        **{f"measure_{k}": measured[k] for k in scorecard.CRITERIA},
        **{f"stable_{end}_{k}": stability[k][end].round(4) for k in scorecard.CRITERIA
           for end in ("low", "high")},
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
        **{f"top_drivers_{family}": drivers_text(risk["drivers"][family])
           if family in risk["drivers"] else [""] * len(c.ids)
           for family in ("delay", "overrun")},
        "scorecard_version": config.version,
        "scorecard_digest": config.digest,
        "reference_digest": config.reference_digest or "",
    })
    table.insert(0, "rank", rank_order(table["moscow"], table["score"],
                                       table["risk_adjusted_npv"]))
    return ScoredCandidates(c, table, risk["drivers"], risk["monthly_hours"],
                            risk["cost_factor"], config, scores, stability, risk["roles"],
                            risk["notes"] + notes, risk["no_roles"])
