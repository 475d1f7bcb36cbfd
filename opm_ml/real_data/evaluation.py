"""Cross-validated accuracy of estimators on the real datasets: MAE, MdAE, MdMRE and SA.

Standardised Accuracy (Shepperd & MacDonell 2012) compares an estimator with random guessing,
SA = (1 - MAE / MAE_P0) * 100, where MAE_P0 is computed exactly: the mean |y_i - y_j| over all
ordered pairs i != j, i.e. the expected MAE of predicting each case by another case's actual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from inspect import signature
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut, LeaveOneOut, RepeatedKFold

from opm_ml.real_data.baselines import (
    ATLM,
    CurrentEstimate,
    MeanEstimator,
    MedianEstimator,
    NoChange,
    ReferenceClassUplift,
)
from opm_ml.real_data.dataset import RealDataset
from opm_ml.real_data.loader import load_real_datasets

EstimatorFactory = Callable[[], object]
Split = tuple[np.ndarray, np.ndarray]
METRICS = ("MAE", "MdAE", "MdMRE", "SA")


def mae_p0(y_reference) -> float:
    """Exact MAE of random guessing: mean |y_i - y_j| over ordered pairs i != j (O(n log n))."""
    values = np.sort(np.asarray(y_reference, dtype=float).ravel())
    n = values.size
    if n < 2 or not np.isfinite(values).all():
        raise ValueError("MAE_P0 needs at least two finite reference values")
    # In sorted order value k (1-based) is the larger of k-1 pairs and the smaller of n-k.
    pair_sum = np.sum(values * (2 * np.arange(1, n + 1) - n - 1))
    return float(2 * pair_sum / (n * (n - 1)))


def standardised_accuracy(y_true, y_pred, y_reference=None) -> float:
    """SA in percent: 100 for a perfect predictor, about 0 for random guessing.

    MAE_P0 is taken over `y_reference` (default: `y_true`), e.g. all actuals of the dataset.
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values, y_pred {y_pred.size}")
    reference = y_true if y_reference is None else y_reference
    return float((1 - np.mean(np.abs(y_true - y_pred)) / mae_p0(reference)) * 100)


def cv_splits(
    n: int,
    groups: pd.Series | np.ndarray | None = None,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    loo_below: int = 30,
) -> list[list[Split]]:
    """Folds per repeat: repeated (group) k-fold, or leave-one-(group-)out below `loo_below`.

    With groups, folds never split a group and `loo_below` counts groups, not rows.
    """
    index = np.zeros(n)
    if groups is None:
        if n < loo_below:
            return [list(LeaveOneOut().split(index))]
        folds = list(RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats,
                                   random_state=seed).split(index))
        return [folds[r * n_splits:(r + 1) * n_splits] for r in range(n_repeats)]
    labels = np.asarray(groups)
    if len(labels) != n:
        raise ValueError(f"groups has {len(labels)} values for {n} rows")
    n_groups = len(np.unique(labels))
    if n_groups < loo_below:
        return [list(LeaveOneGroupOut().split(index, groups=labels))]
    return [
        list(GroupKFold(n_splits=min(n_splits, n_groups), shuffle=True,
                        random_state=seed + r).split(index, groups=labels))
        for r in range(n_repeats)
    ]


def _metrics(y: np.ndarray, pred: np.ndarray, p0: float) -> dict[str, float]:
    error = np.abs(y - pred)
    return {
        "MAE": float(error.mean()),
        "MdAE": float(np.median(error)),
        "MdMRE": float(np.median(error / y)),
        "SA": float((1 - error.mean() / p0) * 100),
    }


def evaluate(
    dataset: RealDataset,
    estimators: Mapping[str, EstimatorFactory],
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
    loo_below: int = 30,
) -> pd.DataFrame:
    """Out-of-fold accuracy of each estimator on one dataset; one row per estimator.

    Every repeat predicts every row once; metrics are computed on those pooled predictions and
    averaged over repeats (`SA_sd` is their spread). MAE_P0 uses all actuals of the dataset.
    `estimators` maps a name to a zero-argument factory returning an unfitted estimator; one
    whose `fit` takes `groups` gets the training rows' groups (to split them by project).
    """
    X, y = dataset.X, dataset.y.to_numpy(dtype=float)
    repeats = cv_splits(dataset.n, dataset.groups, n_splits, n_repeats, seed, loo_below)
    scheme = (f"{len(repeats[0])}-fold x{len(repeats)}" if len(repeats) > 1
              else f"leave-one-{'group-' if dataset.groups is not None else ''}out")
    p0 = mae_p0(y)
    rows = {}
    for name, factory in estimators.items():
        per_repeat = []
        for folds in repeats:
            pred = np.full(dataset.n, np.nan)
            for train, test in folds:
                model = factory()
                fit_groups = {}
                if dataset.groups is not None and "groups" in signature(model.fit).parameters:
                    fit_groups["groups"] = dataset.groups.iloc[train].to_numpy()
                model.fit(X.iloc[train], dataset.y.iloc[train], **fit_groups)
                pred[test] = np.asarray(model.predict(X.iloc[test]), dtype=float)
            if not np.isfinite(pred).all():
                raise ValueError(f"estimator {name!r} on {dataset.name!r}: non-finite predictions")
            per_repeat.append(_metrics(y, pred, p0))
        table = pd.DataFrame(per_repeat)
        rows[name] = {**table.mean().to_dict(), "SA_sd": float(table["SA"].std(ddof=0)),
                      "n": dataset.n, "scheme": scheme}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("estimator")


def default_estimators(dataset: RealDataset) -> dict[str, EstimatorFactory]:
    """The published baselines that fit the dataset's family and columns."""
    if dataset.family == "effort":
        return {"atlm": ATLM, "mean": MeanEstimator, "median": MedianEstimator}
    estimators: dict[str, EstimatorFactory] = {
        "no_change": NoChange,
        "reference_class": ReferenceClassUplift,
    }
    if dataset.reference_column is not None:
        column = dataset.reference_column
        estimators[f"reference_class_by_{column}"] = lambda: ReferenceClassUplift(column)
    if dataset.baseline_column is not None:
        base = dataset.baseline_column
        estimators["current_estimate"] = lambda: CurrentEstimate(base)
        estimators["current_estimate_x_reference_class"] = (
            lambda: ReferenceClassUplift(base_column=base))
    estimators["atlm"] = ATLM
    return estimators


def benchmark_real_data(
    root: Path | None = None,
    family: str | None = None,
    extra_estimators: Callable[[RealDataset], Mapping[str, EstimatorFactory]] | None = None,
    n_splits: int = 5,
    n_repeats: int = 10,
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate the default baselines (plus `extra_estimators(dataset)`) on every real dataset.

    Returns one row per dataset and estimator; skipped datasets are in `.attrs["skipped"]`.
    """
    datasets = load_real_datasets(root, family)
    tables = []
    for dataset in datasets:
        estimators = dict(default_estimators(dataset))
        if extra_estimators is not None:
            estimators.update(extra_estimators(dataset))
        table = evaluate(dataset, estimators, n_splits, n_repeats, seed).reset_index()
        tables.append(table.assign(dataset=dataset.name, family=dataset.family,
                                   target_unit=dataset.target_unit))
    result = pd.concat(tables, ignore_index=True)
    result = result[["family", "dataset", "estimator", *METRICS, "SA_sd", "n", "scheme",
                     "target_unit"]]
    result.attrs["skipped"] = list(datasets.skipped)
    return result
