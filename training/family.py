"""A model family end to end: route each row to its intake or in-flight pipeline, predict.

A row carrying a complete status snapshot (status_date, pv, ev, ac) goes to the in-flight
pipeline, any other row to the intake pipeline. `predict` returns one row per input row:

* `stage`; P10/P50/P90 of the family's quantity (`duration_days`, `cost`, `effort_hours`) with
  P50 the point forecast; family extras (`delay_days_*` and `probability_late`; `overrun_pct_*`;
  `effort_<role>_hours_*` and `monthly_profile` JSON);
* SHAP values of the P50 in the target's log-ratio space (`log_duration_ratio`,
  `log_cost_ratio`, `log_effort_ratio`): `shap_base + sum(shap__<feature>) = log(P50/planned)`;
  features a row's stage does not use are NaN. In flight the EVM anchor's (centred) log ratio
  is part of its feature's value, e.g. `shap__eac_cpi_ratio`. The late classifier's SHAP values are in
  log-odds of the uncalibrated booster (`late_shap_base`, `late_shap__<feature>`); the calibrated
  probability is a monotone map of that log-odds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from opm_ml.contract import ROLES
from opm_ml.features import feature_matrix, has_status
from training.profiles import RoleProfile, profiles_json

# family -> (planned column, output quantity name, actual column in the training targets)
QUANTITIES = {
    "delay": ("planned_duration_days", "duration_days", "actual_duration_days"),
    "overrun": ("budget_at_completion", "cost", "actual_cost"),
    "resource": ("planned_effort_hours", "effort_hours", "actual_effort_hours"),
}
STAGES = ("intake", "inflight")
LEVELS = ("p10", "p50", "p90")


@dataclass
class FamilyModel:
    """Fitted intake + in-flight pipelines of one family (what the MLflow pyfunc wraps)."""

    family: str
    target: str
    stages: dict[str, Pipeline]
    late_threshold: float | None = None
    role_profile: RoleProfile | None = None

    @property
    def feature_names(self) -> list[str]:
        """Union of both stages' features, intake first (the SHAP column order)."""
        names: list[str] = []
        for stage in STAGES:
            names += [f for f in self.stage_features(stage) if f not in names]
        return names

    def stage_features(self, stage: str) -> list[str]:
        """The columns of `stage`'s feature matrix, in order."""
        return list(self.stages[stage][0].feature_names_out_)

    def predict(self, frame: pd.DataFrame, shap: bool = True) -> pd.DataFrame:
        """Forecasts (and SHAP values) for raw contract rows, one per row in order (index 0..n-1)."""
        if frame.empty:
            raise ValueError("nothing to predict: the input has no rows")
        frame = frame.reset_index(drop=True)
        inflight = has_status(frame)
        parts = []
        for stage, mask in (("intake", ~inflight), ("inflight", inflight)):
            if mask.any():
                rows = frame[mask]
                parts.append(self._predict_stage(stage, rows, shap).set_axis(rows.index))
        out = pd.concat(parts).sort_index()
        return out.reset_index(drop=True)

    def predict_stage(self, stage: str, X: np.ndarray, planned: np.ndarray,
                      shap: bool = True) -> dict[str, np.ndarray]:
        """Forecasts of one stage for its feature matrix `X` (see `StageEstimator.predict_arrays`).

        `planned`: each row's planned quantity (e.g. planned_duration_days). Adds `quantiles`
        (n, 3) in the quantity's unit and the family extras: `delay_days` (n, 3) next to
        `probability_late`; `overrun_pct` (n, 3); `role_hours` (n, roles, 3).
        """
        out = self.stages[stage].named_steps["model"].predict_arrays(X, shap)
        ratio = np.exp(out["log_quantiles"])
        out["quantiles"] = planned[:, None] * ratio
        if self.family == "delay":
            out["delay_days"] = out["quantiles"] - planned[:, None]
        elif self.family == "overrun":
            out["overrun_pct"] = 100 * (ratio - 1)
        else:
            out["role_hours"] = out["role_ratios"] * planned[:, None, None]
        return out

    def _predict_stage(self, stage: str, rows: pd.DataFrame, shap: bool) -> pd.DataFrame:
        pipe = self.stages[stage]
        X = pipe[:-1].transform(rows)
        matrix = feature_matrix(X, X.columns)
        planned_col, qty, _ = QUANTITIES[self.family]
        result = self.predict_stage(stage, matrix, rows[planned_col].to_numpy(dtype=float), shap)
        out = {"stage": np.full(len(rows), stage, dtype=object)}
        out.update(_by_level(qty, result["quantiles"]))
        if self.family == "delay":
            out.update(_by_level("delay_days", result["delay_days"]))
            out["probability_late"] = result["probability_late"]
        elif self.family == "overrun":
            out.update(_by_level("overrun_pct", result["overrun_pct"]))
        else:
            role_q = result["role_hours"]
            for r, role in enumerate(ROLES):
                out.update(_by_level(f"effort_{role}_hours", role_q[:, r]))
            out["monthly_profile"] = profiles_json(self.role_profile.monthly_hours(
                rows["project_type"].astype(str), rows["planned_duration_days"].to_numpy(float),
                role_q[:, :, 1]))
        frame = pd.DataFrame(out)
        if shap:
            frame = pd.concat([frame, self._shap(result["shap"], X, "shap")], axis=1)
            classifier = pipe.named_steps["model"].classifier_
            if classifier is not None:
                frame = pd.concat(
                    [frame, self._shap(classifier.contributions(matrix), X, "late_shap")], axis=1)
        return frame

    def _shap(self, contrib: np.ndarray, X: pd.DataFrame, prefix: str) -> pd.DataFrame:
        values = pd.DataFrame(contrib[:, :-1], columns=[f"{prefix}__{c}" for c in X.columns])
        values.insert(0, f"{prefix}_base", contrib[:, -1])
        return values.reindex(columns=[f"{prefix}_base",
                                       *(f"{prefix}__{f}" for f in self.feature_names)])


def _by_level(prefix: str, values: np.ndarray) -> dict[str, np.ndarray]:
    return {f"{prefix}_{level}": values[:, j] for j, level in enumerate(LEVELS)}
