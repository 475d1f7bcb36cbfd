"""The registered activity-duration model a schedule risk analysis uses, from MLflow.

`opm-ml schedule train` registers `<prefix>-activity-duration` and moves its `champion` alias
through the promotion gate; `load_activity_model(settings)` loads the version the serving
alias points to (the CLI's `schedule risk` and the API, through `opm_ml.model_set`). It never
raises: without a registry, a registered model or a loadable version, the analysis runs on the
default template and says why (`reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opm_ml import mlflow_access
from opm_ml.settings import Settings
from opm_ml.text import first_line

MODEL_ARTIFACT = "activity_duration_model"


@dataclass(frozen=True)
class ServedActivityModel:
    """One loaded activity-duration model and its registry identity."""

    name: str
    version: str
    alias: str
    model: object  # a fitted ActivityDurationModel
    run_id: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "alias": self.alias}


def registry_missing(uri: str) -> str | None:
    """Why there is no registry to read at `uri` (an SQLite file that does not exist), else
    None. Looking must not create an empty store as a side effect."""
    if uri.startswith("sqlite:///") and ":memory:" not in uri:
        path = Path(uri[len("sqlite:///"):])
        if not path.is_file():
            return f"no model registry at {path} (train one: opm-ml schedule train)"
    return None


def activity_version(settings: Settings, client=None) -> str | None:
    """The version the serving alias of the activity-duration model points to, if any."""
    if registry_missing(settings.mlflow_tracking_uri):
        return None
    client = client or mlflow_access.client(settings)
    version, _ = mlflow_access.served_version(client, mlflow_access.activity_model_name(settings),
                                              settings.serve_alias)
    return None if version is None else str(version.version)


def load_activity_model(settings: Settings, client=None
                        ) -> tuple[ServedActivityModel | None, str]:
    """(the served activity-duration model, "") or (None, why it is not served)."""
    from opm_ml.schedule.uncertainty import ActivityDurationModel

    missing = registry_missing(settings.mlflow_tracking_uri)
    if missing:
        return None, missing
    name = mlflow_access.activity_model_name(settings)
    try:
        client = client or mlflow_access.client(settings)
        version, reason = mlflow_access.served_version(client, name, settings.serve_alias)
        if version is None:
            return None, f"{reason} (train one: opm-ml schedule train)"
        model = mlflow_access.load_family_model(client, name, version.version,
                                                settings.mlflow_tracking_uri,
                                                settings.signing_key(), MODEL_ARTIFACT)
        run = client.get_run(version.run_id) if version.run_id else None
    except Exception as exc:  # an outage or a broken version: the template still works
        return None, f"{name}@{settings.serve_alias} cannot be loaded: {first_line(exc)}"
    if not isinstance(model, ActivityDurationModel):
        return None, (f"{name} v{version.version} holds a {type(model).__name__}, not an "
                      "ActivityDurationModel (retrain it: opm-ml schedule train)")
    return ServedActivityModel(name, str(version.version), settings.serve_alias, model,
                               version.run_id, dict(run.data.metrics) if run else {}), ""
