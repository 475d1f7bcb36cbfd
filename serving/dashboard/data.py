"""The dashboard's data: portfolio table, project view and intake view as JSON-ready dicts.

Every number comes from `opm_ml.forecasting.assessment` (forecasts, SHAP, OPM metrics) or the
intake library (`score_candidates`, `select_portfolio`); this module only picks projects, joins
their snapshots, validates uploaded tables row by row and applies the RAG thresholds below.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.batch_scoring.inputs import profiled_rows
from opm_ml.contract import History
from opm_ml.forecasting.assessment import assess
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.model_set import ModelSet
from opm_ml.text import first_line
from opm_ml.validation import ContractError, load_history, scoring_table, validate_frame
from serving.dashboard import CANDIDATES, CONSTRAINTS, SAMPLE_DIR
from serving.dashboard.tables import DashboardInputError, TableLimits, check_upload

logger = logging.getLogger(__name__)

# RAG thresholds: (amber, red). Higher is worse for probability and overrun; lower is worse for
# the indices (SPI/CPI of 0.9 is the usual PMO "red" line, 0.95 the watch line).
REJECTION = ("row", "column", "reason")  # what an upload's answer says of a rejected row
RAG_THRESHOLDS = {
    "probability_late": {"amber": 0.25, "red": 0.5, "worse": "higher"},
    "overrun_pct_p50": {"amber": 5.0, "red": 10.0, "worse": "higher"},
    "spi": {"amber": 0.95, "red": 0.9, "worse": "lower"},
    "cpi": {"amber": 0.95, "red": 0.9, "worse": "lower"},
}


def rag(name: str, values: np.ndarray) -> np.ndarray:
    """'red' / 'amber' / 'green' per value by `RAG_THRESHOLDS[name]`; 'grey' where unknown."""
    t = RAG_THRESHOLDS[name]
    v = np.asarray(values, dtype=float)
    sign = 1.0 if t["worse"] == "higher" else -1.0
    out = np.where(sign * v >= sign * t["red"], "red",
                   np.where(sign * v >= sign * t["amber"], "amber", "green"))
    return np.where(np.isnan(v), "grey", out)


def latest_inflight(history: History, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per in-flight project (no actual_finish_date): its `columns` (default: all)
    and its latest snapshot."""
    projects = history.projects[history.projects["actual_finish_date"].isna()]
    snaps = history.snapshots.sort_values(["project_id", "status_date"])
    latest = snaps.groupby("project_id", sort=False).tail(1)
    columns = tuple(projects.columns) if columns is None else columns
    keep = list(dict.fromkeys(c for c in ("project_id", *columns) if c in projects.columns))
    return projects[keep].merge(latest, on="project_id", how="left")


def table_columns(model_set: ModelSet) -> frozenset[str]:
    """The columns of an uploaded table the models read (any others are not decoded)."""
    return frozenset(c.name for c in scoring_table(model_set.manifest).columns)


def project_inputs(frame: pd.DataFrame, model_set: ModelSet,
                   allow_rejects: bool = False) -> tuple[ProjectInputs, pd.DataFrame]:
    """(valid rows of a project table, the rejected ones: row, column, reason). Without
    `allow_rejects`, DashboardInputError listing every rejected row instead."""
    if frame.empty:
        raise DashboardInputError("project table has no rows")
    try:
        result = validate_frame(frame, scoring_table(model_set.manifest))
    except ContractError as exc:  # a missing or repeated column: no row can be read
        raise DashboardInputError(str(exc)) from None
    rejections = _kept(result.rejections, allow_rejects, result.good)
    return (ProjectInputs.from_frame(result.good.reset_index(drop=True), model_set.manifest),
            rejections)


