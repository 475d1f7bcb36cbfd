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
from opm_ml.forecasting import single_row
from opm_ml.forecasting.starts import (
    AnchorStart,
    LogLinearStart,
    ReferenceStart,
    WeightedAnchorStart,
    frame_matrix,
    log_positive,
)

# fitter(jobs, early_stopping_rounds): fits (model, X, y, X_eval, y_eval) jobs in place.
Fitter = Callable[[list, "int | None"], None]

# Role effort can be 0 hours; intervals for roles live in log(hours / planned hours + eps).
_ROLE_EPS = 1e-3
# What a quantile model predicts with (`ConformalQuantileRegressor.use`): its trees on
# top of the start, the start plus each level's training quantile of what remains, or the start
# as the median (with the same spread around it).
OPTIONS = ("trees", "shift", "start")
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
              n_jobs: int | None = None, record: bool = False) -> None:
    """Fit (model, X, y, X_eval, y_eval) jobs in place, `n_jobs` at a time (default: all cores).

    With an eval set and `early_stopping_rounds`, each model stops adding trees once its own
    loss on the eval set (the calibration slice) has not improved for that many rounds; with
    `record` instead, it grows all its trees and records the eval loss after each
    (`evals_result_`). A `Fitter` with this signature (without `record`) can fit the same jobs
    elsewhere (training's Dask fitter).
    """
    from joblib import Parallel, delayed

    def fit(model, X, y, X_eval, y_eval):
        if X_eval is None or not (early_stopping_rounds or record):
            return model.fit(X, y)
        stop = [] if record else [early_stopping(early_stopping_rounds, verbose=False)]
        return model.fit(X, y, eval_X=(X_eval,), eval_y=(y_eval,), callbacks=stop)

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


def median_loss(y, raw: np.ndarray, quantiles) -> np.ndarray:
    """Each row's pinball loss of the median column of quantile predictions `raw` (n, levels):
    half its absolute error, what the served point forecast is judged by. The choice of start
    and option uses it alone: the interval ends get conformal offsets afterwards anyway, and
    with them in the loss a candidate won on interval width what its median lost."""
    median = raw[:, list(quantiles).index(0.5)]
    return 0.5 * np.abs(np.asarray(y, dtype=float) - median)


# The options from the simplest (fewest values learned from the outcomes) to the richest.
SIMPLICITY = ("start", "shift", "trees")
# The starts likewise: none or the anchor, and the anchor with its weight learned (one value
# more, from all the rows: no richer in the sense of the one-SE rule), then a median per
# reference class, then a coefficient per feature.
START_RANK = {None: 0, "weighted": 0, "refclass": 1, "loglinear": 2}


def complexity(base: str | None, option: str) -> tuple[int, int]:
    """How much a (start, option) candidate learns from the outcomes, for the one-SE rule:
    its option's place in `SIMPLICITY`, then its start's `START_RANK`. Equally simple
    candidates (the anchor as it is or weighted) are decided by their loss."""
    return SIMPLICITY.index(option), START_RANK[base]


def simplest_within_one_se(losses: dict, key: Callable, groups=None):
    """The simplest (lowest `key`) of `losses` (name -> per-row losses on the same rows) whose
    mean loss exceeds the lowest by at most one standard error of the paired difference;
    among equally simple ones (the same `key`), the one with the lowest mean loss.

    The one-standard-error rule: on a few dozen held-out rows the lowest mean is often luck,
    and a richer model (trees over a start) that only ties a simpler one does worse on new
    rows. With `groups`, rows of one group count as one draw (cluster-robust error).
    """
    best = min(losses, key=lambda name: losses[name].mean())
    labels = None if groups is None else pd.factorize(np.asarray(groups))[0]
    return min((name for name in losses
                if not clearly_lower(losses[best], losses[name], labels)),
               key=lambda name: (key(name), losses[name].mean()))


