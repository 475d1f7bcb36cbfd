"""Shared fixtures: one small real model registry, trained once per test session.

Training the three families takes a few seconds with 25 trees; the serving, intake, fuzzing and
fault tests all load from this registry instead of training their own copy. Tests that change
it (new versions, moved aliases) only add versions of the same artifacts or use other names.
"""

from dataclasses import replace

import mlflow
import pytest

from opm_ml import validation
from opm_ml.settings import Settings
from opm_ml.synthetic import generate_history, write_history
from training.pipeline import train_models
from training.specs import FAMILIES, load_spec


@pytest.fixture(scope="session")
def small_registry(tmp_path_factory):
    """(settings, history): a temporary registry holding champion v1 of the three families.

    The history is generated (1,500 projects), written and validated as `opm-ml train` does.
    """
    root = tmp_path_factory.mktemp("small_registry")
    settings = Settings(
        _env_file=None, mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        mlflow_artifact_root=root / "artifacts", data_dir=root / "history",
        database_url=f"sqlite:///{root / 'opm-ml.db'}", registry_poll_seconds=0,
    )
    write_history(generate_history(1500, seed=11), settings.data_dir)
    history = validation.load_history(settings.data_dir)
    specs = {f: replace(load_spec(f).with_hyperparameters(n_estimators=25),
                        must_beat_baselines=False) for f in FAMILIES}
    previous = mlflow.get_tracking_uri()
    train_models(history, settings=settings, specs=specs, seed=3)
    yield settings, history
    mlflow.set_tracking_uri(previous)
