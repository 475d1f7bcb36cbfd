"""How well the learned duration model predicts actual/planned, against two baselines.

Grouped K-fold (a project's tasks never straddle train and test): the model's P50 against
"the estimate is right" (ratio 1) and the reference class (median training ratio of the
task's category, Flyvbjerg's outside view). Errors are on the log ratio, so over- and
under-runs count alike: MAE(log) and the share of tasks within +-25 % of the actual ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from opm_ml.schedule.uncertainty import ActivityDurationModel


def _metrics(log_pred: np.ndarray, log_true: np.ndarray) -> dict:
    error = np.abs(log_pred - log_true)
    return {"mae_log": float(error.mean()), "median_ae_log": float(np.median(error)),
            "within_25pct": float(np.mean(error <= np.log(1.25)))}


def evaluate_ratio_model(X: pd.DataFrame, ratio, groups, reference_column: str,
                         folds: int = 5, **model_params) -> pd.DataFrame:
    """Out-of-fold accuracy of `ActivityDurationModel` and the baselines (one row each)."""
    log_true = np.log(np.asarray(ratio, dtype=float))
    groups = np.asarray(groups)
    pred = np.empty((len(log_true), 3))
    reference = np.empty(len(log_true))
    for train, test in GroupKFold(n_splits=folds).split(X, log_true, groups):
        model = ActivityDurationModel(**model_params).fit(X.iloc[train], np.exp(log_true[train]),
                                                          groups[train])
        pred[test] = model.predict_log_quantiles(X.iloc[test])
        medians = pd.Series(log_true[train]).groupby(
            X[reference_column].iloc[train].astype(str).to_numpy()).median()
        reference[test] = X[reference_column].iloc[test].astype(str).map(medians).fillna(
            float(np.median(log_true[train]))).to_numpy()
    rows = [{"forecast": "learned P50", **_metrics(pred[:, 1], log_true),
             "p10_p90_coverage": float(np.mean((log_true >= pred[:, 0])
                                               & (log_true <= pred[:, 2])))},
            {"forecast": "estimate is right (ratio 1)", **_metrics(np.zeros_like(log_true),
                                                                   log_true)},
            {"forecast": f"reference class (median by {reference_column})",
             **_metrics(reference, log_true)}]
    return pd.DataFrame(rows)
