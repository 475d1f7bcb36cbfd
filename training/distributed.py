"""Fit a stage's LightGBM jobs on a Dask cluster through `lightgbm.dask`, one model at a time.

`dask_fitter(client)` is the `Fitter` training hands the estimators instead of the local one
(`opm_ml.forecasting.estimators.fit_local`). The only step that differs: each job's
rows are dealt at random (seeded) into one partition per worker, `DaskLGBMRegressor` /
`DaskLGBMClassifier` trains on all of them at once (data-parallel: the workers keep their rows
and share histograms over LightGBM's network), and `.to_local()` hands back the plain sklearn
model, so calibration, SHAP, the MLflow pyfunc and serving run unchanged.

Early stopping: `lightgbm.dask` splits an eval set across the workers and has no early stopping,
and a worker that stopped on its own share alone would leave the others blocked in the next
round. `CalibrationEarlyStopping` instead scores the whole calibration slice on every worker;
data-parallel workers hold identical trees, so they all compute the same loss and stop at the
same round, by LightGBM's own rule on the same eval data as the local fit (one worker gives
exactly the local model).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping, register_logger
from lightgbm.basic import EvalResult, LightGBMError

from opm_ml.dask_cluster import DaskClusterError
from opm_ml.features import feature_matrix

LOGGER = logging.getLogger(__name__)
# What the local fit calls its eval set (so `best_score_` reads the same on both backends).
EVAL_NAME = "valid_0"
# Objective (and its LightGBM aliases) -> (its default metric in LightGBM, loss of raw scores).
_L2 = ("l2", lambda y, raw, alpha: float(np.mean((y - raw) ** 2)))
_METRICS = {
    "quantile": ("quantile", lambda y, raw, alpha: float(np.mean(
        np.maximum(alpha * (y - raw), (alpha - 1) * (y - raw))))),
    "regression": _L2, "regression_l2": _L2, "l2": _L2, "mse": _L2, "mean_squared_error": _L2,
    "binary": ("binary_logloss", lambda y, raw, alpha: float(np.mean(
        np.logaddexp(0.0, np.where(y > 0, -raw, raw))))),
}


class CalibrationEarlyStopping:
    """LightGBM callback: early stopping on the whole eval set, identical on every worker.

    Keeps the eval set's raw scores up to date one tree at a time (cheap at any round) and
    feeds its loss to LightGBM's own `early_stopping` rule, which ends training on all workers
    in the same round and records the best iteration as the local fit does.
    """

    order = 30  # where LightGBM runs its own early-stopping callback
    before_iteration = False

    def __init__(self, X_eval: np.ndarray, y_eval: np.ndarray, objective: str, alpha: float,
                 rounds: int):
        self.X_eval = X_eval
        self.y_eval = y_eval
        self.metric, self._loss = _METRICS[objective]
        self.alpha = alpha
        self.rounds = rounds

    def __call__(self, env) -> None:
        if env.iteration == env.begin_iteration:
            self._raw = np.zeros(len(self.y_eval))
            self._rule = early_stopping(self.rounds, verbose=False)
        self._raw += env.model.predict(self.X_eval, start_iteration=env.iteration,
                                       num_iteration=1, raw_score=True)
        loss = self._loss(self.y_eval, self._raw, self.alpha)
        self._rule(replace(env, evaluation_result_list=[
            EvalResult(EVAL_NAME, self.metric, loss, False)]))


def dask_fitter(client):
    """A `Fitter` that trains every job across `client`'s workers."""
    def fit(jobs: list[tuple], early_stopping_rounds: int | None) -> None:
        fit_jobs_dask(jobs, client, early_stopping_rounds)

    return fit


def fit_jobs_dask(jobs: list[tuple], client, early_stopping_rounds: int | None = None) -> None:
    """Fit (model, X, y, X_eval, y_eval) jobs in place on the cluster, one after another.

    One at a time because each fit occupies every worker (they train it together); LightGBM
    uses each worker's thread count and fresh free ports per fit (no `local_listen_port`), so
    consecutive fits cannot clash. Raises DaskClusterError when the cluster cannot do the work.
    """
    workers = _prepared_workers(client)
    frames: dict[int, tuple] = {}  # id(X) -> (row blocks, partition futures): a stage shares X
    matrices: dict[int, np.ndarray] = {}  # id(X_eval) -> its float matrix
    with _lightgbm_logs_to(logging.getLogger("lightgbm")):
        for model, X, y, X_eval, y_eval in jobs:
            params = model.get_params()
            if id(X) not in frames:
                frames[id(X)] = scatter_rows(client, X, workers, params.get("random_state"))
            blocks, x_parts = frames[id(X)]
            callbacks = []
            if X_eval is not None and early_stopping_rounds:
                if id(X_eval) not in matrices:
                    matrices[id(X_eval)] = feature_matrix(X_eval, list(X_eval.columns))
                callbacks.append(_early_stopping_for(model, params, matrices[id(X_eval)],
                                                     np.asarray(y_eval, float),
                                                     early_stopping_rounds))
            _fit_one(client, model, params, X, x_parts, y, blocks, workers, callbacks)


