"""A registered family model compiled for serving: boosters called on numpy, vectorised.

`training.family.FamilyModel.predict` is the reference (it is what the MLflow pyfunc runs); it
goes through pandas and the scikit-learn wrappers, a few milliseconds per call. `FamilyPredictor`
reads the same fitted objects once at load time (boosters, conformal offsets, calibrators, role
models, profiles) and evaluates them directly on the feature matrix from `serving.rows`, so one
project costs tens of microseconds per booster and a batch is one call per booster. The serving
tests assert it returns what `FamilyModel.predict` returns, SHAP values included.

SHAP: LightGBM's TreeSHAP (`pred_contrib`) of the median model; no explainer object to build or
cache. Output space: log(P50 / planned), e.g. log(duration_days / planned_duration_days), where
base value + contributions = log of the P50 ratio exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from opm_ml.contract import ROLES
from opm_ml.features import CATEGORICAL_COLUMNS
from serving.rows import CATEGORIES, ProjectRows, feature_matrix, features
from training.family import QUANTITIES

LEVELS = ("p10", "p50", "p90")
UNITS = {"delay": "calendar days", "overrun": "currency", "resource": "hours"}
# Below this many rows one thread predicts faster than waking LightGBM's OpenMP team.
_SINGLE_THREAD_ROWS = 500


class StageKernel:
    """The fitted models of one family at one stage, reduced to boosters and arrays."""

    def __init__(self, pipeline):
        estimator = pipeline.named_steps["model"]
        self.features: list[str] = list(pipeline[0].feature_names_out_)
        self.categorical = np.array([f in CATEGORICAL_COLUMNS for f in self.features])
        regressor = estimator.regressor_
        self.quantile_boosters = [m.booster_ for m in regressor.models_]
        self.offsets = np.asarray(regressor.offsets_, dtype=float)
        # Anchored regressors learn a correction to log(anchor ratio feature), e.g. EAC/BAC.
        anchor = getattr(regressor, "anchor", None)
        self.anchor = self.features.index(anchor) if anchor else None
        self.anchor_mean = getattr(regressor, "anchor_mean_", 0.0)
        self.late_booster = None
        self.calibrators: list = []
        self.calibrate_on_margin = False
        if estimator.classifier_ is not None:
            classifier = estimator.classifier_
            self.late_booster = classifier.model_.booster_
            if classifier.calibrator_ is not None:
                # Binary: each calibrated member maps the booster's score; P(late) is their mean.
                # scikit-learn feeds calibrators decision_function (the log-odds) when the
                # estimator has one, else predict_proba.
                self.calibrators = [_fast_calibrator(c.calibrators[0])
                                    for c in classifier.calibrator_.calibrated_classifiers_]
                self.calibrate_on_margin = hasattr(classifier.model_, "decision_function")
        self.shares = estimator.shares_
        self.share_boosters = [m.booster_ for m in self.shares.models_] if self.shares else []

    def start(self, X: np.ndarray) -> np.ndarray:
        """Where the trees start: log of the anchor ratio where defined and > 0, else 0."""
        if self.anchor is None:
            return np.zeros(len(X))
        ratio = X[:, self.anchor]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ratio > 0, np.log(ratio), 0.0)

    def shap(self, X: np.ndarray, start: np.ndarray, threads: int) -> np.ndarray:
        """TreeSHAP of the median (last column = base value, conformal offset included).

        The anchor term is additive in its feature: its SHAP value is its centred value.
        """
        contrib = self.quantile_boosters[1].predict(X, pred_contrib=True, num_threads=threads)
        contrib[:, -1] += self.offsets[1]
        if self.anchor is not None:
            contrib[:, self.anchor] += start - self.anchor_mean
            contrib[:, -1] += self.anchor_mean
        return contrib

    def log_quantiles(self, X: np.ndarray, start: np.ndarray, shap: np.ndarray,
                      threads: int) -> np.ndarray:
        """Conformalised P10/P50/P90 of the log ratio, ordered around the untouched median.

        The median is the sum of its SHAP values (TreeSHAP is exact), saving a booster call.
        """
        lower, upper = (b.predict(X, num_threads=threads) + start
                        for b in self.quantile_boosters[::2])
        q = np.column_stack([lower + self.offsets[0], shap.sum(axis=1), upper + self.offsets[2]])
        q[:, 0] = np.minimum(q[:, 0], q[:, 1])
        q[:, 2] = np.maximum(q[:, 2], q[:, 1])
        return q

    def probability_late(self, X: np.ndarray, threads: int) -> np.ndarray:
        if not self.calibrators:
            return self.late_booster.predict(X, num_threads=threads)
        score = self.late_booster.predict(X, raw_score=self.calibrate_on_margin,
                                          num_threads=threads)
        return np.mean([calibrate(score) for calibrate in self.calibrators], axis=0)

    def role_shares(self, X: np.ndarray, threads: int) -> np.ndarray:
        raw = np.clip(np.column_stack([b.predict(X, num_threads=threads)
                                       for b in self.share_boosters]), 0, None)
        total = raw.sum(axis=1, keepdims=True)
        return np.where(total > 0, raw / np.where(total > 0, total, 1), 1 / raw.shape[1])


def _fast_calibrator(calibrator):
    """`calibrator.predict` as a function; clipped isotonic maps become one `np.interp`.

    IsotonicRegression.predict validates its input with scikit-learn's machinery (~0.5 ms for
    one value); with out_of_bounds="clip", as CalibratedClassifierCV fits it, it is exactly a
    piecewise-linear interpolation through its thresholds.
    """
    if isinstance(calibrator, IsotonicRegression) and calibrator.out_of_bounds == "clip":
        x, y = calibrator.X_thresholds_, calibrator.y_thresholds_
        return lambda score: np.interp(score, x, y)
    return calibrator.predict


@dataclass
class StageOutput:
    """Vectorised results for the rows of one stage (positions into the request)."""

    stage: str
    positions: np.ndarray
    quantiles: np.ndarray  # (m, 3) in the quantity's unit
    extras: dict[str, np.ndarray]
    shap: np.ndarray  # (m, F + 1), last column base value
    X: np.ndarray  # (m, F)
    kernel: StageKernel


class FamilyPredictor:
    """Forecasts, intervals and SHAP explanations of one family for a `ProjectRows`."""

    def __init__(self, family_model):
        self.family: str = family_model.family
        self.planned_column, self.quantity, _ = QUANTITIES[self.family]
        self.unit = UNITS[self.family]
        self.output_space = f"log({self.quantity} / {self.planned_column})"
        self.late_threshold = family_model.late_threshold
        self.role_profile = family_model.role_profile
        self.stages = {stage: StageKernel(pipe) for stage, pipe in family_model.stages.items()}

    def predict(self, rows: ProjectRows) -> list[StageOutput]:
        """One `StageOutput` per stage present in `rows` (intake rows, in-flight rows)."""
        outputs = []
        for stage, kernel in self.stages.items():
            positions = rows.rows_of(stage)
            if len(positions):
                outputs.append(self._predict_stage(rows, stage, kernel, positions))
        return outputs

    def _predict_stage(self, rows, stage, kernel: StageKernel, positions) -> StageOutput:
        X = feature_matrix(features(rows, stage, positions), kernel.features)
        threads = 1 if len(X) < _SINGLE_THREAD_ROWS else 0
        start = kernel.start(X)
        shap = kernel.shap(X, start, threads)
        log_q = kernel.log_quantiles(X, start, shap, threads)
        planned = rows.columns[self.planned_column][positions]
        values = planned[:, None] * np.exp(log_q)
        extras: dict[str, Any] = {}
        if self.family == "delay":
            extras["delay_days"] = values - planned[:, None]
            extras["probability_late"] = kernel.probability_late(X, threads)
        elif self.family == "overrun":
            extras["overrun_pct"] = 100 * (np.exp(log_q) - 1)
        else:
            share = kernel.role_shares(X, threads)
            role_ratio = kernel.shares.role_quantiles(share, log_q)  # role hours / planned total
            extras["role_hours"] = role_ratio * planned[:, None, None]
        return StageOutput(stage, positions, values, extras, shap, X, kernel)

    def monthly_profiles(self, rows: ProjectRows, out: StageOutput) -> list[dict]:
        """Resource family: each role's P50 hours spread over the planned months."""
        return self.role_profile.monthly_hours(
            rows.category("project_type", out.positions),
            rows.columns["planned_duration_days"][out.positions],
            out.extras["role_hours"][:, :, 1],
        )