def clearly_lower(a: np.ndarray, b: np.ndarray, labels=None) -> bool:
    """Whether per-row losses `a` are lower than `b` (the same rows) by more than one standard
    error of their paired difference; with `labels` (integer group codes), rows of one group
    count as one draw (cluster-robust error)."""
    diff = b - a
    n = len(diff)
    if labels is None:
        se = diff.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
    else:
        totals = np.bincount(labels, weights=diff - diff.mean())
        g = len(totals)
        se = np.sqrt(g / (g - 1) * np.sum(totals**2)) / n if g > 1 else 0.0
    return diff.mean() > se


def corrected_face_value(choice: tuple, losses: dict) -> tuple:
    """`choice` (start, option), except that a start taken at face value (no start: the plan,
    or the anchor as it is) yields to its shifted twin, the same start corrected by the
    training rows' median residual, when that has the lower mean loss.

    The one-SE rule keeps the face value when nothing richer is clearly better, but the
    correction is no richer in the sense the rule guards against: one value estimated from
    every training row (a reference-class uplift, e.g. "our plans overrun by 12 %"), not a
    model that can win a few dozen held-out rows by luck. Bias is what plans are known for.
    """
    twin = (choice[0], "shift")
    if choice == (None, "start") and twin in losses \
            and losses[twin].mean() < losses[choice].mean():
        return twin
    return choice


def trees_on_the_better_start(choice: tuple, losses: dict, groups=None) -> tuple:
    """`choice` (start, option), except that trees over a start yield to trees over another
    start that clearly beats it at face value (each start's better of as-is and shifted, by
    more than one standard error), when those trees also score lower and the chosen trees
    have not clearly beaten that start at face value themselves.

    The one-SE rule ranks trees over the plan simpler than trees over a size law, and on a
    few dozen rows it cannot tell them apart; but trees over the plan must relearn from those
    rows what the law already knows, and cannot extrapolate it (Kitchenham's effort lost 18
    SA points in a fold that chose them). Trees that clearly beat the law alone have shown
    they learned more than it knows (thousands of rows, as in the synthetic history, where
    the switch to the law cost 0.05 MAPE points on the test slice): they stay.
    """
    if choice[1] != "trees":
        return choice
    labels = None if groups is None else pd.factorize(np.asarray(groups))[0]

    def face(start):
        return min((losses[(start, o)] for o in ("start", "shift") if (start, o) in losses),
                   key=np.mean)

    better = [(start, option) for start, option in losses
              if option == "trees" and start != choice[0]
              and losses[(start, option)].mean() < losses[choice].mean()
              and clearly_lower(face(start), face(choice[0]), labels)
              and not clearly_lower(losses[choice], face(start), labels)]
    return min(better, key=lambda k: losses[k].mean()) if better else choice


def choose_candidate(losses: dict, groups=None) -> tuple:
    """The (start, option) a stage predicts with, from each candidate's per-row median loss
    (`median_loss`) on rows it did not train on (out of fold, or the calibration slice):
    the simplest within one standard error of the lowest (`simplest_within_one_se`, ranked
    by `complexity`), the plan or anchor at face value giving way to its median correction
    where that scores lower (`corrected_face_value`), trees over a start to trees over a
    clearly better one unless they clearly beat it alone (`trees_on_the_better_start`). One
    rule wherever the choice is made."""
    chosen = simplest_within_one_se(losses, key=lambda k: complexity(*k), groups=groups)
    chosen = corrected_face_value(chosen, losses)
    return trees_on_the_better_start(chosen, losses, groups)


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
    """Keep P10 <= P50 <= P90 without moving the median (its SHAP values must still add up).

    The levels are the last axis: (n, 3), or (n, roles, 3) for all roles at once."""
    out = q.copy()
    out[..., 0] = np.minimum(q[..., 0], q[..., 1])
    out[..., 2] = np.maximum(q[..., 2], q[..., 1])
    return out