def _fit_one(client, model, params: dict, X: pd.DataFrame, x_parts: list, y, blocks: list,
             workers: list[str], callbacks: list) -> None:
    """Train one model across the workers and give `model` (the job's own object) its state."""
    import dask.dataframe as dd
    from distributed import KilledWorker
    from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

    y = np.asarray(y)
    y_parts = [client.scatter(pd.Series(y[rows]), workers=[w], hash=False)
               for rows, w in zip(blocks, workers)]
    dX = dd.from_delayed(x_parts, meta=X.iloc[:0], verify_meta=False)
    dy = dd.from_delayed(y_parts, meta=pd.Series([], dtype=y.dtype), verify_meta=False)
    factory = DaskLGBMClassifier if isinstance(model, LGBMClassifier) else DaskLGBMRegressor
    # lightgbm.dask sets num_threads to each worker's thread count itself.
    dask_model = factory(client=client, **{k: v for k, v in params.items() if k != "n_jobs"})
    try:
        dask_model.fit(dX, dy, callbacks=callbacks)
    except (OSError, KilledWorker, LightGBMError) as exc:
        raise DaskClusterError(f"training a {_objective(model, params)} model on the Dask "
                               f"cluster failed: {exc}") from exc
    _adopt(model, dask_model.to_local())
    booster = model.booster_
    LOGGER.info("lightgbm.dask: %s model on %d rows over %d workers: %d trees, best "
                "iteration %s%s", _objective(model, params), len(X), len(workers),
                booster.num_trees(), booster.best_iteration or "-",
                " (early stopping on the whole calibration slice)" if callbacks else "")


def _objective(model, params: dict) -> str:
    return params.get("objective") or (
        "binary" if isinstance(model, LGBMClassifier) else "regression")


def _early_stopping_for(model, params: dict, X_eval: np.ndarray, y_eval: np.ndarray,
                        rounds: int) -> CalibrationEarlyStopping:
    objective = _objective(model, params)
    if objective not in _METRICS or params.get("metric"):
        raise ValueError(
            f"early stopping on a Dask cluster supports the quantile, L2 regression and binary "
            f"objectives with their default metric; got objective {objective!r}, "
            f"metric {params.get('metric')!r}")
    return CalibrationEarlyStopping(X_eval, y_eval, objective, params.get("alpha", 0.9), rounds)


def _adopt(model, fitted) -> None:
    """Give `model` the fitted state of `fitted`: its owner (e.g. `ConformalQuantileRegressor.
    models_`) holds that object, as after a local fit. Parameters stay the job's own: the Dask
    fit adds worker-side ones (threads, network) that are not the model's."""
    for key, value in vars(fitted).items():
        if (key.startswith("_") or key.endswith("_")) and key != "_other_params":
            setattr(model, key, value)


def scatter_rows(client, X: pd.DataFrame, workers: list[str], seed) -> tuple[list, list]:
    """Deal X's rows at random into one block per worker and place each block on its worker.

    At random, not in order: the rows are time-ordered, and LightGBM builds each feature's bins
    from one worker's rows, so every block should look like the whole.
    """
    order = np.random.default_rng(seed).permutation(len(X))
    blocks = [np.sort(b) for b in np.array_split(order, len(workers))]
    parts = [client.scatter(X.iloc[rows], workers=[w], hash=False)
             for rows, w in zip(blocks, workers)]
    return blocks, parts


def _prepared_workers(client) -> list[str]:
    """The workers' addresses, once they have shown they can run this module."""
    from distributed import LocalCluster

    workers = sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    if not workers:
        raise DaskClusterError(f"the Dask scheduler at {client.scheduler.address} has no workers")
    try:
        client.run(prepare_worker, isinstance(getattr(client, "cluster", None), LocalCluster))
    except Exception as exc:  # e.g. ModuleNotFoundError on a worker without opm-ml
        raise DaskClusterError(
            f"the Dask workers cannot run opm-ml's training code ({type(exc).__name__}: {exc}); "
            "install opm-ml in the workers' environment") from None
    return workers


def prepare_worker(local: bool) -> None:
    """On each worker: importing this module is the check; a local worker's stdout is muted.

    LightGBM's network code prints a few lines per fit from its own C++ threads, straight to
    stdout, which LocalCluster workers share with this terminal (and its progress bars).
    """
    if local:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


@contextmanager
def _lightgbm_logs_to(logger: logging.Logger):
    """Send this process's LightGBM messages to `logger` at debug level while fitting, then
    restore what was registered. lightgbm.dask prints a line per fit and warns on every fit
    that it ignores `n_jobs` (it sets each worker's threads): routine, not for the terminal."""
    import lightgbm.basic as basic

    saved = basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME
    register_logger(logger, info_method_name="debug", warning_method_name="debug")
    try:
        yield
    finally:
        basic._LOGGER, basic._INFO_METHOD_NAME, basic._WARNING_METHOD_NAME = saved
