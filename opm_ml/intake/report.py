"""Scored candidates and portfolio reports as JSON-ready dicts (API answers, no NaN)."""

from __future__ import annotations

import math

import pandas as pd

from opm_ml.contract import ROLES
from opm_ml.intake.scorecard import CRITERIA
from opm_ml.intake.scoring import ScoredCandidates

_FINANCE = ("npv", "roi", "payback_years", "irr", "irr_note", "total_cost", "cost_basis",
            "benefit_basis")
_RISK = ("delay_days_p50", "delay_days_p90", "probability_late", "overrun_pct_p50",
         "overrun_pct_p90", "expected_cost", "risk_adjusted_npv", "effort_hours_p50",
         *(f"effort_{r}_hours_p50" for r in ROLES))


def _clean(value):
    """numpy scalars -> Python, NaN -> None."""
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def scored_json(scored: ScoredCandidates) -> list[dict]:
    """Ranked candidates (best first) with points, scores, finance, risk and SHAP drivers."""
    t = scored.table
    items = []
    for i in t["rank"].to_numpy().argsort():
        row = {k: _clean(v) for k, v in t.iloc[i].items()}
        items.append({
            "rank": row["rank"], "project_id": row["project_id"], "name": row.get("name"),
            "moscow": row["moscow"], "score": row["score"],
            "points": {c: row[f"points_{c}"] for c in CRITERIA},
            "criterion_scores": {c: row[f"score_{c}"] for c in CRITERIA},
            "finance": {k: (row[k] if row[k] != "" else None) for k in _FINANCE},
            "risk": {k: row[k] for k in _RISK},
            "top_drivers": {family: drivers[i] for family, drivers in scored.drivers.items()},
        })
    return items


def portfolio_json(report: dict) -> dict:
    """`select_portfolio`'s report with every table as a list of records."""
    d = report["decisions"]
    out = {k: _clean(v) for k, v in report.items() if not isinstance(v, pd.DataFrame)}
    out["selected"] = d.loc[d["selected"], "project_id"].tolist()
    out["rejected"] = d.loc[~d["selected"], "project_id"].tolist()
    for name in ("decisions", "binding", "budget", "resource_load", "frontier"):
        out[name] = records(report[name])
    return out