def choice_splits(n: int, n_folds: int, groups=None, seed: int = 0) -> list[tuple]:
    """Shuffled k-fold (train, test) index pairs over `n` rows for choosing a start; folds
    never split a `groups` label. At most one fold per row (or group)."""
    from sklearn.model_selection import GroupKFold, KFold

    index = np.zeros(n)
    if groups is None:
        return list(KFold(min(n_folds, n), shuffle=True, random_state=seed).split(index))
    labels = np.asarray(groups)
    folds = min(n_folds, len(np.unique(labels)))
    return list(GroupKFold(folds, shuffle=True, random_state=seed).split(index, groups=labels))


class ConformalQuantileRegressor(RegressorMixin, BaseEstimator):
    """P10/P50/P90 LightGBM quantile regressors with conformal offsets.

    `anchor`: optional ratio feature (e.g. `eac_cpi_ratio`, an EVM index forecast / planned)
    whose log the trees start from: they learn the correction log(actual/planned) - log(anchor),
    so a model is never forced to rebuild a strong index forecast from piecewise-constant steps.
    Rows where the anchor is undefined start from 0 (the plan) and the trees see the NaN.
    `base="weighted"` with an anchor: from a + b * log(anchor), its weight learned
    (`starts.WeightedAnchorStart`).
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
        if "flat_" in state:  # before `use`: the constants were the shifts themselves
            state.setdefault("shifts_", state["flat_"])
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
            if self.base == "weighted":
                self.start_ = WeightedAnchorStart(self.anchor_index_).fit(X, y)
            else:
                ratio = X[self.anchor].to_numpy(dtype=float)
                self.start_ = AnchorStart(self.anchor_index_, float(log_positive(ratio).mean()))
        elif self.base == "loglinear":
            self.start_ = LogLinearStart(self.calendar).fit(X, y)
        elif self.base == "refclass" and self.reference in X.columns:
            self.start_ = ReferenceStart(list(X.columns).index(self.reference)).fit(X, y)
        elif self.base is not None:
            raise ValueError(f'base must be "loglinear", "refclass" (with a reference feature), '
                             f'"weighted" (with an anchor) or None, got {self.base!r}')
        start = self._frame_start(X)
        self.models_ = [LGBMRegressor(objective="quantile", alpha=q, **(self.params or {}))
                        for q in self.quantiles]
        self.offsets_ = np.zeros(len(self.quantiles))
        y = np.asarray(y, dtype=float) - start
        # The start alone: each level's quantile of what remains (see `options`).
        self.shifts_ = np.quantile(y, self.quantiles)
        self.use("trees")
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
        if shap and self.start_ is not None:
            start, start_contributions = self.start_.start_and_contributions(X)
        else:
            start = self._start(X)
        contrib = None
        if shap and self.trees_:  # its row sums are the median's trees: not predicted twice
            contrib = single_row.predict(self.models_[1].booster_, X, threads, single_row.CONTRIB)
        median = None if contrib is None else contrib.sum(axis=1)
        raw = self._raw(X, start, threads, median)
        out = {"log_quantiles": order_around_median(raw + self.offsets_)}
        if shap:
            if contrib is None:
                contrib = np.zeros((len(X), X.shape[1] + 1))
                contrib[:, -1] = self.flat_[1]
            contrib[:, -1] += self.offsets_[1]
            if self.start_ is not None:
                contrib[:, :-1] += start_contributions
                contrib[:, -1] += self.start_.mean
            out["shap"] = contrib
        return out

    def options(self, X: np.ndarray, trees: list[int] | None = None) -> dict[str, np.ndarray]:
        """The raw quantiles (n, 3) of each of the `OPTIONS` on the float matrix `X`; `trees`:
        how many trees of each level's model to use (default: all, or the early-stopped best)."""
        start = self._start(X)[:, None]
        threads = prediction_threads(len(X))
        counts = trees or [None] * len(self.models_)
        trees = np.column_stack([m.booster_.predict(X, num_iteration=k, num_threads=threads)
                                 for m, k in zip(self.models_, counts)])
        return {"trees": trees + start, "shift": start + self.shifts_,
                "start": start + self.shifts_ - self.shifts_[1]}

    def use(self, option: str) -> ConformalQuantileRegressor:
        """Predict with one of the `OPTIONS` from now on (`trees_choice_`)."""
        if option not in OPTIONS:
            raise ValueError(f"option must be one of {OPTIONS}, got {option!r}")
        self.trees_ = option == "trees"
        self.flat_ = self.shifts_ - (self.shifts_[1] if option == "start" else 0.0)
        self.trees_choice_ = option
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The median (P50) of the log-ratio target."""
        return self.predict_arrays(X, False, prediction_threads(len(X)))["log_quantiles"][:, 1]

    def _raw(self, X: np.ndarray, start: np.ndarray, threads: int,
             median: np.ndarray | None = None) -> np.ndarray:
        """Uncalibrated quantiles: each level's trees (or its constant) plus the start;
        `median`: the median's trees already predicted (the row sums of its TreeSHAP values)."""
        if not getattr(self, "trees_", True):
            return start[:, None] + self.flat_[None, :]
        if median is None:
            return single_row.predict_columns([m.booster_ for m in self.models_], X,
                                              threads) + start[:, None]
        # Column 1 is the median, as everywhere in this class (`models_[1]` gave `median`).
        others = [j for j in range(len(self.models_)) if j != 1]
        raw = np.empty((len(X), len(self.models_)))  # filled in place: `np.insert` took ~25 µs
        raw[:, others] = single_row.predict_columns([self.models_[j].booster_ for j in others],
                                                    X, threads)
        raw[:, 1] = median
        raw += start[:, None]
        return raw

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
        raw = np.clip(single_row.predict_columns([m.booster_ for m in self.models_], X,
                                                 threads), 0, None)
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
        return np.clip(np.exp(order_around_median(log_q)) - _ROLE_EPS, 0, None)

    @staticmethod
    def _raw_role_log_q(share: np.ndarray, total_log_q: np.ndarray) -> np.ndarray:
        return np.log(np.exp(total_log_q)[:, None, :] * share[:, :, None] + _ROLE_EPS)


