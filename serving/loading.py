"""Load the served model set from the MLflow registry: alias -> version -> pyfunc -> predictor.

Each alias is resolved to a version first and that exact version is loaded, so the set reports
precisely what it serves even if the alias moves meanwhile (the poller then loads the new one).
A model that is not in the registry is left out of the set and recorded as missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone

from opm_ml.settings import Settings
from serving.model_store import (
    TASKS,
    ModelSet,
    ServedModel,
    first_line,
    registered_names,
    require_tracking_folder,
    served_version,
)
from serving.predictor import FamilyPredictor


class ModelLoadError(RuntimeError):
    """A registered model version whose artifacts are missing or cannot be read."""


def load_model_set(settings: Settings, tasks: Iterable[str] | None = None) -> ModelSet:
    """The families' models the serving alias points to, for those in the registry.

    `tasks` (e.g. `["delay"]`) loads only those; the API loads all three.

    Raises LookupError naming them when none of them is there, ModelLoadError naming the
    version whose artifacts cannot be loaded, and whatever the registry raises when it cannot be
    read (the store keeps its old set).
    """
    from mlflow import MlflowClient

    from opm_ml.model_loading import use_tracking

    require_tracking_folder(settings.mlflow_tracking_uri)
    use_tracking(settings)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                          registry_uri=settings.mlflow_tracking_uri)
    alias = settings.serve_alias
    models, missing = {}, {}
    names = registered_names(settings)
    for task in names if tasks is None else tasks:
        name = names[task]
        version, reason = served_version(client, name, alias)
        if version is None:
            missing[task] = reason
            continue
        try:
            family_model = _load_family_model(f"models:/{name}/{version.version}")
        except Exception as exc:  # missing or corrupt artifacts: say which model, keep the cause
            raise ModelLoadError(f"{name} v{version.version} ({task}) cannot be loaded: "
                                 f"{first_line(exc)}") from exc
        if family_model.family != TASKS[task]:
            raise ValueError(f"{name} v{version.version} is a {family_model.family} model, "
                             f"expected {TASKS[task]}")
        run = client.get_run(version.run_id) if version.run_id else None
        datasets = _datasets(run)
        models[task] = ServedModel(
            task=task, name=name, version=str(version.version), alias=alias,
            predictor=FamilyPredictor(family_model),
            trained_at=_iso(run.info.end_time or run.info.start_time) if run else None,
            metrics=dict(run.data.metrics) if run else {},
            lineage_digest=_digest(datasets) if datasets else None,
            datasets=tuple(datasets),
            run_id=version.run_id,
        )
    if not models:
        raise LookupError(f"none of the models is in the registry: {'; '.join(missing.values())}")
    return ModelSet(models, missing)


def _load_family_model(uri: str):
    """The version's fitted FamilyModel, read fully into memory from a download we delete.

    MLflow downloads a model into a new temp folder it never removes: a replica reloading from a
    tracking server every time the alias moves would fill its disk one model set at a time.
    """
    import tempfile

    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="opm-ml-model-") as folder:
        return mlflow.pyfunc.load_model(uri, dst_path=folder).unwrap_python_model().model


def _datasets(run) -> list[dict[str, str]]:
    """The run's logged input datasets (name, context, digest), sorted for a stable digest."""
    if run is None or run.inputs is None:
        return []
    found = []
    for item in run.inputs.dataset_inputs:
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), "")
        found.append({"name": item.dataset.name, "context": context,
                      "digest": item.dataset.digest})
    return sorted(found, key=lambda d: (d["context"], d["name"], d["digest"]))


def _digest(datasets: list[dict[str, str]]) -> str:
    text = "\n".join(f"{d['context']}:{d['name']}:{d['digest']}" for d in datasets)
    return hashlib.sha256(text.encode()).hexdigest()


def _iso(millis: int) -> str:
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="seconds")
