"""Our model families on the real public datasets, beside the published baselines.

Real datasets carry their own columns, not the full contract, so the model here is the
family's product estimator (`StageEstimator`, built by `training.estimators.stage_estimator`
from `models/*.toml` exactly as training builds it, small-data adaptation included) fitted on
each dataset's own features, with the family's target transform: log hours for effort, log
actual/planned ratio for delay and overrun. Inside every cross-validation fold it makes its
choices on the fold's training rows only (by folds of them on small sets, else on a
calibration part; by project where the dataset has groups), so the choice of start, option
and trees never sees the fold's test rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.utils.validation import check_is_fitted

from opm_ml.forecasting.estimators import StageEstimator
from opm_ml.real_data import RealDataset, benchmark_real_data
from training.estimators import stage_estimator
from training.specs import load_spec

# Which model family answers which real-data family.
SPEC_FOR = {"effort": "resource", "delay": "delay", "overrun": "overrun"}
# The calibration share of the training rows when the estimator does not choose by folds
# (the specs' 0.6 train / 0.2 calibration split).
CALIBRATION_SHARE = 0.25
# Below this many independent draws among the training rows (rows, or projects where rows
# are grouped by project) a random calibration slice makes a noisy choice of start, option
# and trees: the estimator chooses by `CHOICE_FOLDS` folds of its training rows. (SiP's 8,175
# tasks are 19 projects per fold: a calibration quarter held 5.) Training proper keeps its
# calibration slice, which is newer than the training slice; a real dataset's folds have no
# such order to respect.
CHOOSE_BY_FOLDS_BELOW = 1000
CHOICE_FOLDS = 5


class FamilyEstimator(RegressorMixin, BaseEstimator):
    """A model family's product estimator on a real dataset; predicts its P50 (ratio or hours).

    `family`: the spec (`resource`, `delay`, `overrun`); `stage`: "intake", or "inflight" for
    snapshots that carry a current forecast, which is then the `anchor` (a ratio to plan, as
    the EVM index forecasts are in flight); `reference`: the reference-class category.
    `fit` builds the estimator with `stage_estimator` for its number of rows: sets with fewer
    than `CHOOSE_BY_FOLDS_BELOW` rows (groups, with `groups`) choose the start, option and
    trees by folds of the training rows (`StageEstimator.choice_folds`), larger ones on a
    random calibration slice of `CALIBRATION_SHARE` of them (as training does on its
    time-ordered one), split by `groups`.
    SA scores the P50, so the delay family's late classifier is not fitted. Strings become
    pandas categories with the levels seen in training; unseen or missing levels are NaN.
    """

    def __init__(self, family: str = "resource", stage: str = "intake",
                 anchor: str | None = None, reference: str | None = None,
                 random_state: int = 0):
        self.family = family
        self.stage = stage
        self.anchor = anchor
        self.reference = reference
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y, groups=None) -> FamilyEstimator:
        target = np.asarray(y, dtype=float)
        if (target <= 0).any() or not np.isfinite(target).all():
            raise ValueError("y must be positive and finite (it is modelled on a log scale)")
        spec = replace(load_spec(self.family), classifier=False)
        self.categories_ = {
            name: pd.Index(X[name].dropna().astype(str).unique())
            for name in X.columns if not pd.api.types.is_numeric_dtype(X[name])
        }
        frame = self._encode(X)
        Y = pd.DataFrame({spec.target: np.log(target)}, index=frame.index)
        draws = len(frame) if groups is None else pd.Series(groups).nunique()
        small = draws < CHOOSE_BY_FOLDS_BELOW
        estimator = stage_estimator(self.stage, spec, self.random_state, self.anchor,
                                    n_rows=len(frame), reference=self.reference,
                                    choice_folds=CHOICE_FOLDS if small else None)
        if estimator.choice_folds:
            estimator.fit(frame, Y, groups=groups)
        else:
            fit, cal = calibration_split(len(frame), groups, self.random_state)
            estimator.fit(frame.iloc[fit], Y.iloc[fit], frame.iloc[cal], Y.iloc[cal],
                          groups=None if groups is None else np.asarray(groups)[fit])
            estimator.calibrate(frame.iloc[cal], Y.iloc[cal],
                                groups=None if groups is None else np.asarray(groups)[cal])
        self.estimator_: StageEstimator = estimator
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return np.exp(self.estimator_.predict(self._encode(X))["log_quantiles"][:, 1])

    def _encode(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X.copy()
        for name, levels in self.categories_.items():
            X[name] = pd.Categorical(X[name].astype("str").where(X[name].notna()),
                                     categories=levels)
        return X


def calibration_split(n: int, groups=None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, calibration rows): a random `CALIBRATION_SHARE`, whole groups at a time."""
    index = np.zeros(n)
    if groups is None:
        splitter = ShuffleSplit(1, test_size=CALIBRATION_SHARE, random_state=seed)
        return next(splitter.split(index))
    splitter = GroupShuffleSplit(1, test_size=CALIBRATION_SHARE, random_state=seed)
    return next(splitter.split(index, groups=np.asarray(groups)))


def family_estimators(dataset: RealDataset) -> dict:
    """The product estimator of the model family that answers this dataset's question.

    A dataset with a current forecast of the target (`baseline_column`, e.g. the latest
    re-estimate) is a snapshot in flight: the in-flight stage, anchored on that forecast.
    """
    inflight = dataset.baseline_column is not None
    return {"opm": lambda: FamilyEstimator(
        SPEC_FOR[dataset.family], "inflight" if inflight else "intake",
        anchor=dataset.baseline_column, reference=dataset.reference_column)}


def evaluate_real(family: str | None = None, n_repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Every usable real dataset: our family model and the published baselines, out of fold."""
    return benchmark_real_data(family=family, extra_estimators=family_estimators,
                               n_repeats=n_repeats, seed=seed)


# Short column labels so a family table fits an 80-column terminal; LEGEND explains them.
LABELS = {
    "opm": "opm", "atlm": "ATLM", "mean": "mean", "median": "median",
    "no_change": "none", "reference_class": "ref", "reference_class_by_category": "ref/cat",
    "current_estimate": "cur", "current_estimate_x_reference_class": "cur*ref",
}
LEGEND = (
    "opm = our family's product estimator; ATLM = automatically transformed linear model; none = no "
    "change (ratio 1); ref = reference-class median ratio; ref/cat = the same per category; "
    "cur = the project's current re-estimate; cur*ref = current re-estimate x reference class; "
    "opm ± = the standard deviation of opm's SA over the repeats"
)


def family_tables(result: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One table per family: a row per dataset, a column per estimator, cells 'SA / MdAE',
    and (given `SA_sd`) `opm ±`, the standard deviation of our SA over the repeats.

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
        if "SA_sd" in part.columns:  # our SA's spread over repeats, to read a gap against
            ours = part[part["estimator"] == "opm"].set_index("dataset")["SA_sd"]
            table["opm ±"] = ours.reindex(table.index).map(lambda sd: f"{sd:.1f}")
        table["best"] = best.set_index("dataset")["estimator"]
        tables[family] = table
    return tables
