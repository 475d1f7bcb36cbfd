"""How well the learned duration model predicts actual/planned, against two baselines.

Grouped K-fold (a project's tasks never straddle train and test): the model's P50 against
"the estimate is right" (ratio 1) and the reference class (median training ratio of the
task's category, Flyvbjerg's outside view, with the class's P10/P90 as its interval). Errors
are on the log ratio, so over- and under-runs count alike: MAE(log) of the median, the share
within +-25 %, and for the whole distribution the mean pinball loss of P10/P50/P90 and the
P10-P90 coverage (ratio 1 has no spread: its "interval" is the point).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from opm_ml.schedule.uncertainty import ActivityDurationModel

LEVELS = np.array([0.1, 0.5, 0.9])


def ratio_metrics(log_q: np.ndarray, log_true: np.ndarray) -> dict:
    """Point errors of the median (column 1) and the interval's pinball loss and coverage."""
    error = np.abs(log_q[:, 1] - log_true)
    miss = log_true[:, None] - log_q
    pinball = np.maximum(LEVELS * miss, (LEVELS - 1) * miss).mean()
    return {"mae_log": float(error.mean()), "median_ae_log": float(np.median(error)),
            "within_25pct": float(np.mean(error <= np.log(1.25))),
            "pinball_log": float(pinball),
            "p10_p90_coverage": float(np.mean((log_true >= log_q[:, 0])
                                              & (log_true <= log_q[:, 2])))}


def reference_quantiles(classes_train, log_train, classes_test) -> np.ndarray:
    """(n_test, 3) log P10/P50/P90 of each test row's class in training (the outside view);
    a class training never saw gets the overall quantiles."""
    by_class = pd.Series(np.asarray(log_train, float)).groupby(
        pd.Series(classes_train).astype(str).to_numpy())
    overall = np.quantile(log_train, LEVELS)
    test = pd.Series(classes_test).astype(str)
    return np.column_stack([test.map(by_class.quantile(level)).fillna(overall[j]).to_numpy(float)
                            for j, level in enumerate(LEVELS)])


def baseline_quantiles(classes_train, log_train, classes_test) -> dict[str, np.ndarray]:
    """The two baselines' log quantiles on the test rows: "ratio_one" (the estimate is right:
    every quantile at ratio 1) and "refclass" (the class's training quantiles)."""
    n = len(classes_test)
    return {"ratio_one": np.zeros((n, 3)),
            "refclass": reference_quantiles(classes_train, log_train, classes_test)}


def evaluate_ratio_model(X: pd.DataFrame, ratio, groups, reference_column: str,
                         folds: int = 5, **model_params) -> pd.DataFrame:
    """Out-of-fold accuracy of `ActivityDurationModel` and the baselines (one row each)."""
    log_true = np.log(np.asarray(ratio, dtype=float))
    groups = np.asarray(groups)
    pred = np.empty((len(log_true), 3))
    reference = np.empty((len(log_true), 3))
    for train, test in GroupKFold(n_splits=folds).split(X, log_true, groups):
        model = ActivityDurationModel(**model_params).fit(X.iloc[train], np.exp(log_true[train]),
                                                          groups[train])
        pred[test] = model.predict_log_quantiles(X.iloc[test])
        reference[test] = reference_quantiles(X[reference_column].iloc[train], log_true[train],
                                              X[reference_column].iloc[test])
    rows = [{"forecast": "learned (LightGBM quantiles, conformal)",
             **ratio_metrics(pred, log_true)},
            {"forecast": "estimate is right (ratio 1)",
             **ratio_metrics(np.zeros_like(pred), log_true)},
            {"forecast": f"reference class ({reference_column} P10/P50/P90)",
             **ratio_metrics(reference, log_true)}]
    return pd.DataFrame(rows)
