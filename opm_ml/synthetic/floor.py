"""The achievable floor: how well the oracle does on a history's completed projects, by type.

A trained model should land between the reference-class baseline (each type's median overrun,
what a PMO without a model would forecast) and the oracle, which knows the true causal model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from opm_ml.synthetic.history import History
from opm_ml.synthetic.oracle import LATE_THRESHOLD, oracle_forecast


def completed_outcomes(projects: pd.DataFrame) -> pd.DataFrame:
    """Log cost ratio, log duration ratio, actual days and 'late' flag of completed projects."""
    done = projects[projects["actual_finish_date"].notna()]
    days = (done["actual_finish_date"] - done["start_date"]).dt.days.astype(float)
    planned = done["planned_duration_days"].astype(float)
    return pd.DataFrame({
        "project_type": done["project_type"],
        "log_cost_ratio": np.log(done["actual_cost"] / done["budget_at_completion"]),
        "log_duration_ratio": np.log(days / planned),
        "actual_days": days,
        "planned_days": planned,
        "late": days > LATE_THRESHOLD * planned,
    }, index=done.index)


def floor_metrics(history: History) -> pd.DataFrame:
    """Oracle and reference-class-baseline errors per project type (and 'all'), completed only.

    r2_* is the share of variance of the log ratio the oracle's conditional mean explains
    (the rest is noise no model can learn); mae_log_* use the conditional median; auc_late is
    for "more than 10 % late".
    """
    outcome = completed_outcomes(history.projects)
    oracle = oracle_forecast(history.projects.loc[outcome.index])
    baseline = outcome.groupby("project_type")[["log_cost_ratio", "log_duration_ratio"]]
    baseline = baseline.transform("median")
    rows = {}
    groups = [("all", outcome.index)] + [
        (t, idx) for t, idx in outcome.groupby("project_type").groups.items()]
    for name, idx in groups:
        o, f, b = outcome.loc[idx], oracle.loc[idx], baseline.loc[idx]
        cost, dur = o["log_cost_ratio"], o["log_duration_ratio"]
        median_cost = np.log(f["median_cost_ratio"])
        median_dur = np.log(f["median_duration_ratio"])
        rows[name] = {
            "completed": len(o),
            "sd_log_cost": cost.std(),
            "r2_cost": 1 - ((cost - f["expected_log_cost_ratio"]) ** 2).mean() / cost.var(ddof=0),
            "mae_log_cost": (cost - median_cost).abs().mean(),
            "baseline_mae_log_cost": (cost - b["log_cost_ratio"]).abs().mean(),
            "mape_cost": (np.expm1(median_cost - cost)).abs().mean(),
            "sd_log_duration": dur.std(),
            "r2_duration": 1 - ((dur - f["expected_log_duration_ratio"]) ** 2).mean()
            / dur.var(ddof=0),
            "mae_log_duration": (dur - median_dur).abs().mean(),
            "baseline_mae_log_duration": (dur - b["log_duration_ratio"]).abs().mean(),
            "mae_days": (o["planned_days"] * np.exp(median_dur) - o["actual_days"]).abs().mean(),
            "late_rate": o["late"].mean(),
            "auc_late": _auc(o["late"], f["p_late"]),
            "brier_late": ((f["p_late"] - o["late"]) ** 2).mean(),
        }
    return pd.DataFrame(rows).T


def _auc(y: pd.Series, p: pd.Series) -> float:
    return float(roc_auc_score(y, p)) if y.nunique() == 2 else float("nan")
