"""Training on a Dask cluster: same kind of model, same quality as the local fit.

One LocalCluster (2 workers x 1 thread) for the module. The delay (quantile models + late
classifier; through `train_models(client=...)`, so logged and registered) and resource (quantile
+ role-share models; `train_family`) families are trained locally and on the cluster from the
same 1,500 generated projects; both are scored by `training.evaluation.evaluate_family` on the
same held-out projects. Few, shallow trees: lightgbm.dask syncs histograms per split.

Why these checks: at this size, training on half the rows costs only 1-5 % relative MAPE, so
quality alone would not catch every broken backend; the structural tests (both workers in every
fit, every row dealt exactly once, the local categorical encoding, LightGBM's stopping rule)
catch those, and the quality bounds catch misaligned labels, lost early stopping and the like.
"""

from __future__ import annotations

import re
from dataclasses import replace

import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest

from support import registry_settings

# The CLI's private MLflow store (OPM_ML_* environment), as the other `opm-ml train` tests use it.
from test_training_faults import store  # noqa: F401, E402  (a pytest fixture)
from typer.testing import CliRunner

from opm_ml import mlflow_access
from opm_ml.cli import app
from opm_ml.dask_cluster import dask_client
from opm_ml.forecasting import family as family_spec
from opm_ml.forecasting.families import STAGES
from opm_ml.model_set import load_model_set
from opm_ml.settings import Settings
from opm_ml.synthetic import generate_history, write_history
from opm_ml.validation import History
from training.distributed import CalibrationEarlyStopping, dask_fitter, scatter_rows
from training.evaluation import evaluate_family, heldout_frame
from training.pipeline import train_family, train_models
from training.specs import load_spec

FAMILIES = ("delay", "resource")
SEED = 5
# Dask vs local, measured over 3 runs of this set-up (which worker becomes LightGBM's rank 0, and
# so builds which bins, varies between fits): pooled held-out MAPE within 0.8 % relative, per
# stage within 2.2 %, coverage within 0.027, AUC within 0.016. Training on half the rows moves
# delay's MAPE by 4.8-5 % in every stage (resource's by 0.7-2.3 %: the structural tests catch it).
HELDOUT_MAPE_RELATIVE = 0.025
STAGE_MAPE_RELATIVE = 0.04
COVERAGE_ABS = 0.05
AUC_ABS = 0.03


@pytest.fixture(scope="module")
def history() -> History:
    g = generate_history(1500, seed=21)
    return History(g.projects, g.snapshots, g.resource_usage,
                   pd.DataFrame(columns=["table", "row", "column", "value", "reason"]))


@pytest.fixture(scope="module")
def specs():
    # One start (base None): this compares fits, and a choice between starts within one
    # standard error of each other may flip on the small differences the cluster makes.
    return {f: replace(load_spec(f).with_hyperparameters(n_estimators=80, learning_rate=0.15,
                                                          num_leaves=15),
                       must_beat_baselines=False, early_stopping_rounds=10, base=None)
            for f in FAMILIES}