def profiled_inputs(content: bytes, filename: str, model_set: ModelSet, limits: TableLimits,
                    allow_rejects: bool = False) -> tuple[ProjectInputs, pd.DataFrame]:
    """An organisation's export read through the served models' profile, as `opm-ml score`
    reads it: each project at its latest status report. Rejected rows are numbered by their
    row in the file, as `project_inputs` returns or refuses them."""
    from opm_ml.profiles import ProfileError

    check_upload(content, filename, limits)
    manifest = model_set.manifest
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name) or "upload.csv"
    with tempfile.TemporaryDirectory(prefix="opm-ml-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            valid, problems = profiled_rows(path, manifest)
        except (ProfileError, OSError, ValueError, KeyError) as exc:
            why = first_line(exc, typed=False).replace(str(path), name).replace(folder, ".")
            raise DashboardInputError(f"{filename!r} cannot be read with the {manifest.profile} "
                                      f"profile: {why}") from None
    if valid.empty and problems.empty:
        raise DashboardInputError("project table has no rows")
    rejections = _kept(problems.sort_values("row", kind="stable"), allow_rejects, valid)
    good = valid.reset_index(drop=True)
    if "status_date" in good.columns:  # repeated reports: each project at its latest
        good = (good.sort_values("status_date", kind="stable", na_position="first")
                .groupby("project_id", sort=False).tail(1).reset_index(drop=True))
    return ProjectInputs.from_frame(good, manifest), rejections


def _kept(rejections: pd.DataFrame, allow_rejects: bool, good: pd.DataFrame) -> pd.DataFrame:
    """The rejections (row, column, reason) when they may be set aside; otherwise, or when no
    row is left, DashboardInputError quoting the first 20 problems."""
    rejections = rejections[list(REJECTION)].reset_index(drop=True)
    if len(rejections) and (not allow_rejects or good.empty):
        shown = rejections.head(20)
        problems = "; ".join(f"row {r.row} ({r.column}): {_shortened(r.reason)}"
                             for r in shown.itertuples(index=False))
        more = len(rejections) - len(shown)
        rows = rejections["row"].nunique()
        raise DashboardInputError(f"{rows} row(s) rejected: {problems}"
                                  + (f" (and {more} more)" if more > 0 else ""))
    return rejections


def rejections_json(rejections: pd.DataFrame, limit: int = 100) -> dict:
    """What an upload set aside: the count of rejected rows and the first `limit` problems."""
    shown = rejections.head(limit).assign(reason=lambda f: f["reason"].map(_shortened))
    return {"rejected_rows": int(rejections["row"].nunique()),
            "rejections": shown.astype({"row": "int64"}).to_dict("records")}


def _shortened(text: str, limit: int = 200) -> str:
    """A reason as the 422 quotes it: a hostile cell of megabytes is not echoed whole."""
    return text if len(text) <= limit else text[:limit] + "..."


def portfolio(model_set: ModelSet, inputs: ProjectInputs) -> dict:
    """The portfolio table: per project its risk numbers, EVM indices and RAG colours."""
    assessment = assess(model_set.family_models(), inputs)
    n = inputs.n
    values = {name: batch.values for name, batch in assessment.forecasts.items()}
    nan = np.full(n, np.nan)
    delay, overrun = values.get("delay", {}), values.get("overrun", {})
    evm = np.full((2, n), np.nan)
    if inputs.evm is not None:
        evm[:, inputs.inflight] = inputs.evm.values["spi"], inputs.evm.values["cpi"]
    cols = {
        "probability_late": delay.get("probability_late", nan),
        "delay_days_p50": delay["delay_days"][:, 1] if "delay_days" in delay else nan,
        "overrun_pct_p50": overrun["overrun_pct"][:, 1] if "overrun_pct" in overrun else nan,
        # Impact on the risk matrix: the P50 cost above budget, in currency.
        "overrun_cost_p50": (overrun["cost"][:, 1] - inputs.columns["budget_at_completion"]
                             if "cost" in overrun else nan),
        "spi": evm[0],
        "cpi": evm[1],
    }
    colours = {name: rag(name, cols[name]) for name in RAG_THRESHOLDS}
    ranks = np.stack([np.select([c == "red", c == "amber", c == "green"], [2, 1, 0], -1)
                      for c in colours.values()])
    overall = np.array(["grey", "green", "amber", "red"])[ranks.max(axis=0) + 1]
    group = model_set.manifest.reference_class
    status = np.full(n, None, dtype=object)
    if "status_date" in inputs.columns:
        dates = inputs.columns["status_date"]
        status[inputs.inflight] = np.datetime_as_string(dates[inputs.inflight], unit="D")
    table = pd.DataFrame({"project_id": inputs.ids,
                          "project_type": inputs.columns[group] if group else None,
                          "status_date": status,
                          **cols, **{f"rag_{k}": v for k, v in colours.items()},
                          "rag": overall})
    table = table.astype(object).where(table.notna(), None)
    rows = table.to_dict("records")
    for row, warnings in zip(rows, assessment.warnings()):
        if warnings:  # as the API's answers: only when there is something to say
            row["warnings"] = warnings
    return {"thresholds": RAG_THRESHOLDS, "count": n, "projects": rows}


def history_inputs(history: History, model_set: ModelSet) -> ProjectInputs:
    """The in-flight projects of a (validated) history at their latest snapshot."""
    frame = latest_inflight(history, (*model_set.manifest.intake_columns,))
    return ProjectInputs.from_frame(frame, model_set.manifest)


def project(model_set: ModelSet, history: History, project_id: str, top_k: int = 10) -> dict:
    """One project: its assessment at the latest snapshot, S-curve and planned baseline.

    `top_k` SHAP contributions per forecast, the rest summed (the waterfall shows ten).
    """
    rows = history.projects[history.projects["project_id"] == project_id]
    if rows.empty:
        raise KeyError(project_id)
    snaps = history.snapshots[history.snapshots["project_id"] == project_id]
    snaps = snaps.sort_values("status_date")
    columns = [c for c in ("project_id", *model_set.manifest.intake_columns)
               if c in rows.columns]
    frame = rows[columns]
    if len(snaps):
        frame = frame.merge(snaps.tail(1), on="project_id")
    inputs = ProjectInputs.from_frame(frame, model_set.manifest)  # validated when loaded
    result = assess(model_set.family_models(), inputs).to_json(top_k)[0]
    start = pd.Timestamp(rows["start_date"].iloc[0])
    planned = float(rows["planned_duration_days"].iloc[0])
    curve = pd.DataFrame({"date": snaps["status_date"].dt.strftime("%Y-%m-%d"),
                          "pv": snaps["pv"], "ev": snaps["ev"], "ac": snaps["ac"]})
    group = model_set.manifest.reference_class
    return {
        "project_id": project_id,
        "project_type": str(rows[group].iloc[0]) if group else "",
        "finished": bool(rows["actual_finish_date"].notna().iloc[0]),
        "baseline": {"start_date": start.date().isoformat(),
                     "planned_finish_date": (start + pd.Timedelta(days=planned)).date()
                     .isoformat(),
                     "budget_at_completion": float(rows["budget_at_completion"].iloc[0])},
        "s_curve": curve.to_dict("records"),
        "assessment": result,
    }


def intake(model_set: ModelSet, candidates: Path = CANDIDATES,
           constraints: Path = CONSTRAINTS) -> dict:
    """Ranked candidates and the optimised portfolio (load vs capacity, frontier)."""
    from opm_ml.intake.candidates import read_candidates
    from opm_ml.intake.report import portfolio_json, scorecard_json, scored_json
    from opm_ml.intake.risk import model_forecaster
    from opm_ml.intake.scoring import score_candidates
    from opm_ml.intake.selection import Constraints, select_portfolio

    # The same scores as POST /v1/intake/score: fixed scales, the scorecard's weights.
    model_set.require_all()
    scored = score_candidates(read_candidates(candidates),
                              model_forecaster(model_set.family_models()))
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
