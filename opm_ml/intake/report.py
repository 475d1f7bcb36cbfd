"""Scored candidates, the pipeline and portfolio reports as JSON-ready dicts (no NaN)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd

from opm_ml.intake.pipeline import PipelineView
from opm_ml.intake.scorecard import CRITERIA, ScorecardConfig
from opm_ml.intake.scoring import ScoredCandidates

_FINANCE = ("npv", "roi", "payback_years", "irr", "irr_note", "total_cost", "cost_basis",
            "benefit_basis")
_RISK = ("delay_days_p50", "delay_days_p90", "probability_late", "overrun_pct_p50",
         "overrun_pct_p90", "expected_cost", "expected_cost_pv", "risk_adjusted_npv",
         "effort_hours_p50")


def _clean(value):
    """numpy scalars -> Python, NaN and infinities -> None, timestamps -> ISO (UTC)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, datetime):  # SQLite hands back naive UTC stamps
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def record(row: dict) -> dict:
    return {k: _clean(v) for k, v in row.items()}


def records(frame: pd.DataFrame) -> list[dict]:
    return [record(row) for row in frame.to_dict("records")]


def scorecard_json(config: ScorecardConfig) -> dict:
    """What every intake answer names: scorecard version, its digests and the weights used."""
    return {"scorecard_version": config.version, "scorecard_digest": config.digest,
            "reference_digest": config.reference_digest,
            "weights": {"criteria": config.criteria.describe(),
                        "objectives": config.objectives.describe()}}


def _sensitivity(scored: ScoredCandidates, i: int) -> dict:
    # 4 decimals: a weight range is read, not recomputed (0.4, not 0.4000000000000001)
    return {c: {k: _clean(round(v, 4) if isinstance(v, float) else v)
                for k, v in scored.sensitivity[c].iloc[i].items()} for c in CRITERIA}


def scored_json(scored: ScoredCandidates, view: PipelineView | None = None) -> list[dict]:
    """Ranked candidates (best first): score, points, measures, weight stability, pipeline
    place (null without a pipeline), finance, risk and SHAP drivers."""
    t = scored.table
    place = view.frame.set_index("project_id") if view is not None else None
    risk_keys = (*_RISK, *(f"effort_{r}_hours_p50" for r in scored.roles))
    warnings = scored.candidates.warnings
    items = []
    for i in t["rank"].to_numpy().argsort():
        row = {k: _clean(v) for k, v in t.iloc[i].items()}
        pipeline = None
        if place is not None:
            p = place.loc[row["project_id"]]
            pipeline = {"rank": int(p["pipeline_rank"]), "size": int(p["pipeline_size"]),
                        "percentile": _clean(p["pipeline_percentile"])}
        items.append({
            "rank": row["rank"], "project_id": row["project_id"], "name": row.get("name"),
            "moscow": row["moscow"], "score": row["score"],
            "points": {c: row[f"points_{c}"] for c in CRITERIA},
            "criterion_scores": {c: row[f"score_{c}"] for c in CRITERIA},
            "measures": {c: row[f"measure_{c}"] for c in CRITERIA},
            "sensitivity": _sensitivity(scored, i),
            "pipeline": pipeline,
            "finance": {k: (row[k] if row[k] != "" else None) for k in _FINANCE},
            "risk": {k: row[k] for k in risk_keys},
            "top_drivers": {family: drivers[i] for family, drivers in scored.drivers.items()},
            **({"warnings": warnings[i]} if warnings[i] else {}),
        })
    return items


def intake_json(scored: ScoredCandidates, view: PipelineView | None = None) -> dict:
    """The whole intake answer: scorecard, pipeline summary and the ranked items."""
    items = scored_json(scored, view)
    return {**scorecard_json(scored.config),
            "pipeline": view.summary() if view is not None else None,
            **({"profile": scored.candidates.profile, "notes": scored.notes}
               if scored.candidates.manifest is not None else {}),
            "count": len(items), "items": items}


def pipeline_json(listing: pd.DataFrame, not_comparable: int, config: ScorecardConfig) -> dict:
    """The open pipeline, ranked by score under the scorecard's weights."""
    entries = listing.drop(columns=["closed_at", "close_reason"]).rename(
        columns={"current_score": "score", "score": "score_when_kept"})
    return {**scorecard_json(config), "count": len(entries), "not_comparable": not_comparable,
            "entries": records(entries)}


def portfolio_json(report: dict) -> dict:
    """`select_portfolio`'s report with every table as a list of records."""
    d = report["decisions"]
    out = {k: _clean(v) for k, v in report.items() if not isinstance(v, pd.DataFrame)}
    out["selected"] = d.loc[d["selected"], "project_id"].tolist()
    out["rejected"] = d.loc[~d["selected"], "project_id"].tolist()
    for name in ("decisions", "binding", "budget", "resource_load", "frontier"):
        out[name] = records(report[name])
    return out
