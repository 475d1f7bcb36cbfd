"""Published baselines with the scikit-learn API: ATLM, mean/median, no-change, reference class.

Every estimator takes a DataFrame with numeric and string/category columns that may hold NaN,
so they run unchanged on every `RealDataset`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import skew
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

MISSING_LEVEL = "__missing__"


def _frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {array.shape}")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


def _target(y) -> np.ndarray:
    values = np.asarray(y, dtype=float).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("y must be a non-empty array of finite numbers")
    return values


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype)


def _labels(col: pd.Series) -> pd.Series:
    """Category labels as plain strings, missing values as their own level."""
    return col.astype(object).where(col.notna(), MISSING_LEVEL).astype(str).reset_index(drop=True)


class ATLM(RegressorMixin, BaseEstimator):
    """Automatically transformed linear model (Whigham, Owen & MacDonell 2015, TOSEM 24(3)).

    Each numeric variable, the target included, is log-transformed when its training values are
    positive and right-skewed (skewness > `skew_threshold`); `log1p` is used when it also has
    zeros. Missing numeric values get the training median plus a missing-indicator column,
    categoricals are one-hot coded against their most frequent level (unseen and missing levels
    fall on that reference), and the model is fitted by ordinary least squares (minimum-norm
    solution when columns are collinear). Predictions are back-transformed with `exp`, i.e. they
    estimate the conditional median, the right target for absolute-error measures.
    """

    def __init__(self, skew_threshold: float = 0.75):
        self.skew_threshold = skew_threshold

    def _transform_kind(self, values: np.ndarray) -> str:
        observed = values[np.isfinite(values)]
        if observed.size < 3 or observed.min() < 0 or np.ptp(observed) == 0:
            return "identity"
        if skew(observed) <= self.skew_threshold:
            return "identity"
        return "log" if observed.min() > 0 else "log1p"

    @staticmethod
    def _apply(values: np.ndarray, kind: str) -> np.ndarray:
        if kind == "log":
            # Values <= 0 cannot be logged; treat them as missing (then imputed) instead of -inf.
            return np.log(np.where(values > 0, values, np.nan))
        if kind == "log1p":
            return np.log1p(np.where(values >= 0, values, np.nan))
        return values

    def fit(self, X, y):
        """Choose transforms, impute and code the features, and solve the least-squares fit."""
        frame = _frame(X)
        target = _target(y)
        if len(frame) != target.size:
            raise ValueError(f"X has {len(frame)} rows but y has {target.size}")
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.target_transform_ = self._transform_kind(target)
        self.numeric_: dict[str, tuple[str, float, bool]] = {}
        self.levels_: dict[str, list[str]] = {}
        for name, col in frame.items():
            if _is_numeric(col):
                raw = col.to_numpy(dtype=float)
                kind = self._transform_kind(raw)
                values = self._apply(raw, kind)
                if np.isnan(values).all():
                    continue  # nothing to learn from an all-missing column
                self.numeric_[name] = (kind, float(np.nanmedian(values)),
                                       bool(np.isnan(values).any()))
            else:
                # Most frequent level first: it is the reference and gets no column.
                self.levels_[name] = list(_labels(col).value_counts(sort=True).index)
        design, self.design_names_ = self._design(frame)
        target_t = self._apply(target, self.target_transform_)
        if np.isnan(target_t).any():
            raise ValueError("y has values outside the domain of its transform")
        coef, *_ = np.linalg.lstsq(design, target_t, rcond=None)
        self.intercept_ = float(coef[0])
        self.coef_ = coef[1:]
        return self

    def _design(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Design matrix (intercept first) and the names of its non-intercept columns."""
        columns = [np.ones(len(frame))]
        names = []
        for name, (kind, median, has_missing) in self.numeric_.items():
            values = self._apply(frame[name].to_numpy(dtype=float), kind)
            missing = np.isnan(values)
            columns.append(np.where(missing, median, values))
            names.append(f"{kind}({name})" if kind != "identity" else name)
            if has_missing:
                columns.append(missing.astype(float))
                names.append(f"{name}_missing")
        for name, levels in self.levels_.items():
            text = _labels(frame[name]).to_numpy()
            for level in levels[1:]:
                columns.append((text == level).astype(float))
                names.append(f"{name}={level}")
        return np.column_stack(columns), names

    def predict(self, X) -> np.ndarray:
        """Back-transformed least-squares prediction for each row of X."""
        check_is_fitted(self, "coef_")
        frame = _frame(X)
        missing = [c for c in self.feature_names_in_ if c not in frame.columns]
        if missing:
            raise ValueError(f"X lacks the fitted columns {missing}")
        design, _ = self._design(frame)
        linear = self.intercept_ + design[:, 1:] @ self.coef_
        if self.target_transform_ == "log":
            return np.exp(linear)
        if self.target_transform_ == "log1p":
            return np.expm1(linear)
        return linear


