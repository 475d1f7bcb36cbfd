"""The served model set: loaded in the background, swapped atomically, refreshed from the registry.

A `ModelSet` is immutable and replaced as a whole by one reference assignment, so a request that
took the set at its start finishes on it, and no request ever sees a half-loaded set. A failed
load keeps the set in use. A polling thread reloads when a registry alias moves. A model missing
from the registry does not stop the others being served: the set records it as missing, and
/readyz and the endpoints that need it answer 503 naming it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opm_ml.settings import Settings
from serving.errors import ModelsNotReady

log = logging.getLogger("opm_ml.serving")

# URL name of each task -> its model family (`opm_ml.model_loading.FAMILIES`).
TASKS = {"delay": "delay", "overrun": "overrun", "resource-demand": "resource"}


@dataclass(frozen=True)
class ServedModel:
    """One loaded model with what /v1/models reports about it."""

    task: str
    name: str
    version: str
    alias: str
    predictor: Any
    trained_at: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage_digest: str | None = None
    datasets: tuple[dict[str, str], ...] = ()
    run_id: str | None = None


@dataclass(frozen=True)
class ModelSet:
    """The models served together; replaced as a whole, never edited in place.

    `missing`: task -> why its model is not served (e.g. not in the registry).
    """

    models: Mapping[str, ServedModel]
    missing: Mapping[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def versions(self) -> dict[str, str]:
        return {task: m.version for task, m in self.models.items()}

    def model(self, task: str) -> ServedModel:
        """The task's model, or ModelsNotReady naming the missing registered model."""
        if task not in self.models:
            raise ModelsNotReady(f"no {task} model is served: {self.missing[task]}")
        return self.models[task]

    def require_all(self) -> None:
        """ModelsNotReady naming every missing model, unless all three are served."""
        if self.missing:
            raise ModelsNotReady(f"not every model is served: {self.missing_text()}")

    def intake_forecaster(self) -> dict:
        """Family -> (frame -> pyfunc forecasts), as `opm_ml.intake` scoring takes it.

        Intake scoring needs all three families, so this raises ModelsNotReady otherwise.
        """
        from opm_ml.model_loading import to_model_input

        self.require_all()
        return {TASKS[task]: (lambda frame, m=m: m.predictor.model.predict(to_model_input(frame)))
                for task, m in self.models.items()}

    def missing_text(self) -> str:
        return "; ".join(f"{task} ({why})" for task, why in self.missing.items())


def registered_names(settings: Settings) -> dict[str, str]:
    """Task -> registered model name, from settings."""
    from opm_ml.model_loading import registered_name

    return {task: registered_name(family, settings) for task, family in TASKS.items()}


def served_version(client, name: str, alias: str):
    """The model version `name@alias` points to, or the reason it is not in the registry.

    Returns `(version, None)` or `(None, reason)`; a registry that cannot be reached raises.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias), None
    except MlflowException as exc:
        # No such registered model / no such alias; anything else is an outage.
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        return None, f"{name}@{alias} is not in the registry: {first_line(exc, typed=False)}"


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


def registry_versions(settings: Settings) -> dict[str, str]:
    """Task -> model version the serving alias points to now, for the models that exist."""
    from mlflow import MlflowClient

    require_tracking_folder(settings.mlflow_tracking_uri)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                          registry_uri=settings.mlflow_tracking_uri)
    versions = {}
    for task, name in registered_names(settings).items():
        version, _ = served_version(client, name, settings.serve_alias)
        if version is not None:
            versions[task] = str(version.version)
    return versions


class ModelStore:
    """Holds the model set in use; loads, reloads and polls the MLflow registry in the background.

    Listeners added with `on_load` hear of every load, swapped or failed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._current: ModelSet | None = None
        self._reason = "models are not loaded yet"
        self.last_error: str | None = None
        self._load_lock = threading.Lock()  # one load at a time; readers never take it
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Callable[[ModelSet | None, str | None], None]] = []

    @property
    def current(self) -> ModelSet | None:
        return self._current

    @property
    def reason(self) -> str:
        """Why no model set is ready (meaningful while `current` is None)."""
        return self._reason

    def on_load(self, listener: Callable[[ModelSet | None, str | None], None]) -> None:
        """Call `listener(model_set, None)` after each swap, `(None, error)` after a failure.

        Called at once with the set in use, if any, so late subscribers start in sync.
        """
        self._listeners.append(listener)
        if self._current is not None:
            listener(self._current, None)

    def require(self) -> ModelSet:
        """The set in use, or ModelsNotReady with the reason."""
        current = self._current
        if current is None:
            raise ModelsNotReady(self._reason)
        return current

    def reload(self, wait: bool = True) -> bool:
        """Load the models the alias points to and swap them in.

        With `wait`, blocks until done and returns whether the swap happened (a failure keeps
        the old set and is logged). Without, starts a background load and returns False if
        one is already running.
        """
        if wait:
            with self._load_lock:
                return self._load_and_swap()
        if self._load_lock.locked():
            return False
        self._spawn(self._locked_reload, "opm-model-reload")
        return True

    def check_registry(self) -> bool:
        """Reload if the alias now points at other versions; returns whether it reloaded."""
        try:
            wanted = registry_versions(self.settings)
        except Exception as exc:  # a registry outage must not kill the poller
            log.warning("registry check failed: %s", first_line(exc))
            return False
        current = self._current
        if wanted == (current.versions() if current is not None else {}):
            return False
        log.info("registry alias %r moved to %s; reloading", self.settings.serve_alias, wanted)
        return self.reload(wait=True)

    def start(self) -> None:
        """Initial background load (unless loaded) and, if configured, the registry poller."""
        self._stop.clear()
        if self._current is None:
            self.reload(wait=False)
        if self.settings.registry_poll_seconds > 0:
            self._spawn(self._poll, "opm-registry-poll")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _spawn(self, target: Callable[[], Any], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _locked_reload(self) -> None:
        with self._load_lock:
            self._load_and_swap()

    def _poll(self) -> None:
        while not self._stop.wait(self.settings.registry_poll_seconds):
            self.check_registry()

    def _load_and_swap(self) -> bool:
        if self._current is None:
            self._reason = "models are loading"
        from serving.loading import load_model_set  # it imports this module

        try:
            new = load_model_set(self.settings)
        except Exception as exc:
            log.exception("loading the model set failed; keeping the set in use")
            self.last_error = first_line(exc)
            if self._current is None:
                self._reason = f"loading the models failed: {self.last_error}"
            for listener in self._listeners:
                listener(None, self.last_error)
            return False
        self._current = new  # the atomic swap: one reference assignment
        self.last_error = None
        log.info("serving model set %s", new.versions())
        if new.missing:
            log.warning("not serving: %s", new.missing_text())
        for listener in self._listeners:
            listener(new, None)
        return True


def first_line(exc: BaseException, typed: bool = True) -> str:
    """The first line of an error (with its type unless `typed=False`), for reasons and logs."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}" if typed else line
