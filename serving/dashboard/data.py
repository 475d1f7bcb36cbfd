"""The dashboard's data: portfolio table, project view and intake view as JSON-ready dicts.

Every number comes from `serving.service.assess` (forecasts, SHAP, OPM metrics) or the intake
library (`score_candidates`, `select_portfolio`); this module only picks projects, joins their
snapshots and applies the RAG thresholds below.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from opm_ml.contract import INTAKE_COLUMNS
from opm_ml.contract import History
from opm_ml.validation import load_history
from serving import service
from serving.dashboard import CANDIDATES, CONSTRAINTS, SAMPLE_DIR

logger = logging.getLogger(__name__)
from serving.model_store import ModelSet
from serving.schemas import ProjectRequest


# RAG thresholds: (amber, red). Higher is worse for probability and overrun; lower is worse for
# the indices (SPI/CPI of 0.9 is the usual PMO "red" line, 0.95 the watch line).
RAG_THRESHOLDS = {
    "probability_late": {"amber": 0.25, "red": 0.5, "worse": "higher"},
    "overrun_pct_p50": {"amber": 5.0, "red": 10.0, "worse": "higher"},
    "spi": {"amber": 0.95, "red": 0.9, "worse": "lower"},
    "cpi": {"amber": 0.95, "red": 0.9, "worse": "lower"},
}
_STATUS = ("status_date", "pv", "ev", "ac", "percent_complete")


class DashboardInputError(ValueError):
    """A project table the dashboard cannot read; the message names the row and field."""


def rag(name: str, values: np.ndarray) -> np.ndarray:
    """'red' / 'amber' / 'green' per value by `RAG_THRESHOLDS[name]`; 'grey' where unknown."""
    t = RAG_THRESHOLDS[name]
    v = np.asarray(values, dtype=float)
    sign = 1.0 if t["worse"] == "higher" else -1.0
    out = np.where(sign * v >= sign * t["red"], "red",
                   np.where(sign * v >= sign * t["amber"], "amber", "green"))
    return np.where(np.isnan(v), "grey", out)


def latest_inflight(history: History) -> pd.DataFrame:
    """One row per in-flight project (no actual_finish_date): intake columns + latest snapshot."""
    projects = history.projects[history.projects["actual_finish_date"].isna()]
    snaps = history.snapshots.sort_values(["project_id", "status_date"])
    latest = snaps.groupby("project_id", sort=False).tail(1)
    return projects[["project_id", *INTAKE_COLUMNS]].merge(latest, on="project_id", how="left")


def read_table(content: bytes, filename: str) -> pd.DataFrame:
    """An uploaded CSV or Parquet project table (intake columns, optional status columns)."""
    try:
        if filename.lower().endswith(".parquet"):
            return pd.read_parquet(io.BytesIO(content))
        return pd.read_csv(io.BytesIO(content))
    except Exception as exc:  # pandas/pyarrow raise many types for unreadable files
        raise DashboardInputError(f"cannot read {filename!r} as "
                                  f"{'Parquet' if filename.endswith('.parquet') else 'CSV'}: "
                                  f"{exc}") from None


def requests_from_table(frame: pd.DataFrame) -> list[ProjectRequest]:
    """Validated project requests; status columns become `status` where status_date is set."""
    missing = [c for c in ("project_id", *INTAKE_COLUMNS) if c not in frame.columns]
    if missing:
        raise DashboardInputError(f"project table lacks column(s): {', '.join(missing)}")
    if frame.empty:
        raise DashboardInputError("project table has no rows")
    frame = frame.copy()
    for name in ("start_date", "status_date"):
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name], errors="coerce").dt.strftime("%Y-%m-%d")
    has_status = "status_date" in frame.columns
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    items = []
    for i, r in enumerate(records):
        body = {c: r[c] for c in ("project_id", *INTAKE_COLUMNS)}
        body["project_id"] = str(body["project_id"])
        if has_status and r["status_date"] is not None:
            body["status"] = {c: r.get(c) for c in _STATUS}
        try:
            items.append(ProjectRequest.model_validate(body))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise DashboardInputError(f"row {i + 1} (project {body['project_id']}): "
                                      f"{field}: {err['msg']}") from None
    return items


def portfolio(model_set: ModelSet, items: list[ProjectRequest]) -> dict:
    """The portfolio table: per project its risk numbers, EVM indices and RAG colours."""
    results = service.assess(model_set, items, top_k=0)
    delay = [r["forecasts"]["delay"] for r in results]
    overrun = [r["forecasts"]["overrun"] for r in results]
    metric = [(r["opm_metrics"] or {}).get("metrics", {}) for r in results]
    cols = {
        "probability_late": np.array([d["probability_late"] for d in delay], float),
        "delay_days_p50": np.array([d["delay_days"]["p50"] for d in delay], float),
        "overrun_pct_p50": np.array([o["overrun_pct"]["p50"] for o in overrun], float),
        # Impact on the risk matrix: the P50 cost above budget, in currency.
        "overrun_cost_p50": np.array([o["prediction"] for o in overrun], float)
        - np.array([i.budget_at_completion for i in items]),
        "spi": np.array([m.get("spi") for m in metric], float),
        "cpi": np.array([m.get("cpi") for m in metric], float),
    }
    colours = {name: rag(name, cols[name]) for name in RAG_THRESHOLDS}
    ranks = np.stack([np.select([c == "red", c == "amber", c == "green"], [2, 1, 0], -1)
                      for c in colours.values()])
    overall = np.array(["grey", "green", "amber", "red"])[ranks.max(axis=0) + 1]
    table = pd.DataFrame({"project_id": [i.project_id for i in items],
                          "project_type": [i.project_type for i in items],
                          "status_date": [i.status.status_date.isoformat() if i.status else None
                                          for i in items],
                          **cols, **{f"rag_{k}": v for k, v in colours.items()},
                          "rag": overall})
    table = table.astype(object).where(table.notna(), None)
    return {"thresholds": RAG_THRESHOLDS, "count": len(items),
            "projects": table.to_dict("records")}


def project(model_set: ModelSet, history: History, project_id: str, top_k: int = 10) -> dict:
    """One project: its assessment at the latest snapshot, S-curve and planned baseline.

    `top_k` SHAP contributions per forecast, the rest summed (the waterfall shows ten).
    """
    rows = history.projects[history.projects["project_id"] == project_id]
    if rows.empty:
        raise KeyError(project_id)
    snaps = history.snapshots[history.snapshots["project_id"] == project_id]
    snaps = snaps.sort_values("status_date")
    frame = rows[["project_id", *INTAKE_COLUMNS]]
    if len(snaps):
        frame = frame.merge(snaps.tail(1), on="project_id")
    item = requests_from_table(frame)[0]
    result = service.assess(model_set, [item], top_k=top_k)[0]
    start = pd.Timestamp(item.start_date)
    curve = pd.DataFrame({"date": snaps["status_date"].dt.strftime("%Y-%m-%d"),
                          "pv": snaps["pv"], "ev": snaps["ev"], "ac": snaps["ac"]})
    return {
        "project_id": project_id,
        "project_type": item.project_type,
        "finished": bool(rows["actual_finish_date"].notna().iloc[0]),
        "baseline": {"start_date": start.date().isoformat(),
                     "planned_finish_date": (start + pd.Timedelta(
                         days=item.planned_duration_days)).date().isoformat(),
                     "budget_at_completion": item.budget_at_completion},
        "s_curve": curve.to_dict("records"),
        "assessment": result,
    }


def intake(model_set: ModelSet, candidates: Path = CANDIDATES,
           constraints: Path = CONSTRAINTS) -> dict:
    """Ranked candidates and the optimised portfolio (load vs capacity, frontier)."""
    from opm_ml.intake.candidates import read_candidates
    from opm_ml.intake.report import portfolio_json, scorecard_json, scored_json
    from opm_ml.intake.scoring import score_candidates
    from opm_ml.intake.selection import Constraints, select_portfolio

    # The same scores as POST /v1/intake/score: fixed scales, the scorecard's weights.
    scored = score_candidates(read_candidates(candidates), model_set.intake_forecaster())
    report = select_portfolio(scored, Constraints.read(constraints), time_limit=5.0)
    return {"scorecard": scorecard_json(scored.config), "candidates": scored_json(scored),
            "portfolio": portfolio_json(report)}


def default_history(folder: Path | None = None) -> History:
    """The history the dashboard shows (the sample by default); rejected rows are logged."""
    history = load_history(folder or SAMPLE_DIR)
    if len(history.rejections):
        first = history.rejections.iloc[0]
        logger.warning("dashboard history %s: %d row(s) rejected by the contract and not shown; "
                       "first: %s row %s, %s: %s (opm-ml data validate lists them all)",
                       folder or SAMPLE_DIR, history.rejections[["table", "row"]].drop_duplicates()
                       .shape[0], first["table"], first["row"], first["column"], first["reason"])
    return history