def _best_tree_count(folds: list[tuple[int, LGBMRegressor]]) -> int:
    """The number of trees with the lowest held-out loss summed over folds of (rows, model).

    A fold that stopped early keeps its last recorded loss for the rounds it did not grow
    (it stopped because they were not improving). Without eval results: all the trees.
    """
    curves = []
    for rows, model in folds:
        recorded = getattr(model, "evals_result_", None) or {}
        losses = next(iter(recorded.get("valid_0", {}).values()), None)
        if not losses:
            return int(model.n_estimators)
        curves.append((rows, np.asarray(losses, dtype=float)))
    length = max(len(c) for _, c in curves)
    total = sum(rows * np.concatenate([c, np.full(length - len(c), c[-1])])
                for rows, c in curves)
    return int(np.argmin(total)) + 1


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
    start (none, loglinear, and refclass given a `reference` feature) and `calibrate` keeps
    the start and option (with its trees or without) that `choose_candidate` picks on the
    calibration slice (`base_choice_`, `trees_choice_`, `choice_scores_`). With an anchor,
    "auto" tries the anchor as it is ("none") and with its weight learned ("weighted").

    `choice_folds` (for small histories, where a calibration slice of a few dozen rows makes
    a noisy choice): `fit` makes that choice itself, by the median loss of out-of-fold
    predictions over `choice_folds` folds of its own rows (folds never split a `groups`
    label; each fold's trees stop early on its held-out part). The chosen start and option
    are then refitted on all rows with the median number of trees the folds kept, and the
    interval ends get conformal offsets from the out-of-fold residuals (`choice_scores_`
    holds every start x option). `calibrate` then only recomputes the offsets and calibrates
    the classifier and role shares on its slice; without a slice the model is complete.
    """

    def __init__(self, target: str, quantiles=(0.1, 0.5, 0.9), params: dict | None = None,
                 anchor: str | None = None, classifier_method: str | None = None,
                 role_share_columns: tuple = (), early_stopping_rounds: int | None = None,
                 n_jobs: int | None = None, base: str | None = None,
                 reference: str | None = None, calendar: tuple[str, ...] = (),
                 choice_folds: int | None = None):
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
        self.choice_folds = choice_folds

    def fit(self, X: pd.DataFrame, Y: pd.DataFrame, X_eval: pd.DataFrame | None = None,
            Y_eval: pd.DataFrame | None = None, fitter: Fitter | None = None,
            groups=None) -> StageEstimator:
        def eval_of(columns):
            return (X_eval, None) if Y_eval is None else (X_eval, Y_eval[columns])

        bases = self._bases(X)
        trees = None
        if self.choice_folds:
            base, trees = self._choose_by_folds(X, Y[self.target], bases, groups, fitter)
            bases = [base]
        self.candidates_ = {base or "none": self._regressor(base) for base in bases}
        jobs = []
        for regressor in self.candidates_.values():
            jobs += regressor.jobs(X, Y[self.target], *eval_of(self.target))
        self.regressor_ = next(iter(self.candidates_.values()))
        if trees is not None:  # chosen by the folds: their trees and their conformal offsets
            for model, n_trees in zip(self.regressor_.models_, trees):
                model.set_params(n_estimators=n_trees)
            self.regressor_.use(self.trees_choice_)
            del self.candidates_
        self.classifier_ = None
        if self.classifier_method:
            self.classifier_ = CalibratedLateClassifier(self.classifier_method, self.params)
            jobs += self.classifier_.jobs(X, Y["late"], *eval_of("late"))
        self.shares_ = None
        if self.role_share_columns:
            roles = list(self.role_share_columns)
            self.shares_ = RoleShareRegressor(self.quantiles, self.params)
            jobs += self.shares_.jobs(X, Y[roles], *eval_of(roles))
        self._fit_jobs(jobs, fitter)
        if trees is not None:
            self.regressor_.offsets_ = self.fold_offsets_
        self.feature_names_ = list(X.columns)
        return self

    def __setstate__(self, state: dict) -> None:
        """A stage pickled before the choice of start had none to make."""
        for name in ("base", "reference"):
            state.setdefault(name, None)
        state.setdefault("calendar", ())
        state.setdefault("choice_folds", None)
        if "regressor_" in state:
            state.setdefault("base_choice_", "none")
        super().__setstate__(state)

    def calibrate(self, X: pd.DataFrame, Y: pd.DataFrame, groups=None) -> StageEstimator:
        """Start and option (unless `fit` chose them by folds: `choose_candidate` on the
        calibration slice, rows of one `groups` label counting as one draw), conformal
        offsets and probability calibration on the calibration slice."""
        matrix = feature_matrix(X, self.feature_names_)
        candidates = self.__dict__.pop("candidates_", None)
        if candidates is not None:
            raws = {(None if name == "none" else name, option): raw
                    for name, r in candidates.items()
                    for option, raw in r.options(matrix).items()}
            _, option = self._choose(raws, Y[self.target], groups)
            self.regressor_ = candidates[self.base_choice_].use(option)
        self.regressor_.conformalize(matrix, Y[self.target])
        if self.classifier_ is not None:
            self.classifier_.calibrate(X, Y["late"])
        if self.shares_ is not None:
            log_q = self.regressor_.predict_arrays(matrix, shap=False,
                                                   threads=prediction_threads(len(X)))
            self.shares_.conformalize(matrix, log_q["log_quantiles"],
                                      Y[list(self.role_share_columns)], Y[self.target])
        return self

    def _bases(self, X: pd.DataFrame) -> list[str | None]:
        """The starts to try: the spec's base, or every one for "auto", simplest first: none,
        the reference class's median, the log-linear size law; with an anchor, the anchor as
        it is and with its weight learned (an early re-estimate may say little)."""
        if self.anchor is not None:
            return [None, "weighted"] if self.base == "auto" else [None]
        if self.base == "auto":
            return [None, *(["refclass"] if self.reference in X.columns else []), "loglinear"]
        return [self.base]

    def _regressor(self, base: str | None) -> ConformalQuantileRegressor:
        return ConformalQuantileRegressor(self.quantiles, self.params, self.anchor, base,
                                          self.reference, self.calendar)

    def _fit_jobs(self, jobs: list, fitter: Fitter | None) -> None:
        if fitter is None:
            fit_local(jobs, self.early_stopping_rounds, self.n_jobs)
        else:
            fitter(jobs, self.early_stopping_rounds)

    def _choose(self, raws: dict, y, groups) -> tuple:
        """`choose_candidate` on each candidate's per-row median loss of its raw quantiles
        (`raws`: (start or None, option) -> (n, levels)) for the outcomes `y`, recorded as
        `base_choice_`, `trees_choice_`, `choice_scores_` (each candidate's mean loss) and
        `base_scores_` (each start's best option)."""
        y = np.asarray(y, dtype=float)
        losses = {key: median_loss(y, raw, self.quantiles) for key, raw in raws.items()}
        base, option = choose_candidate(losses, groups)
        self.choice_scores_ = {(b or "none", o): float(loss.mean())
                               for (b, o), loss in losses.items()}
        self.base_scores_ = {}
        for (name, _), score in self.choice_scores_.items():
            self.base_scores_[name] = min(score, self.base_scores_.get(name, np.inf))
        self.base_choice_, self.trees_choice_ = base or "none", option
        return base, option

    def _choose_by_folds(self, X: pd.DataFrame, y: pd.Series, bases: list, groups,
                         fitter: Fitter | None) -> tuple[str | None, list[int]]:
        """The start and option `choose_candidate` picks by out-of-fold median loss, and
        its tree counts.

        Each level's number of trees is the one with the lowest held-out loss summed over the
        folds (as `lightgbm.cv` picks it); a fold is scored with the count the other folds
        pick, since trees stopped on the rows they are scored on would flatter the trees
        against the start alone.
        Sets `base_choice_`, `trees_choice_`, `choice_scores_` ((start, option) -> loss),
        `base_scores_` (each start's best option) and `fold_offsets_` (conformal offsets of
        the chosen start and option from its out-of-fold residuals). The folds are small by
        design, so they are fitted on this machine whatever `fitter` fits the final models.
        """
        target = np.asarray(y, dtype=float)
        seed = (self.params or {}).get("random_state", 0)
        fitted, jobs = [], []
        for train, test in choice_splits(len(X), self.choice_folds, groups, seed):
            candidates = {base: self._regressor(base) for base in bases}
            for regressor in candidates.values():
                jobs += regressor.jobs(X.iloc[train], target[train], X.iloc[test], target[test])
            fitted.append((test, candidates))
        fit_local(jobs, n_jobs=self.n_jobs, record=True)

        def counts(base, skip=None):  # each level's tree count from the folds but `skip`
            return [_best_tree_count([(len(test), c[base].models_[level])
                                      for f, (test, c) in enumerate(fitted) if f != skip])
                    for level in range(len(self.quantiles))]

        oof: dict[tuple, np.ndarray] = {}
        for f, (test, candidates) in enumerate(fitted):
            matrix = frame_matrix(X.iloc[test])
            for base, regressor in candidates.items():
                for option, raw in regressor.options(matrix, counts(base, f)).items():
                    oof.setdefault((base, option), np.empty((len(X), len(self.quantiles))))
                    oof[(base, option)][test] = raw
        base, option = self._choose(oof, target, groups)
        offsets = conformal_offsets(oof[(base, option)], target, self.quantiles)
        offsets[np.isclose(self.quantiles, 0.5)] = 0.0
        self.fold_offsets_ = offsets
        return base, counts(base)

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
