"""Every MLflow access of opm-ml: registry names, clients, the tracking context, model files.

Nothing here changes MLflow's process-wide tracking or registry URI behind a caller's back:
reads go through an `MlflowClient` and artifact repositories built with the settings' URI, so
apps and scoring runs with different settings can share a process. Training's fluent MLflow
calls (`mlflow.start_run`, `log_metric`) need the global URI; `tracking(settings)` sets it for
a block and restores the previous one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from opm_ml.forecasting.families import FAMILIES, family
from opm_ml.forecasting.pyfunc import MODEL_ARTIFACT
from opm_ml.settings import Settings

CONTRACT_PROFILE = "contract"
ACTIVITY_DURATION = "activity-duration"  # the schedule's activity-duration model (issue 17)
ACTIVITY_SOURCE = "synthetic"  # the activity history whose model schedules are analysed with


def registered_name(name: str, settings: Settings) -> str:
    """The registry name of a family's model: `<prefix>-<slug>`, with the profile in between
    for any profile but the built-in contract (`opm-delay`, `opm-kitchenham-delay`);
    `OPM_ML_MODEL_NAMES` overrides it per family."""
    spec = family(name)
    if spec.name in settings.model_names:
        return settings.model_names[spec.name]
    profile = "" if settings.profile == CONTRACT_PROFILE else f"{settings.profile}-"
    return f"{settings.model_prefix}-{profile}{spec.slug}"


def activity_model_name(settings: Settings, source: str = ACTIVITY_SOURCE) -> str:
    """The registry name of the activity-duration model trained on `source`:
    `<prefix>-activity-duration` for the synthetic activity history (the one `schedule risk`
    and the API serve; `OPM_ML_MODEL_NAMES` key `activity-duration` overrides it), with the
    source in between for any other (`opm-sip-activity-duration`)."""
    if source == ACTIVITY_SOURCE and ACTIVITY_DURATION in settings.model_names:
        return settings.model_names[ACTIVITY_DURATION]
    middle = "" if source == ACTIVITY_SOURCE else f"{source}-"
    return f"{settings.model_prefix}-{middle}{ACTIVITY_DURATION}"


def registered_names(settings: Settings) -> dict[str, str]:
    """Family -> registered model name, for every family."""
    return {name: registered_name(name, settings) for name in FAMILIES}


def client(settings: Settings):
    """An MlflowClient on the settings' store (tracking and registry)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                        registry_uri=settings.mlflow_tracking_uri)


@contextmanager
def tracking(settings: Settings) -> Iterator[None]:
    """Point MLflow's fluent API (runs, logging, registration) at the settings' store for the
    block, then restore what it pointed at before."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking_service

    # The raw settings, not the getters' resolved defaults: restoring those would turn
    # "never set" into "set", and MLflow mirrors each into an environment variable.
    before = (tracking_service._tracking_uri, registry._registry_uri,
              os.environ.get("MLFLOW_REGISTRY_URI"))
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        registry._registry_uri = before[1]
        if before[2] is None:
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
        else:
            os.environ["MLFLOW_REGISTRY_URI"] = before[2]


def require_tracking_folder(uri: str) -> None:
    """FileNotFoundError when `uri` is an SQLite store in a folder that does not exist.

    MLflow would create the folders and an empty store there, so a mistyped path would look like
    an empty registry instead of the configuration error it is.
    """
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        folder = Path(uri[len("sqlite:///"):]).parent
        if not folder.is_dir():
            raise FileNotFoundError(f"the tracking store's folder {folder} does not exist "
                                    f"(OPM_ML_MLFLOW_TRACKING_URI={uri})")


def served_version(mlflow_client, name: str, alias: str):
    """The model version `name@alias` points to, or why it is not in the registry.

    Returns `(version, None)` or `(None, reason)`; a registry that cannot be reached raises.
    """
    from mlflow.exceptions import MlflowException

    from opm_ml.text import first_line

    try:
        return mlflow_client.get_model_version_by_alias(name, alias), None
    except MlflowException as exc:
        # No such registered model / no such alias; anything else is an outage.
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        return None, f"{name}@{alias} is not in the registry: {first_line(exc, typed=False)}"


def load_family_model(mlflow_client, name: str, version: str, tracking_uri: str,
                      signing_key: str | None = None, artifact: str = MODEL_ARTIFACT):
    """A registered version's fitted `FamilyModel` (or the object in its joblib `artifact`),
    read into memory from a download we delete.

    Only the model's joblib file is downloaded, through an artifact repository built for this
    store (no global URI). The temporary copy is removed at once, so a replica that reloads
    whenever an alias moves does not fill its disk. With `signing_key`, the file is unpickled
    only if the version's tags sign it under that key (`opm_ml.signing`; ModelRefused if not).
    """
    import joblib

    from opm_ml import signing

    with _downloaded_model(mlflow_client, name, version, tracking_uri, artifact) as path:
        if signing_key is not None:
            tags = mlflow_client.get_model_version(name, version).tags
            signing.check(signing_key, name, str(version), tags, signing.file_digest(path))
        return joblib.load(path)


def sign_version(mlflow_client, name: str, version: str, tracking_uri: str,
                 signing_key: str, artifact: str = MODEL_ARTIFACT) -> str:
    """Tag a registered version with its model file's digest and the key's HMAC of it (what
    `load_family_model` checks); returns the digest. The file is hashed as loaders get it."""
    from opm_ml import signing

    with _downloaded_model(mlflow_client, name, version, tracking_uri, artifact) as path:
        digest = signing.file_digest(path)
    for key, value in signing.signing_tags(signing_key, name, digest).items():
        mlflow_client.set_model_version_tag(name, version, key, value)
    return digest


@contextmanager
def _downloaded_model(mlflow_client, name: str, version: str, tracking_uri: str,
                      artifact: str) -> Iterator[str]:
    """The version's `artifact` joblib file in a temporary folder, removed when the block
    ends."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    uri = mlflow_client.get_model_version_download_uri(name, version)
    repo = get_artifact_repository(uri, tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="opm-ml-model-") as folder:
        yield repo.download_artifacts(f"artifacts/{artifact}.joblib", folder)
