"""LightGBM pieces of a stage model, scikit-learn style, fitted on `opm_ml.features` output.

* `ConformalQuantileRegressor`: one LightGBM quantile model per level (P10/P50/P90), then
  conformalised (CQR, Romano et al. 2019, asymmetric form) on a later calibration slice: each
  interval end gets the offset that makes its empirical calibration coverage match its level,
  with the finite-sample correction, so P10-P90 covers about 80 % of new projects.
* `CalibratedLateClassifier`: LightGBM classifier whose probabilities are calibrated (isotonic or
  sigmoid) on the calibration slice through `CalibratedClassifierCV(FrozenEstimator(...))`.
* `RoleShareRegressor`: the actual share of effort per role (one L2 model per role, normalised
  to sum to 1), with per-role conformal intervals around `total interval x share`.
* `StageEstimator` bundles them on one feature matrix.
Models are fitted on `build_features` frames and predict on the float matrix of
`opm_ml.features.feature_matrix` through their boosters: `StageEstimator.predict_arrays` is the
one prediction path (the MLflow pyfunc and serving both run it), cheap enough for one row
(`single_row` skips `Booster.predict`'s per-call set-up there).
SHAP values come from LightGBM's own TreeSHAP (`pred_contrib=True`): the same algorithm as
`shap.TreeExplainer`, exact for categorical splits, vectorised and with no explainer to build.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor, early_stopping
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression

from opm_ml.features import feature_matrix
from opm_ml.forecasting.starts import (
    AnchorStart,
    LogLinearStart,
    ReferenceStart,
    frame_matrix,
    log_positive,
)
from opm_ml.forecasting import single_row

# fitter(jobs, early_stopping_rounds): fits (model, X, y, X_eval, y_eval) jobs in place.
Fitter = Callable[[list, "int | None"], None]

# Role effort can be 0 hours; intervals for roles live in log(hours / planned hours + eps).
_ROLE_EPS = 1e-3
# Below this many rows one thread predicts faster than waking LightGBM's OpenMP team.
_SINGLE_THREAD_ROWS = 500
_BATCH_THREADS: ContextVar[int] = ContextVar("opm_ml_batch_threads", default=0)


def lgbm_params(hyperparameters: dict, random_state: int) -> dict:
    """Spec hyper-parameters plus the settings every model shares (quiet, seeded, 1 thread).

    One OpenMP thread per model: the models of a stage are fitted in parallel threads instead
    (LightGBM releases the GIL), which scales better on small machines than OpenMP threads
    that spin-wait when the cores are shared.
    """
    return {**hyperparameters, "random_state": random_state, "verbose": -1, "n_jobs": 1}


def fit_local(jobs: list[tuple], early_stopping_rounds: int | None = None,
              n_jobs: int | None = None) -> None:
    """Fit (model, X, y, X_eval, y_eval) jobs in place, `n_jobs` at a time (default: all cores).

    With an eval set and `early_stopping_rounds`, each model stops adding trees once its own
    loss on the eval set (the calibration slice) has not improved for that many rounds. A
    `Fitter` with this signature can fit the same jobs elsewhere (training's Dask fitter).
    """
    from joblib import Parallel, delayed

    def fit(model, X, y, X_eval, y_eval):
        if X_eval is None or not early_stopping_rounds:
            return model.fit(X, y)
        return model.fit(X, y, eval_X=(X_eval,), eval_y=(y_eval,),
                         callbacks=[early_stopping(early_stopping_rounds, verbose=False)])

    workers = n_jobs or os.cpu_count() or 1
    Parallel(n_jobs=min(workers, len(jobs)), prefer="threads")(
        delayed(fit)(*job) for job in jobs)


def conformal_offsets(raw: np.ndarray, y: np.ndarray, quantiles) -> np.ndarray:
    """CQR offsets per level: add them to the raw quantile predictions (columns of `raw`).

    Upper levels (q >= 0.5) move by the ceil((n+1)q)/n quantile of y - raw; lower levels by
    minus the ceil((n+1)(1-q))/n quantile of raw - y, i.e. the conservative conformal choice.
    """
    n = len(y)
    if n < 2:
        raise ValueError("conformal calibration needs at least 2 calibration examples")
    offsets = np.empty(len(quantiles))
    for j, q in enumerate(quantiles):
        if q >= 0.5:
            level = min(1.0, np.ceil((n + 1) * q) / n)
            offsets[j] = np.quantile(y - raw[:, j], level, method="higher")
        else:
            level = min(1.0, np.ceil((n + 1) * (1 - q)) / n)
            offsets[j] = -np.quantile(raw[:, j] - y, level, method="higher")
    return offsets


def prediction_threads(n_rows: int) -> int:
    """LightGBM `num_threads` for predicting `n_rows`: 1 for few rows, else the batch budget
    (`batch_threads`; 0, every core, unless a caller bounds it)."""
    return 1 if n_rows < _SINGLE_THREAD_ROWS else _BATCH_THREADS.get()


@contextmanager
def batch_threads(threads: int) -> Iterator[None]:
    """Predict batches inside the block on at most `threads` LightGBM threads (0: every core).

    A context variable, so a server can bound one request's share without touching others.
    """
    token = _BATCH_THREADS.set(threads)
    try:
        yield
    finally:
        _BATCH_THREADS.reset(token)


def order_around_median(q: np.ndarray) -> np.ndarray:
    """Keep P10 <= P50 <= P90 without moving the median (its SHAP values must still add up)."""
    out = q.copy()
    out[:, 0] = np.minimum(q[:, 0], q[:, 1])
    out[:, 2] = np.maximum(q[:, 2], q[:, 1])
    return out


class ConformalQuantileRegressor(RegressorMixin, BaseEstimator):
    """P10/P50/P90 LightGBM quantile regressors with conformal offsets.

    `anchor`: optional ratio feature (e.g. `eac_cpi_ratio`, an EVM index forecast / planned)
    whose log the trees start from: they learn the correction log(actual/planned) - log(anchor),
    so a model is never forced to rebuild a strong index forecast from piecewise-constant steps.
    Rows where the anchor is undefined start from 0 (the plan) and the trees see the NaN.
    `base="loglinear"` (no anchor): the trees start from a ridge regression on the log of the
    size features instead (`starts.LogLinearStart`), so a dominant size law extrapolates;
    `base="refclass"`: from the median of the row's reference class (`reference` feature).
    Fitted on a feature frame; `conformalize` and the predictions take its float matrix.
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), params: dict | None = None,
                 anchor: str | None = None, base: str | None = None,
                 reference: str | None = None, calendar: tuple[str, ...] = ()):
        self.quantiles = quantiles
        self.params = params
        self.anchor = anchor
        self.base = base
        self.reference = reference
        self.calendar = calendar

    def fit(self, X: pd.DataFrame, y) -> ConformalQuantileRegressor:
        fit_local(self.jobs(X, y))
        return self

    def __setstate__(self, state: dict) -> None:
        """A regressor pickled before starts existed (an anchor or nothing) predicts as then."""
        if "models_" in state and "start_" not in state:
            index = state.get("anchor_index_")
            state["start_"] = (None if index is None
                               else AnchorStart(index, state.get("anchor_mean_", 0.0)))
            state["trees_"] = True
            state["flat_"] = np.zeros(len(state["quantiles"]))
        for name in ("base", "reference"):
            state.setdefault(name, None)
        state.setdefault("calendar", ())
        super().__setstate__(state)

    def jobs(self, X: pd.DataFrame, y, X_eval=None, y_eval=None) -> list[tuple]:
        """Unfitted models with their data; a `Fitter` fits them (lets a stage fit all at once)."""
        self.anchor_index_ = None
        self.start_ = None
        if self.anchor:
            if self.anchor not in X.columns:
                raise ValueError(
                    f"anchor feature {self.anchor!r} is not among the model's features")
            self.anchor_index_ = list(X.columns).index(self.anchor)
            ratio = X[self.anchor].to_numpy(dtype=float)
            self.start_ = AnchorStart(self.anchor_index_, float(log_positive(ratio).mean()))
        elif self.base == "loglinear":
            self.start_ = LogLinearStart(self.calendar).fit(X, y)
        elif self.base == "refclass" and self.reference in X.columns:
            self.start_ = ReferenceStart(list(X.columns).index(self.reference)).fit(X, y)
        elif self.base is not None:
            raise ValueError(f'base must be "loglinear", "refclass" (with a reference feature) '
                             f"or None, got {self.base!r}")
        start = self._frame_start(X)
        self.models_ = [LGBMRegressor(objective="quantile", alpha=q, **(self.params or {}))
                        for q in self.quantiles]
        self.offsets_ = np.zeros(len(self.quantiles))
        y = np.asarray(y, dtype=float) - start
        # The start alone: each level's quantile of what remains (see `choose_trees`).
        self.flat_ = np.quantile(y, self.quantiles)
        self.trees_ = True
        if X_eval is not None:
            y_eval = np.asarray(y_eval, dtype=float) - self._frame_start(X_eval)
        return [(m, X, y, X_eval, y_eval) for m in self.models_]

    def conformalize(self, X: np.ndarray, y) -> ConformalQuantileRegressor:
        """Conformal offsets for the interval ends; the P50 stays the model's own.

        (Shifting the median to exact 50 % calibration coverage costs point accuracy.)
        """
        raw = self._raw(X, self._start(X), prediction_threads(len(X)))
        offsets = conformal_offsets(raw, np.asarray(y, dtype=float), self.quantiles)
        offsets[np.isclose(self.quantiles, 0.5)] = 0.0
        self.offsets_ = offsets
        return self

    def predict_arrays(self, X: np.ndarray, shap: bool = True,
                       threads: int = 1) -> dict[str, np.ndarray]:
        """`log_quantiles` (n, 3), ordered around the median, and with `shap` its SHAP values.

        `shap` (n, F + 1): TreeSHAP of the median, last column the base value (conformal offset
        included), adding up to the median (TreeSHAP is exact); the start (anchor or log-linear
        base) is additive in its features, so their SHAP values gain its centred terms.
        """
        start = self._start(X)
        out = {"log_quantiles": order_around_median(self._raw(X, start, threads) + self.offsets_)}
        if shap:
            if self.trees_:
                contrib = single_row.predict(self.models_[1].booster_, X, threads,
                                             single_row.CONTRIB)
            else:
                contrib = np.zeros((len(X), X.shape[1] + 1))
                contrib[:, -1] = self.flat_[1]
            contrib[:, -1] += self.offsets_[1]
            if self.start_ is not None:
                contrib[:, :-1] += self.start_.contributions(X)
                contrib[:, -1] += self.start_.mean
            out["shap"] = contrib
        return out

    def choose_trees(self, X: np.ndarray, y) -> ConformalQuantileRegressor:
        """Keep the trees only if they beat their start alone on held-out rows (`X`, `y`).

        On small or point-mass data (a re-forecast that is usually the outcome) the trees can
        only add noise. The start alone is then the model, with each level's training quantile
        of what remains, or with its median at the start itself (the start as the forecast),
        whichever scores better.
        """
        shifts = self.flat_.copy()
        scores = {"trees": self.pinball(X, y)}
        self.trees_ = False
        scores["shift"] = self.pinball(X, y)
        self.flat_ = shifts - shifts[1]
        scores["start"] = self.pinball(X, y)
        best = min(scores, key=scores.get)
        self.trees_ = best == "trees"
        self.flat_ = shifts if best != "start" else shifts - shifts[1]
        self.trees_choice_ = best
        return self

    def pinball(self, X: np.ndarray, y) -> float:
        """Mean pinball loss of the raw quantiles on (X, y): how the base choice is made."""
        diff = np.asarray(y, dtype=float)[:, None] - self._raw(X, self._start(X),
                                                               prediction_threads(len(X)))
        levels = np.asarray(self.quantiles)[None, :]
        return float(np.mean(np.maximum(levels * diff, (levels - 1) * diff)))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The median (P50) of the log-ratio target."""
        return self.predict_arrays(X, False, prediction_threads(len(X)))["log_quantiles"][:, 1]

    def _raw(self, X: np.ndarray, start: np.ndarray, threads: int) -> np.ndarray:
        """Uncalibrated quantiles: each level's trees (or its constant) plus the start."""
        if not getattr(self, "trees_", True):
            return start[:, None] + self.flat_[None, :]
        return np.column_stack([single_row.predict(m.booster_, X, threads)
                                for m in self.models_]) + start[:, None]

    def _start(self, X: np.ndarray) -> np.ndarray:
        """Where the trees start: the anchor or base (`starts`), else 0 (the plan)."""
        return np.zeros(len(X)) if self.start_ is None else self.start_.start(X)

    def _frame_start(self, X: pd.DataFrame) -> np.ndarray:
        return self._start(frame_matrix(X))


