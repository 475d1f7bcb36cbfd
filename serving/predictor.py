"""A registered family model serving `serving.rows.ProjectRows`: forecasts and their JSON.

Predictions come from `training.family.FamilyModel.predict_stage`, the same numpy path the
MLflow pyfunc runs (boosters called on the float feature matrix), so one project costs tens of
microseconds per booster and a batch is one call per booster; this module only routes rows to
their stage and shapes the answer.

SHAP: LightGBM's TreeSHAP (`pred_contrib`) of the median model; no explainer object to build or
cache. Output space: log(P50 / planned), e.g. log(duration_days / planned_duration_days), where
base value + contributions = log of the P50 ratio exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opm_ml.contract import ROLES
from opm_ml.features import CATEGORIES, feature_matrix
from serving.rows import ProjectRows, iso_dates
from training.family import QUANTITIES

LEVELS = ("p10", "p50", "p90")
# More days than lie between any contract start date and 9999-12-31 (~11,000 years).
MAX_DAYS = 4_000_000
UNITS = {"delay": "calendar days", "overrun": "currency", "resource": "hours"}


@dataclass
class StageOutput:
    """Vectorised results for the rows of one stage (positions into the request)."""

    stage: str
    positions: np.ndarray
    result: dict[str, np.ndarray]  # `FamilyModel.predict_stage` output, `quantiles` (m, 3) ...
    X: np.ndarray  # (m, F)
    features: list[str]  # the F column names of X


class FamilyPredictor:
    """Forecasts, intervals and SHAP explanations of one family for a `ProjectRows`."""

    def __init__(self, family_model):
        self.model = family_model
        self.family: str = family_model.family
        self.planned_column, self.quantity, _ = QUANTITIES[self.family]
        self.unit = UNITS[self.family]
        self.output_space = f"log({self.quantity} / {self.planned_column})"
        self.late_threshold = family_model.late_threshold
        self.features = {stage: family_model.stage_features(stage)
                         for stage in family_model.stages}

    def predict(self, rows: ProjectRows) -> list[StageOutput]:
        """One `StageOutput` per stage present in `rows` (intake rows, in-flight rows)."""
        outputs = []
        for stage, names in self.features.items():
            positions = rows.rows_of(stage)
            if len(positions):
                X = feature_matrix(rows.features[stage], names)
                planned = rows.columns[self.planned_column][positions]
                result = self.model.predict_stage(stage, X, planned)
                outputs.append(StageOutput(stage, positions, result, X, names))
        return outputs

    def monthly_profiles(self, rows: ProjectRows, out: StageOutput) -> list[dict]:
        """Resource family: each role's P50 hours spread over the planned months."""
        return self.model.role_profile.monthly_hours(
            rows.category("project_type", out.positions),
            rows.columns["planned_duration_days"][out.positions],
            out.result["role_hours"][:, :, 1],
        )


def _levels(values: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(LEVELS, row)) for row in values.tolist()]


def explanations(out: StageOutput, output_space: str, top_k: int | None) -> list[dict]:
    """Per row: base value, contributions sorted by |contribution| (top_k), the rest summed.

    base_value + sum(all contributions) = prediction, in `output_space`; with `top_k`, the
    left-out features' sum is reported so the identity still holds for the shown numbers.
    """
    shap = out.result["shap"]
    contrib, base = shap[:, :-1], shap[:, -1]
    names = out.features
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
    k = contrib.shape[1] if top_k is None else min(top_k, contrib.shape[1])
    order = order[:, :k]
    shown = np.take_along_axis(contrib, order, axis=1)
    rest = contrib.sum(axis=1) - shown.sum(axis=1)
    values = out.X.astype(object)
    for j, name in enumerate(names):
        if name in CATEGORIES:  # contract codes -> category labels
            values[:, j] = np.asarray(CATEGORIES[name], dtype=object)[out.X[:, j].astype(int)]
    values[np.isnan(out.X)] = None  # NaN features (e.g. no percent_complete) -> null
    prediction = base + contrib.sum(axis=1)
    result = []
    for i, (cols, row_values, row_contrib) in enumerate(
        zip(order.tolist(), values.tolist(), shown.tolist())
    ):
        result.append({
            "output_space": output_space,
            "base_value": float(base[i]),
            "prediction": float(prediction[i]),
            "contributions": [
                {"feature": names[j], "value": row_values[j], "contribution": c}
                for j, c in zip(cols, row_contrib)
            ],
            "other_features_contribution": float(rest[i]),
        })
    return result


def forecast_json(predictor: FamilyPredictor, rows: ProjectRows, outputs: list[StageOutput],
                  top_k: int | None) -> list[dict]:
    """Per request row (in request order): stage, point forecast, interval, extras, explanation."""
    result: list[dict | None] = [None] * rows.n
    for out in outputs:
        q = _levels(out.result["quantiles"])
        extras = _extras_json(predictor, rows, out)
        explained = explanations(out, predictor.output_space, top_k)
        for i, pos in enumerate(out.positions.tolist()):
            result[pos] = {
                "stage": out.stage,
                "quantity": predictor.quantity,
                "unit": predictor.unit,
                "prediction": q[i]["p50"],
                "interval": q[i],
                **{name: values[i] for name, values in extras.items()},
                "explanation": explained[i],
            }
    return result


def _extras_json(predictor: FamilyPredictor, rows: ProjectRows, out: StageOutput) -> dict:
    extras = out.result
    if predictor.family == "delay":
        start = rows.columns["start_date"][out.positions]
        # Capped so the sum cannot overflow: anything past 9999-12-31 becomes null anyway.
        days = np.rint(np.minimum(extras["quantiles"], MAX_DAYS)).astype(np.int64)
        finish = start[:, None] + days.astype("timedelta64[D]")
        return {
            "delay_days": _levels(extras["delay_days"]),
            "probability_late": extras["probability_late"].tolist(),
            "late_threshold": [predictor.late_threshold] * len(out.positions),
            "finish_date": _levels(iso_dates(finish)),
        }
    if predictor.family == "overrun":
        return {"overrun_pct": _levels(extras["overrun_pct"])}
    role_hours = extras["role_hours"]  # (m, roles, 3)
    by_role = [
        {role: dict(zip(LEVELS, row[r])) for r, role in enumerate(ROLES)}
        for row in role_hours.tolist()
    ]
    return {"effort_by_role": by_role,
            "monthly_profile": predictor.monthly_profiles(rows, out)}