@pytest.fixture(scope="module")
def client():
    with dask_client("local", n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    return registry_settings(tmp_path_factory.mktemp("mlflow_dask"))


@pytest.fixture(scope="module")
def local(history, specs):
    """family -> (model, data, held-out metrics) of the local (joblib threads) fit."""
    out = {}
    for family in FAMILIES:
        model, data = train_family(specs[family], history, SEED)
        out[family] = model, data, evaluate_family(model, specs[family], data).metrics
    return out


@pytest.fixture(scope="module")
def logged(history, specs, client, settings):
    """`train_models` of the delay family on the cluster: the result, logged and registered."""
    previous = mlflow.get_tracking_uri()
    yield train_models(history, ("delay",), seed=SEED, settings=settings, specs=specs,
                       data_source="generated:1500:seed21", client=client)
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def on_dask(logged, history, specs, client):
    """family -> (model, data, held-out metrics) of the fit on the cluster."""
    delay = logged.results[0]
    model, data = train_family(specs["resource"], history, SEED, dask_fitter(client))
    return {"delay": (delay.model, delay.data, delay.metrics),
            "resource": (model, data, evaluate_family(model, specs["resource"], data).metrics)}


@pytest.mark.parametrize("family", FAMILIES)
def test_dask_quality_matches_the_local_fit_on_the_same_held_out_projects(local, on_dask,
                                                                          family):
    _, data, got = on_dask[family]
    _, local_data, expected = local[family]
    pd.testing.assert_frame_equal(data.intake.test, local_data.intake.test)  # same projects
    for stage in ("intake", "inflight", "heldout"):
        mape = got[f"{stage}/mape"], expected[f"{stage}/mape"]
        bound = HELDOUT_MAPE_RELATIVE if stage == "heldout" else STAGE_MAPE_RELATIVE
        assert abs(mape[0] - mape[1]) <= bound * mape[1], (stage, mape)
        cover = got[f"{stage}/coverage_80"], expected[f"{stage}/coverage_80"]
        assert abs(cover[0] - cover[1]) <= COVERAGE_ABS, (stage, cover)
        if family == "delay":
            auc = got[f"{stage}/auc"], expected[f"{stage}/auc"]
            assert abs(auc[0] - auc[1]) <= AUC_ABS, (stage, auc)
    # Still better than the baselines, as the local models are.
    assert got["intake/mape"] < got["intake/baseline_refclass/mape"]


def lightgbm_models(model) -> dict[str, lightgbm.LGBMModel]:
    """Every LightGBM model of a family, by stage and role in the stage."""
    out = {}
    for stage in STAGES:
        est = model.stages[stage]
        out.update({f"{stage}/q{i}": m for i, m in enumerate(est.regressor_.models_)})
        if est.classifier_ is not None:
            out[f"{stage}/late"] = est.classifier_.model_
        if est.shares_ is not None:
            out.update({f"{stage}/share{i}": m for i, m in enumerate(est.shares_.models_)})
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_dask_models_are_plain_lightgbm_models_fitted_by_both_workers(local, on_dask, family):
    dask_models = lightgbm_models(on_dask[family][0])
    local_models = lightgbm_models(local[family][0])
    assert dask_models.keys() == local_models.keys()
    stopped_early = 0
    for name, m in dask_models.items():
        ref = local_models[name]
        assert type(m) is type(ref), name  # LGBMRegressor / LGBMClassifier, not the Dask ones
        assert m.get_params() == ref.get_params(), name
        text = m.booster_.model_to_string()
        assert "[num_machines: 2]" in text, name  # both workers' rows trained it
        # Categories keep the local encoding: same category lists, same categorical features.
        assert m.booster_.pandas_categorical == ref.booster_.pandas_categorical, name
        infos = m.booster_.dump_model()["feature_infos"]
        ref_infos = ref.booster_.dump_model()["feature_infos"]
        assert {f: set(i["values"]) for f, i in infos.items() if i["values"]} == {
            f: set(i["values"]) for f, i in ref_infos.items() if i["values"]}, name
        stopped_early += m.booster_.num_trees() < m.n_estimators
    assert stopped_early >= len(dask_models) // 2  # early stopping on the calibration slice


@pytest.mark.parametrize("family", FAMILIES)
def test_dask_models_predict_and_explain_through_the_family_model(on_dask, family):
    model, data, _ = on_dask[family]
    rows = heldout_frame(data.intake.test.head(20), data.inflight.test.head(20))
    out = model.predict(rows).to_frame()
    planned_col, qty = family_spec(family).planned, family_spec(family).quantity
    shap_cols = [c for c in out.columns if c.startswith("shap__")]
    total = out["shap_base"] + out[shap_cols].sum(axis=1, skipna=True)
    np.testing.assert_allclose(total, np.log(out[f"{qty}_p50"] / rows[planned_col]), atol=1e-9)
    assert set(out["stage"]) == {"intake", "inflight"}


def test_train_models_logs_the_dask_backend_and_registers_as_usual(logged, settings):
    store = mlflow_access.client(settings)
    parent = store.get_run(logged.parent_run_id).data.params
    assert parent["backend"] == "dask"
    assert re.fullmatch(r"2 worker\(s\) x 1 thread\(s\) at tcp://127\.0\.0\.1:\d+",
                        parent["dask_cluster"])
    r = logged.results[0]
    params = store.get_run(r.run_id).data.params
    assert (params["backend"], params["dask_cluster"]) == ("dask", parent["dask_cluster"])
    assert r.decision.registered and r.decision.promoted, r.decision.reason
    version = store.get_model_version_by_alias(mlflow_access.registered_name("delay", settings),
                                               "champion")
    assert version.run_id == r.run_id
    rows = heldout_frame(r.data.intake.test.head(5), r.data.inflight.test.head(5))
    served = load_model_set(settings, ["delay"]).model("delay").model.predict(rows).to_frame()
    pd.testing.assert_frame_equal(served, r.model.predict(rows).to_frame(), check_dtype=False)


def test_rows_are_dealt_once_each_into_one_block_per_worker(client):
    workers = sorted(client.scheduler_info()["workers"])
    X = pd.DataFrame({"x": np.arange(1001.0)})
    blocks, parts = scatter_rows(client, X, workers, seed=3)
    assert sorted(np.concatenate(blocks)) == list(range(1001))
    assert sorted(len(b) for b in blocks) == [500, 501]
    assert blocks[0][:20].tolist() != list(range(20))  # dealt at random, not oldest first
    holders = client.who_has(parts)
    assert sorted(w for held in holders.values() for w in held) == workers
    gathered = client.gather(parts)
    for rows, part in zip(blocks, gathered):
        pd.testing.assert_frame_equal(part, X.iloc[rows])


@pytest.mark.parametrize("objective", ["quantile", "regression", "binary"])
def test_calibration_early_stopping_is_lightgbm_early_stopping(objective):
    """Fitted locally, the callback keeps exactly the trees LightGBM's own early stopping on
    the same eval set keeps: same stopping round, same best iteration, same predictions."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 4))
    signal = X[:, 0] + 0.5 * X[:, 1] ** 2
    y = (signal + rng.normal(size=1200) > 0.5).astype(int) if objective == "binary" else \
        signal + rng.normal(size=1200)
    train, valid = slice(0, 800), slice(800, None)
    factory = lightgbm.LGBMClassifier if objective == "binary" else lightgbm.LGBMRegressor
    params = dict(n_estimators=400, learning_rate=0.2, num_leaves=15, verbose=-1, n_jobs=1,
                  random_state=1, **({"objective": "quantile", "alpha": 0.9}
                                     if objective == "quantile" else {}))
    reference = factory(**params).fit(X[train], y[train], eval_X=(X[valid],),
                                      eval_y=(y[valid],),
                                      callbacks=[lightgbm.early_stopping(10, verbose=False)])
    ours = factory(**params).fit(X[train], y[train], callbacks=[CalibrationEarlyStopping(
        X[valid], np.asarray(y[valid], float), objective, params.get("alpha", 0.9), 10)])
    assert 0 < ours.best_iteration_ == reference.best_iteration_ < 400
    assert ours.booster_.num_trees() == reference.booster_.num_trees()
    (_, metric, value), = [(k, m, v) for k, d in ours.best_score_.items() for m, v in d.items()]
    # LightGBM keeps labels as float32: its loss agrees to that precision.
    assert value == pytest.approx(reference.best_score_["valid_0"][metric], rel=1e-6)
    np.testing.assert_array_equal(ours.booster_.predict(X[valid]),
                                  reference.booster_.predict(X[valid]))


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small_history")
    write_history(generate_history(300, seed=3), folder, fmt="csv")
    return str(folder)


def cli_train(folder, *flags):
    return CliRunner().invoke(app, ["train", "--data", folder, "--models", "delay", *flags])


@pytest.mark.parametrize("flags, message", [
    (("--scheduler", "tcp://127.0.0.1:9", "--timeout", "0.5"),
     "error: no Dask scheduler answered at tcp://127.0.0.1:9 within 0.5 s"),
    (("--workers", "2"), "error: --workers sizes the Dask LocalCluster; pass --dask too"),
])
def test_cli_dask_problems_are_one_line_errors_and_register_nothing(small_folder, store, flags,
                                                                    message):
    result = cli_train(small_folder, *flags)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.output
    assert "Traceback" not in result.output
    assert store.search_registered_models() == []
    assert store.search_experiments(filter_string="name = 'opm-ml'") == []  # no run started