class MeanEstimator(RegressorMixin, BaseEstimator):
    """Predicts the training mean for every row."""

    def fit(self, X, y):
        """Remember the mean of y."""
        self.value_ = float(np.mean(_target(y)))
        return self

    def predict(self, X) -> np.ndarray:
        """The training mean, once per row."""
        check_is_fitted(self, "value_")
        return np.full(len(_frame(X)), self.value_)


class MedianEstimator(RegressorMixin, BaseEstimator):
    """Predicts the training median for every row (the MAE-optimal constant)."""

    def fit(self, X, y):
        """Remember the median of y."""
        self.value_ = float(np.median(_target(y)))
        return self

    def predict(self, X) -> np.ndarray:
        """The training median, once per row."""
        check_is_fitted(self, "value_")
        return np.full(len(_frame(X)), self.value_)


class NoChange(RegressorMixin, BaseEstimator):
    """The plan is right: predicts `value` (1.0 = actual equals planned) whatever the data."""

    def __init__(self, value: float = 1.0):
        self.value = value

    def fit(self, X, y=None):
        """Nothing to learn; kept for the scikit-learn API."""
        self.fitted_ = True
        return self

    def predict(self, X) -> np.ndarray:
        """`value` once per row."""
        check_is_fitted(self, "fitted_")
        return np.full(len(_frame(X)), float(self.value))


class ReferenceClassUplift(RegressorMixin, BaseEstimator):
    """Reference-class forecast: the median ratio of past projects, optionally per category.

    With `base_column`, the uplift is learned on y / X[base_column] and multiplied onto that
    column (e.g. correcting the current re-estimate). With `group_column`, each category with at
    least `min_count` training rows gets its own median; others use the overall median.
    """

    def __init__(self, group_column: str | None = None, base_column: str | None = None,
                 min_count: int = 5):
        self.group_column = group_column
        self.base_column = base_column
        self.min_count = min_count

    def _base(self, frame: pd.DataFrame) -> np.ndarray:
        if self.base_column is None:
            return np.ones(len(frame))
        if self.base_column not in frame.columns:
            raise ValueError(f"X lacks base_column {self.base_column!r}")
        return frame[self.base_column].to_numpy(dtype=float)

    def _groups(self, frame: pd.DataFrame) -> pd.Series:
        if self.group_column not in frame.columns:
            raise ValueError(f"X lacks group_column {self.group_column!r}")
        return _labels(frame[self.group_column])

    def fit(self, X, y):
        """Median uplift overall and per category."""
        frame = _frame(X)
        uplift = pd.Series(_target(y) / self._base(frame))
        usable = np.isfinite(uplift) & (uplift > 0)
        if not usable.any():
            raise ValueError("no row has a positive, finite y / base")
        self.median_ = float(uplift[usable].median())
        self.group_medians_: dict[str, float] = {}
        if self.group_column is not None:
            stats = uplift[usable].groupby(self._groups(frame)[usable]).agg(["median", "size"])
            big = stats[stats["size"] >= self.min_count]
            self.group_medians_ = big["median"].astype(float).to_dict()
        return self

    def predict(self, X) -> np.ndarray:
        """Base (or 1) times the uplift of the row's category, or the overall uplift."""
        check_is_fitted(self, "median_")
        frame = _frame(X)
        uplift = np.full(len(frame), self.median_)
        if self.group_column is not None:
            mapped = self._groups(frame).map(self.group_medians_).to_numpy(dtype=float)
            uplift = np.where(np.isnan(mapped), self.median_, mapped)
        base = self._base(frame)
        # A row without a base value falls back to the plain reference-class forecast.
        return np.where(np.isfinite(base), base, 1.0) * uplift


class CurrentEstimate(RegressorMixin, BaseEstimator):
    """Index forecast: returns the forecast already in `column` (e.g. the latest re-estimate)."""

    def __init__(self, column: str = "reestimated_ratio", fallback: float = 1.0):
        self.column = column
        self.fallback = fallback

    def fit(self, X, y=None):
        """Nothing to learn; checks the column exists."""
        if self.column not in _frame(X).columns:
            raise ValueError(f"X lacks column {self.column!r}")
        self.fitted_ = True
        return self

    def predict(self, X) -> np.ndarray:
        """X[column], with `fallback` where it is missing."""
        check_is_fitted(self, "fitted_")
        values = _frame(X)[self.column].to_numpy(dtype=float)
        return np.where(np.isfinite(values), values, self.fallback)
