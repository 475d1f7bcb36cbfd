"""From a model spec to the unfitted estimators of a family stage, and how a stage is fitted.

The estimator classes live in the runtime core (`opm_ml.forecasting.estimators`): a served
model needs them. Training decides their settings from `models/<family>.toml` and the
dataset's manifest, fits them on the training slice (stopping early on the calibration slice)
and calibrates them, locally or on a Dask cluster through a `Fitter`.
"""

from __future__ import annotations

import pandas as pd

from opm_ml.features import build_features
from opm_ml.forecasting.estimators import Fitter, StageEstimator
from opm_ml.manifest import FeatureManifest


def lgbm_params(hyperparameters: dict, random_state: int, n_rows: int | None = None) -> dict:
    """Spec hyper-parameters plus the settings every model shares (quiet, seeded, 1 thread).

    One OpenMP thread per model: the models of a stage are fitted in parallel threads instead
    (LightGBM releases the GIL), which scales better on small machines than OpenMP threads
    that spin-wait when the cores are shared. On small histories (`n_rows` training rows) a
    leaf may hold as few as n/8 rows (at least 3), or no split would ever be allowed.
    """
    params = {**hyperparameters, "random_state": random_state, "verbose": -1, "n_jobs": 1}
    if n_rows is not None and "min_child_samples" in params:
        params["min_child_samples"] = int(min(params["min_child_samples"],
                                              max(3, n_rows // 8)))
    return params


def model_features(manifest: FeatureManifest, stage: str,
                   exclude: tuple[str, ...] = ()) -> list[str]:
    """The manifest's features of `stage` without `exclude` (ValueError naming any name the
    manifest does not know at any stage)."""
    unknown = sorted(set(exclude) - set(manifest.stages["inflight"]))
    if unknown:
        raise ValueError(f"cannot exclude unknown feature(s): {unknown}")
    return [f for f in manifest.stages[stage] if f not in exclude]


def stage_estimator(stage: str, spec, random_state: int, anchor: str | None,
                    role_share_columns: tuple[str, ...] = (), n_jobs: int | None = None,
                    n_rows: int | None = None, reference: str | None = None,
                    calendar: tuple[str, ...] = (),
                    choice_folds: int | None = None) -> StageEstimator:
    """The unfitted estimator of one family stage, as its spec says (leaves adapted to `n_rows`
    training rows).

    Training chooses the start, option and tree counts on its calibration slice, which is
    newer than the training slice (a time split), so the choice is judged on the future it
    will forecast. `choice_folds` (for data without that order, such as the real datasets'
    cross-validation) chooses by folds of the training rows instead.
    """
    anchor = anchor if stage == "inflight" else None
    return StageEstimator(
        target=spec.target,
        quantiles=tuple(spec.quantiles),
        params=lgbm_params(spec.params_for(stage), random_state, n_rows),
        anchor=anchor,
        classifier_method=spec.calibration if spec.classifier else None,
        role_share_columns=role_share_columns,
        early_stopping_rounds=spec.early_stopping_rounds,
        n_jobs=n_jobs,
        base=spec.base,
        reference=reference,
        calendar=calendar,
        choice_folds=choice_folds,
    )


def fit_stage(estimator: StageEstimator, manifest: FeatureManifest, stage: str,
              features: list[str], train: pd.DataFrame, calibration: pd.DataFrame,
              target_columns: list[str], fitter: Fitter | None = None) -> StageEstimator:
    """Fit on the training slice (stopping early on the calibration slice), then calibrate.

    The calibration slice picks each model's number of trees, the start and option
    (`choose_candidate`, a project's snapshots counting as one draw) and the intervals;
    coverage is always reported on the untouched test slice. A choice by folds
    (`choice_folds`) keeps each project's rows (its in-flight snapshots) in one fold.
    """
    X = build_features(train, stage, manifest)[features]
    X_cal = build_features(calibration, stage, manifest)[features]
    estimator.fit(X, train[target_columns], X_cal, calibration[target_columns], fitter=fitter,
                  groups=_projects(train))
    estimator.calibrate(X_cal, calibration[target_columns], groups=_projects(calibration))
    return estimator


def _projects(part: pd.DataFrame):
    """Each row's project (its in-flight snapshots count as one draw in the choice)."""
    return part["project_id"].to_numpy() if "project_id" in part.columns else None
