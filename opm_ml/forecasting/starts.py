"""Where a quantile model's trees start: an EVM anchor, or a fitted log-linear base (size law).

Trees learn the correction from a start to the target. In flight the start is the log of an
index forecast (e.g. IEAC(t) / plan), as it is or with its weight learned. At intake it can be
a ridge regression on the log of the positive numeric features and the category levels (an
ATLM-like law: on small real effort sets one power law of size dominates, and trees alone
cannot extrapolate it). The starts are additive in the features, so their SHAP values are
exact: each feature's share of the start, centred on the training mean, joins its tree
contributions.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import RidgeCV

from opm_ml.features import feature_matrix

# A category level needs this many training rows to get its own coefficient.
MIN_LEVEL_ROWS = 5
_ALPHAS = np.logspace(-2, 3, 11)


def log_positive(ratio: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ratio > 0, np.log(ratio), 0.0)


class _OneFeatureStart:
    """A start read from one feature (`index`): its SHAP term is that feature's, centred on
    the training `mean`."""

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.start_and_contributions(X)[1]

    def start_and_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`start(X)` and `contributions(X)` (the start's one feature, centred)."""
        start = self.start(X)
        out = np.zeros(X.shape)
        out[:, self.index] = start - self.mean
        return start, out


class AnchorStart(_OneFeatureStart):
    """Start at log(anchor ratio) where it is defined and > 0, else at 0 (the plan)."""

    def __init__(self, index: int, mean: float):
        self.index = index
        self.mean = mean

    def start(self, X: np.ndarray) -> np.ndarray:
        return log_positive(X[:, self.index])


class WeightedAnchorStart(_OneFeatureStart, BaseEstimator):
    """Start at a + b * log(anchor ratio): the anchor with its weight learned (least squares).

    An in-flight re-estimate is worth more late than early (at a quarter of the planned time
    it may not have moved yet): the fixed anchor gives it weight 1, this start learns how much
    it says on the training rows. An undefined anchor counts as the plan (log 0), as in
    `AnchorStart`. Two values learned, so it stays a start, not a law of many features.
    """

    def __init__(self, index: int = 0):
        self.index = index

    def fit(self, X: pd.DataFrame, y) -> WeightedAnchorStart:
        x = log_positive(X.iloc[:, self.index].to_numpy(dtype=float, na_value=np.nan))
        target = np.asarray(y, dtype=float)
        spread = x.var()
        self.weight_ = float(np.cov(x, target, bias=True)[0, 1] / spread) if spread > 0 else 0.0
        self.intercept_ = float(target.mean() - self.weight_ * x.mean())
        self.mean = float(target.mean())
        return self

    def start(self, X: np.ndarray) -> np.ndarray:
        return self.intercept_ + self.weight_ * log_positive(X[:, self.index])


class ReferenceStart(_OneFeatureStart, BaseEstimator):
    """Start at the median target of the row's reference class (e.g. project type).

    The honest forecast of ratio data that carries little else: trees then add only what the
    features explain beyond it. A class with under `MIN_LEVEL_ROWS` training rows, a missing
    or unseen one, starts at the median of all training rows.
    """

    def __init__(self, index: int = 0):
        self.index = index

    def fit(self, X: pd.DataFrame, y) -> ReferenceStart:
        codes = X.iloc[:, self.index].cat.codes.to_numpy()
        target = np.asarray(y, dtype=float)
        self.overall_ = float(np.median(target))
        self.medians_ = {float(c): float(np.median(target[codes == c]))
                         for c in np.unique(codes) if c >= 0
                         and (codes == c).sum() >= MIN_LEVEL_ROWS}
        self.mean = float(self.start(frame_matrix(X)).mean())
        return self

    def start(self, X: np.ndarray) -> np.ndarray:
        get, overall = self.medians_.get, self.overall_
        return np.fromiter((get(c, overall) for c in X[:, self.index]), float, len(X))