class CalibratedLateClassifier(BaseEstimator):
    """P(late): LightGBM classifier, probabilities calibrated on a held-out slice.

    `method`: "isotonic" or "sigmoid" (what `predict_late` evaluates without scikit-learn).
    """

    def __init__(self, method: str = "isotonic", params: dict | None = None):
        self.method = method
        self.params = params

    def fit(self, X: pd.DataFrame, y) -> CalibratedLateClassifier:
        fit_local(self.jobs(X, y))
        return self

    def jobs(self, X: pd.DataFrame, y, X_eval=None, y_eval=None) -> list[tuple]:
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) < 2:
            raise ValueError("the late classifier needs both late and on-time projects to train")
        self.model_ = LGBMClassifier(**(self.params or {}))
        self.calibrator_ = None
        y_eval = None if y_eval is None else np.asarray(y_eval, dtype=int)
        return [(self.model_, X, y, X_eval, y_eval)]

    def calibrate(self, X: pd.DataFrame, y) -> CalibratedLateClassifier:
        if self.method not in ("isotonic", "sigmoid"):
            raise ValueError(f'calibration method must be "isotonic" or "sigmoid", '
                             f"got {self.method!r}")
        self.calibrator_ = CalibratedClassifierCV(FrozenEstimator(self.model_), method=self.method)
        self.calibrator_.fit(X, np.asarray(y, dtype=int))
        return self

    def predict_late(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """P(late) for the feature matrix: what `calibrator_.predict_proba(frame)[:, 1]` gives.

        Binary calibration maps the booster's score (the log-odds when the classifier has a
        decision_function, as scikit-learn chooses) through each cross-validation member's
        calibrator and averages; a clipped isotonic map is exactly one `np.interp`, which
        skips scikit-learn's input validation (~0.5 ms a call).
        """
        booster = self.model_.booster_
        if self.calibrator_ is None:
            return single_row.predict(booster, X, threads)
        kind = single_row.RAW_SCORE if hasattr(self.model_, "decision_function") else \
            single_row.NORMAL
        score = single_row.predict(booster, X, threads, kind)
        return np.mean([_calibrated(member.calibrators[0], score)
                        for member in self.calibrator_.calibrated_classifiers_], axis=0)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """SHAP values in log-odds of the uncalibrated booster; last column = base value."""
        return self.model_.booster_.predict(X, pred_contrib=True,
                                            num_threads=prediction_threads(len(X)))


def _calibrated(calibrator, score: np.ndarray) -> np.ndarray:
    if isinstance(calibrator, IsotonicRegression) and calibrator.out_of_bounds == "clip":
        return np.interp(score, calibrator.X_thresholds_, calibrator.y_thresholds_)
    return calibrator.predict(score)


class RoleShareRegressor(BaseEstimator):
    """Actual share of effort per role, and conformal role intervals from the total's.

    Fitted on a feature frame; `predict` and `conformalize` take its float matrix.
    """

    def __init__(self, quantiles=(0.1, 0.5, 0.9), params: dict | None = None):
        self.quantiles = quantiles
        self.params = params

    def fit(self, X: pd.DataFrame, shares: pd.DataFrame) -> RoleShareRegressor:
        fit_local(self.jobs(X, shares))
        return self

    def jobs(self, X: pd.DataFrame, shares: pd.DataFrame, X_eval=None, shares_eval=None):
        self.models_ = [LGBMRegressor(**(self.params or {})) for _ in shares.columns]
        self.offsets_ = np.zeros((shares.shape[1], len(self.quantiles)))
        return [(m, X, shares[c].to_numpy(float), X_eval,
                 None if shares_eval is None else shares_eval[c].to_numpy(float))
                for m, c in zip(self.models_, shares.columns)]

    def predict(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Share of the total effort per role (n, roles), summing to 1."""
        raw = np.clip(np.column_stack([single_row.predict(m.booster_, X, threads)
                                       for m in self.models_]), 0, None)
        total = raw.sum(axis=1, keepdims=True)
        # All-zero predictions cannot happen with sane data; fall back to equal shares.
        return np.where(total > 0, raw / np.where(total > 0, total, 1), 1 / raw.shape[1])

    def conformalize(self, X, total_log_q: np.ndarray, shares: pd.DataFrame, actual_log_ratio):
        """Per-role offsets so role intervals cover like the total's (log role/planned space)."""
        actual_ratio = np.exp(np.asarray(actual_log_ratio, float))[:, None] * shares.to_numpy(float)
        raw = self._raw_role_log_q(self.predict(X, prediction_threads(len(X))), total_log_q)
        truth = np.log(actual_ratio + _ROLE_EPS)
        self.offsets_ = np.stack([conformal_offsets(raw[:, r, :], truth[:, r], self.quantiles)
                                  for r in range(raw.shape[1])])
        return self

    def role_quantiles(self, share: np.ndarray, total_log_q: np.ndarray) -> np.ndarray:
        """Role effort / planned total effort, shape (rows, roles, 3)."""
        log_q = self._raw_role_log_q(share, total_log_q) + self.offsets_[None, :, :]
        ordered = np.stack([order_around_median(log_q[:, r, :]) for r in range(log_q.shape[1])],
                           axis=1)
        return np.clip(np.exp(ordered) - _ROLE_EPS, 0, None)

    @staticmethod
    def _raw_role_log_q(share: np.ndarray, total_log_q: np.ndarray) -> np.ndarray:
        return np.log(np.exp(total_log_q)[:, None, :] * share[:, :, None] + _ROLE_EPS)


class StageEstimator(BaseEstimator):
    """All models of one family at one stage (intake or in flight) on one feature matrix.

    `Y` holds the targets: the log-ratio `target`, plus `late` and/or the role shares. All
    LightGBM models are fitted together, `n_jobs` at a time (default: all cores); given an
    eval slice (`X_eval`, `Y_eval`), each stops early on it after `early_stopping_rounds`.
    `predict_arrays` is the one prediction path: numpy in, numpy out, for one row or many.
    `fit(..., fitter=...)` fits the LightGBM jobs elsewhere, e.g. on a Dask cluster (a fit
    argument, not a parameter: the fitted estimator is pickled into the model, a cluster
    client must not be). `base` (without an anchor): "loglinear" starts the trees from a
    log-linear size law, "refclass" from the reference class's median, "auto" fits every
    start (none, loglinear, and refclass given a `reference` feature) and keeps the one with
    the lowest pinball loss on the calibration slice (`base_choice_`, `base_scores_`).
    """

    def __init__(self, target: str, quantiles=(0.1, 0.5, 0.9), params: dict | None = None,
                 anchor: str | None = None, classifier_method: str | None = None,
                 role_share_columns: tuple = (), early_stopping_rounds: int | None = None,
                 n_jobs: int | None = None, base: str | None = None,
                 reference: str | None = None, calendar: tuple[str, ...] = ()):
        self.target = target
        self.quantiles = quantiles
        self.params = params
        self.anchor = anchor
        self.base = base
        self.reference = reference
        self.calendar = calendar
        self.classifier_method = classifier_method
        self.role_share_columns = role_share_columns
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs

    def fit(self, X: pd.DataFrame, Y: pd.DataFrame, X_eval: pd.DataFrame | None = None,
            Y_eval: pd.DataFrame | None = None, fitter: Fitter | None = None) -> StageEstimator:
        def eval_of(columns):
            return (X_eval, None) if Y_eval is None else (X_eval, Y_eval[columns])

        bases = [None]
        if self.anchor is None and self.base == "auto":
            bases = [None, "loglinear", *(["refclass"] if self.reference in X.columns else [])]
        elif self.anchor is None:
            bases = [self.base]
        self.candidates_ = {base or "none": ConformalQuantileRegressor(
            self.quantiles, self.params, self.anchor, base, self.reference, self.calendar)
            for base in bases}
        jobs = []
        for regressor in self.candidates_.values():
            jobs += regressor.jobs(X, Y[self.target], *eval_of(self.target))
        self.regressor_ = next(iter(self.candidates_.values()))
        self.classifier_ = None
        if self.classifier_method:
            self.classifier_ = CalibratedLateClassifier(self.classifier_method, self.params)
            jobs += self.classifier_.jobs(X, Y["late"], *eval_of("late"))
        self.shares_ = None
        if self.role_share_columns:
            roles = list(self.role_share_columns)
            self.shares_ = RoleShareRegressor(self.quantiles, self.params)
            jobs += self.shares_.jobs(X, Y[roles], *eval_of(roles))
        if fitter is None:
            fit_local(jobs, self.early_stopping_rounds, self.n_jobs)
        else:
            fitter(jobs, self.early_stopping_rounds)
        self.feature_names_ = list(X.columns)
        return self

    def __setstate__(self, state: dict) -> None:
        """A stage pickled before the choice of start had none to make."""
        for name in ("base", "reference"):
            state.setdefault(name, None)
        state.setdefault("calendar", ())
        if "regressor_" in state:
            state.setdefault("base_choice_", "none")
        super().__setstate__(state)

    def calibrate(self, X: pd.DataFrame, Y: pd.DataFrame) -> StageEstimator:
        """Base choice, conformal offsets and probability calibration on the calibration slice."""
        matrix = feature_matrix(X, self.feature_names_)
        candidates = self.__dict__.pop("candidates_", {"none": self.regressor_})
        self.base_scores_ = {name: r.choose_trees(matrix, Y[self.target]).pinball(
            matrix, Y[self.target]) for name, r in candidates.items()}
        self.base_choice_ = min(self.base_scores_, key=self.base_scores_.get)
        self.regressor_ = candidates[self.base_choice_]
        self.regressor_.conformalize(matrix, Y[self.target])
        if self.classifier_ is not None:
            self.classifier_.calibrate(X, Y["late"])
        if self.shares_ is not None:
            log_q = self.regressor_.predict_arrays(matrix, shap=False,
                                                   threads=prediction_threads(len(X)))
            self.shares_.conformalize(matrix, log_q["log_quantiles"],
                                      Y[list(self.role_share_columns)], Y[self.target])
        return self

    def predict_arrays(self, X: np.ndarray, shap: bool = True) -> dict[str, np.ndarray]:
        """All predictions for the float feature matrix `X` (columns `feature_names_`, as
        `opm_ml.features.feature_matrix` builds it), as arrays keyed by name:

        * `log_quantiles` (n, 3): conformalised P10/P50/P90 of the log-ratio target;
        * with `shap`, `shap` (n, F + 1): TreeSHAP of the P50, last column the base value, each
          row adding up to its P50 exactly;
        * with the late classifier, `probability_late` (n,), calibrated;
        * with role shares, `role_shares` (n, R) and `role_ratios` (n, R, 3): each role's
          P10/P50/P90 effort over the planned total effort.
        """
        threads = prediction_threads(len(X))
        out = self.regressor_.predict_arrays(X, shap, threads)
        if self.classifier_ is not None:
            out["probability_late"] = self.classifier_.predict_late(X, threads)
        if self.shares_ is not None:
            out["role_shares"] = self.shares_.predict(X, threads)
            out["role_ratios"] = self.shares_.role_quantiles(out["role_shares"],
                                                             out["log_quantiles"])
        return out

    def predict(self, X: pd.DataFrame, shap: bool = False) -> dict[str, np.ndarray]:
        """`predict_arrays` on a `build_features` frame."""
        return self.predict_arrays(feature_matrix(X, self.feature_names_), shap)