def _levels(values: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(LEVELS, row)) for row in values.tolist()]


def explanations(out: StageOutput, output_space: str, top_k: int | None) -> list[dict]:
    """Per row: base value, contributions sorted by |contribution| (top_k), the rest summed.

    base_value + sum(all contributions) = prediction, in `output_space`; with `top_k`, the
    left-out features' sum is reported so the identity still holds for the shown numbers.
    """
    contrib, base = out.shap[:, :-1], out.shap[:, -1]
    names = out.kernel.features
    order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
    k = contrib.shape[1] if top_k is None else min(top_k, contrib.shape[1])
    order = order[:, :k]
    shown = np.take_along_axis(contrib, order, axis=1)
    rest = contrib.sum(axis=1) - shown.sum(axis=1)
    values = out.X.astype(object)
    for j in np.flatnonzero(out.kernel.categorical):
        labels = np.asarray(CATEGORIES[names[j]], dtype=object)
        values[:, j] = labels[out.X[:, j].astype(int)]
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
        q = _levels(out.quantiles)
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
    extras = out.extras
    if predictor.family == "delay":
        start = rows.start[out.positions]
        finish = start[:, None] + np.rint(out.quantiles).astype(np.int64).astype("timedelta64[D]")
        return {
            "delay_days": _levels(extras["delay_days"]),
            "probability_late": extras["probability_late"].tolist(),
            "late_threshold": [predictor.late_threshold] * len(out.positions),
            "finish_date": _levels(np.datetime_as_string(finish, unit="D")),
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
