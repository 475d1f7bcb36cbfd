"""Shared fixtures: one small real model registry, trained once per test session.

Training the three families takes a few seconds with 25 trees; the serving, intake, fuzzing and
fault tests all load from this registry instead of training their own copy. Tests that move its
aliases take `private_registry`, a copy of it, so test order cannot matter; others that change
it only register other model names.
"""

import os
import shutil
import sqlite3
import tempfile
from dataclasses import replace

import mlflow
import pytest

from opm_ml import validation
from opm_ml.forecasting import FAMILY_NAMES as FAMILIES
from opm_ml.settings import Settings
from opm_ml.synthetic import generate_history, write_history
from training.pipeline import train_models
from training.specs import load_spec

# Apps and commands built with default settings log their forecasts (prediction log) to a
# throwaway database, never to the project folder's var/opm-ml.db.
os.environ.setdefault("OPM_ML_DATABASE_URL",
                      f"sqlite:///{tempfile.mkdtemp(prefix='opm-ml-tests-')}/opm-ml.db")
# One test process builds hundreds of apps and model sets: freezing each into the permanent
# generation (`opm_ml.heap`) would keep their garbage; test_heap.py covers it on purpose.
os.environ.setdefault("OPM_ML_FREEZE_MODELS", "false")


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


@pytest.fixture
def private_registry(small_registry, tmp_path):
    """(settings, history) on this test's own copy of the session registry: the SQLite store
    and the artifacts folder copied, no retraining. Moving its aliases changes nothing else."""
    settings, history = small_registry
    return copy_registry(settings, tmp_path), history


def copy_registry(settings: Settings, folder) -> Settings:
    """Settings on a copy of `settings`' SQLite store and artifacts in `folder` (0.3 s)."""
    source_artifacts = str(settings.mlflow_artifact_root)
    artifacts = folder / "artifacts"
    shutil.copytree(source_artifacts, artifacts)
    store = folder / "mlflow.db"
    src = sqlite3.connect(settings.mlflow_tracking_uri.removeprefix("sqlite:///"))
    copy = sqlite3.connect(store)
    try:
        src.backup(copy)  # consistent even while the session store has connections open
        _replace_text(copy, source_artifacts, str(artifacts))
    finally:
        src.close()
        copy.close()
    return settings.model_copy(update={"mlflow_tracking_uri": f"sqlite:///{store}",
                                       "mlflow_artifact_root": artifacts})


def _replace_text(db: sqlite3.Connection, old: str, new: str) -> None:
    """Point every stored path (runs, experiments, model versions...) at the copied artifacts."""
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
            name, kind = column[1], column[2].upper()
            if "CHAR" in kind or "TEXT" in kind:
                db.execute(f'UPDATE "{table}" SET "{name}" = REPLACE("{name}", ?, ?) '
                           f'WHERE instr("{name}", ?) > 0', (old, new, old))
    db.commit()