class LogLinearStart(BaseEstimator):
    """Ridge regression of the target on transformed features, read back from the matrix.

    Numeric features whose training values are all positive enter as their log, others as
    they are; missing values take the training median. Category codes enter as indicators of
    the levels with at least `MIN_LEVEL_ROWS` training rows. Columns are standardised on the
    training rows, so the intercept is the mean start and each column's term is centred.
    `exclude`: features left out (calendar features: a law of size, not of when). A value
    beyond the training range is clipped to it widened by half its width on each side, so the
    law extrapolates a little and never wildly.
    """

    def __init__(self, exclude: tuple[str, ...] = ()):
        self.exclude = exclude

    def fit(self, X: pd.DataFrame, y) -> LogLinearStart:
        self.__dict__.pop("_layout", None)
        self.n_features_ = X.shape[1]
        self.terms_: list[tuple[int, str, float]] = []  # (feature index, kind, level or 0)
        for j, name in enumerate(X.columns):
            if name in self.exclude:
                continue
            values = X[name]
            if isinstance(values.dtype, pd.CategoricalDtype):
                counts = values.cat.codes.value_counts()
                self.terms_ += [(j, "level", float(c)) for c in sorted(counts.index)
                                if c >= 0 and counts[c] >= MIN_LEVEL_ROWS]
            else:
                v = values.to_numpy(dtype=float, na_value=np.nan)
                finite = v[np.isfinite(v)]
                if len(finite) and np.ptp(finite) > 0:
                    self.terms_.append((j, "log" if (finite > 0).all() else "raw", 0.0))
        raw = self._raw(frame_matrix(X))
        self.medians_ = np.nanmedian(raw, axis=0) if raw.shape[1] else np.zeros(0)
        raw = np.where(np.isnan(raw), self.medians_, raw)
        low, high = (raw.min(axis=0), raw.max(axis=0)) if len(raw) else (self.medians_,) * 2
        self.bounds_ = (low - (high - low) / 2, high + (high - low) / 2)
        self.means_ = raw.mean(axis=0)
        self.scales_ = np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1.0)
        target = np.asarray(y, dtype=float)
        if raw.shape[1]:
            model = RidgeCV(alphas=_ALPHAS).fit((raw - self.means_) / self.scales_, target)
            self.coef_, self.intercept_ = model.coef_, float(model.intercept_)
        else:
            self.coef_, self.intercept_ = np.zeros(0), float(target.mean())
        self.mean = self.intercept_
        return self

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_layout", None)  # derived from `terms_` on first use
        return state

    @cached_property
    def _layout(self) -> tuple[np.ndarray, ...]:
        """`terms_` as arrays: feature index, level, which terms are levels and which logs,
        and the (terms, features) 0/1 matrix that sums each feature's terms."""
        index = np.array([j for j, _, _ in self.terms_], dtype=np.intp)
        kinds = np.array([kind for _, kind, _ in self.terms_], dtype=object)
        spread = np.zeros((len(index), self.n_features_))
        spread[np.arange(len(index)), index] = 1.0
        return (index, np.array([level for _, _, level in self.terms_], dtype=float),
                kinds == "level", kinds == "log", spread)

    def _raw(self, X: np.ndarray) -> np.ndarray:
        """(n, terms): a level's indicator (a missing level is "not this level"), the log of
        a positive feature (NaN if not positive), or the value as it is."""
        index, levels, is_level, is_log, _ = self._layout
        x = X[:, index]
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(x > 0, np.log(x), np.nan)
        return np.where(is_level, (x == levels).astype(float), np.where(is_log, logs, x))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, F): each feature's centred share of the start (levels of a category summed)."""
        raw = self._raw(X)
        raw = np.clip(np.where(np.isnan(raw), self.medians_, raw), *self.bounds_)
        terms = (raw - self.means_) / self.scales_ * self.coef_
        return terms @ self._layout[-1]

    def start_and_contributions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`start(X)` and `contributions(X)`, the terms computed once."""
        contributions = self.contributions(X)
        return self.intercept_ + contributions.sum(axis=1), contributions

    def start(self, X: np.ndarray) -> np.ndarray:
        return self.intercept_ + self.contributions(X).sum(axis=1)


def frame_matrix(X: pd.DataFrame) -> np.ndarray:
    """A feature frame as the float matrix the models predict on (category codes, NaN)."""
    return feature_matrix(X, list(X.columns))
