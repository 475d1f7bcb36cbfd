"""Learned activity-duration uncertainty: P10/P50/P90 of actual/planned, explained with SHAP.

`ActivityDurationModel` fits one LightGBM quantile model per level on log(actual / planned)
over any feature frame (string columns become categories), holds out the last
`calibration_fraction` of the groups (projects) and conformalises the P10 and P90 on them (CQR,
Romano et al. 2019: each end moves by the finite-sample quantile of its calibration errors),
so P10-P90 covers about 80 % of new activities. The P50 stays the model's own, so LightGBM's
TreeSHAP (`pred_contrib=True`) adds up to log P50 exactly. `estimates` turns the quantiles
into the two-piece lognormal the Monte Carlo samples; a planner's three-point estimate
overrides any activity. The estimator is picklable and knows nothing of MLflow.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin

from opm_ml.forecasting.estimators import conformal_offsets, order_around_median
from opm_ml.schedule.distributions import Estimate
from opm_ml.schedule.model import ScheduleError

QUANTILES = (0.1, 0.5, 0.9)


class ActivityDurationModel(RegressorMixin, BaseEstimator):
    """P10/P50/P90 of an activity's duration ratio (actual / planned) from its features."""

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.05,
                 num_leaves: int = 15, min_child_samples: int = 20,
                 calibration_fraction: float = 0.2, random_state: int = 0, n_jobs: int = 1):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration_fraction = calibration_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, y, groups=None) -> ActivityDurationModel:
        """Fit on ratios `y` (> 0); `groups` (e.g. project ids) keep a project in one slice."""
        ratio = np.asarray(y, dtype=float)
        if len(ratio) != len(X) or not np.all(np.isfinite(ratio)) or np.any(ratio <= 0):
            raise ScheduleError("duration ratios must be finite, > 0 and one per row of X")
        self.feature_names_ = list(X.columns)
        self.categories_ = {c: sorted(pd.Series(X[c]).dropna().astype(str).unique())
                            for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])}
        frame = self._frame(X)
        target = np.log(ratio)
        groups = np.arange(len(X)) if groups is None else np.asarray(groups)
        unique = pd.unique(groups)
        n_cal = max(1, int(round(len(unique) * self.calibration_fraction)))
        if len(unique) - n_cal < 1:
            raise ScheduleError("need at least 2 groups to fit and calibrate")
        calibration = np.isin(groups, unique[-n_cal:])
        self.models_ = [LGBMRegressor(
            objective="quantile", alpha=q, n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, random_state=self.random_state,
            n_jobs=self.n_jobs, verbose=-1).fit(frame[~calibration], target[~calibration])
            for q in QUANTILES]
        raw = self._raw(frame[calibration])
        # The ends only: the median keeps its own value, so its SHAP values still add up.
        try:
            ends = conformal_offsets(raw[:, [0, 2]], target[calibration], QUANTILES[::2])
        except ValueError as err:  # fewer than 2 calibration rows
            raise ScheduleError(str(err)) from None
        self.offsets_ = np.array([ends[0], 0.0, ends[1]])
        return self

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ScheduleError(f"features missing for the duration model: {', '.join(missing)}")
        out = X[self.feature_names_].copy()
        for column, categories in self.categories_.items():
            out[column] = pd.Categorical(out[column].astype(str), categories=categories)
        return out

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([m.predict(frame) for m in self.models_])

    def predict_log_quantiles(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 3) log ratios, conformalised and kept in order around the median."""
        return order_around_median(self._raw(self._frame(X)) + self.offsets_)

    def predict_quantiles(self, X: pd.DataFrame) -> pd.DataFrame:
        """P10/P50/P90 of the duration ratio per row."""
        return pd.DataFrame(np.exp(self.predict_log_quantiles(X)), index=X.index,
                            columns=["P10", "P50", "P90"])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The P50 duration ratio."""
        return np.exp(self.predict_log_quantiles(X)[:, 1])

    def explain(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP values of log P50 per feature plus `base`; each row sums to log P50 exactly."""
        booster = self.models_[1].booster_
        contrib = booster.predict(self._frame(X), pred_contrib=True)
        out = pd.DataFrame(contrib[:, :-1], index=X.index, columns=self.feature_names_)
        out["base"] = contrib[:, -1] + self.offsets_[1]
        return out

    def estimates(self, X: pd.DataFrame, planned_hours, overrides: dict | None = None
                  ) -> dict[str, Estimate]:
        """A Monte Carlo distribution per row (index = activity id) in hours.

        `overrides` maps activity ids to a planner's `Estimate` (e.g. a three-point PERT),
        which replaces the learned one.
        """
        q = self.predict_quantiles(X).to_numpy() * np.asarray(planned_hours, float)[:, None]
        out = {str(i): Estimate.from_quantiles(*row) for i, row in zip(X.index, q)}
        unknown = set(overrides or {}) - set(out)
        if unknown:
            raise ScheduleError(f"overrides name activities without a learned estimate: "
                                f"{', '.join(sorted(unknown)[:5])}")
        out.update(overrides or {})
        return out
