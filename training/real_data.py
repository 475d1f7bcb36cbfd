"""Our model families on the real public datasets, beside the published baselines.

Real datasets carry their own columns, not the full contract, so the models here are the
families' LightGBM configurations (hyper-parameters from `models/*.toml`) fitted on each
dataset's own features, with the family's target transform: log hours for effort, log
actual/planned ratio for delay and overrun. Only the small-data settings differ (documented on
`FamilyLGBM`): with 15-500 rows the spec's leaf sizes would forbid any split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from opm_ml.real_data import RealDataset, benchmark_real_data
from training.specs import load_spec

# Which model family answers which real-data family.
SPEC_FOR = {"effort": "resource", "delay": "delay", "overrun": "overrun"}


class FamilyLGBM(RegressorMixin, BaseEstimator):
    """A model family's P50 LightGBM (median of log target), tolerant of missing features.

    Small-data adaptations (the spec's values are kept otherwise): at least 3 and at most
    n/8 rows per leaf, histogram bins allowed to hold a single row, and a fixed 200 trees,
    since there is no calibration slice to stop on. Strings become pandas categories with
    the levels seen in training; unseen or missing levels go LightGBM's missing branch.
    """

    def __init__(self, hyperparameters: dict | None = None, n_estimators: int = 200,
                 random_state: int = 0):
        self.hyperparameters = hyperparameters
        self.n_estimators = n_estimators
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y) -> FamilyLGBM:
        target = np.asarray(y, dtype=float)
        if (target <= 0).any() or not np.isfinite(target).all():
            raise ValueError("y must be positive and finite (it is modelled on a log scale)")
        params = dict(self.hyperparameters or {})
        params.update(
            objective="quantile",  # the family's P50 model: median of the log target
            alpha=0.5,
            n_estimators=self.n_estimators,
            min_child_samples=int(np.clip(len(target) // 8, 3, params.get("min_child_samples", 20))),
            min_data_in_bin=1,
            random_state=self.random_state,
            n_jobs=1,
            verbose=-1,
        )
        self.categories_ = {
            name: pd.Index(X[name].dropna().astype(str).unique())
            for name in X.columns if not pd.api.types.is_numeric_dtype(X[name])
        }
        self.model_ = LGBMRegressor(**params).fit(self._encode(X), np.log(target))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.exp(self.model_.predict(self._encode(X)))

    def _encode(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for name, levels in self.categories_.items():
            X[name] = pd.Categorical(X[name].astype("str").where(X[name].notna()), categories=levels)
        return X


def family_estimators(dataset: RealDataset) -> dict:
    """The LightGBM of the model family that answers this dataset's question."""
    params = load_spec(SPEC_FOR[dataset.family]).params_for("intake")
    return {"opm_lightgbm": lambda: FamilyLGBM(params)}


def evaluate_real(family: str | None = None, n_repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every usable real dataset: our family model and the published baselines, out of fold."""
    return benchmark_real_data(family=family, extra_estimators=family_estimators,
                               n_repeats=n_repeats, seed=seed)


# Short column labels so a family table fits an 80-column terminal; LEGEND explains them.
LABELS = {
    "opm_lightgbm": "opm", "atlm": "ATLM", "mean": "mean", "median": "median",
    "no_change": "none", "reference_class": "ref", "reference_class_by_category": "ref/cat",
    "current_estimate": "cur", "current_estimate_x_reference_class": "cur*ref",
}
LEGEND = (
    "opm = our family's LightGBM; ATLM = automatically transformed linear model; none = no "
    "change (ratio 1); ref = reference-class median ratio; ref/cat = the same per category; "
    "cur = the project's current re-estimate; cur*ref = current re-estimate x reference class"
)


def family_tables(result: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One table per family: a row per dataset, a column per estimator, cells 'SA / MdAE'.

    SA is Standardised Accuracy (% better than random guessing, higher is better); MdAE is in
    the dataset's target unit (hours or EUR for effort, actual/planned ratio otherwise).
    """
    result = result.assign(
        estimator=result["estimator"]
        .str.replace(r"reference_class_by_\w+", "reference_class_by_category", regex=True)
        .map(LABELS),
        cell=[f"{sa:.0f} / " + (f"{mdae:,.0f}" if mdae >= 100 else f"{mdae:.3g}")
              for sa, mdae in zip(result["SA"], result["MdAE"])],
    )
    tables = {}
    for family, part in result.groupby("family", sort=False):
        table = part.pivot(index="dataset", columns="estimator", values="cell").fillna("–")
        order = [e for e in part["estimator"].unique() if e != "opm"] + ["opm"]
        best = part.loc[part.groupby("dataset")["SA"].idxmax(), ["dataset", "estimator"]]
        table = table.loc[part["dataset"].unique(), order]
        table["best"] = best.set_index("dataset")["estimator"]
        tables[family] = table
    return tables
