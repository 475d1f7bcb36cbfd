"""The served model set: loaded in the background, swapped atomically, refreshed from the registry.

A `opm_ml.model_set.ModelSet` is immutable and replaced as a whole by one reference assignment,
so a request that took the set at its start finishes on it, and no request ever sees a
half-loaded set. A failed load keeps the set in use. A polling thread reloads when a registry
alias moves. A model missing from the registry does not stop the others being served: the set
records it as missing, and /readyz and the endpoints that need it answer 503 naming it.

Why a load failed reaches anonymous clients only as a public reason (which model, refused or
unreadable) and a reference id; the exception itself goes to the log, credentials masked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from opm_ml import heap, mlflow_access
from opm_ml.model_set import ModelSet, ModelUnavailable, load_model_set
from opm_ml.schedule.served import activity_version
from opm_ml.settings import Settings
from opm_ml.text import first_line, mask_credentials
from serving.errors import log_with_reference

log = logging.getLogger("opm_ml.serving")


def registry_versions(settings: Settings, activity: bool = False) -> dict[str, str]:
    """Family slug -> model version the serving alias points to now, for those that exist;
    with `activity`, the activity-duration model's too (as `ModelSet.registry_state`)."""
    from opm_ml.forecasting import FAMILIES

    mlflow_access.require_tracking_folder(settings.mlflow_tracking_uri)
    client = mlflow_access.client(settings)
    versions = {}
    for name, registered in mlflow_access.registered_names(settings).items():
        version, _ = mlflow_access.served_version(client, registered, settings.serve_alias)
        if version is not None:
            versions[FAMILIES[name].slug] = str(version.version)
    seen = activity_version(settings, client) if activity else None
    if seen is not None:
        versions[mlflow_access.ACTIVITY_DURATION] = seen
    return versions


class ModelStore:
    """Holds the model set in use; loads, reloads and polls the MLflow registry in the background.

    Listeners added with `on_load` hear of every load, swapped or failed.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._current: ModelSet | None = None
        self._reason = "models are not loaded yet"
        self.last_error: str | None = None  # the failure's first line, for the admin answer
        self.problem: str | None = None  # its public reason, while the failure is the latest
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
        """The set in use, or ModelUnavailable with the reason."""
        current = self._current
        if current is None:
            raise ModelUnavailable(self._reason)
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
        if self._load_lock.locked():  # a load is under way (the first one, at start-up)
            return False
        try:
            wanted = registry_versions(self.settings, activity=True)
        except Exception as exc:  # a registry outage must not kill the poller
            log.warning("registry check failed: %s", mask_credentials(first_line(exc)))
            return False
        current = self._current
        if wanted == (current.registry_state() if current is not None else {}):
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
        try:
            new = load_model_set(self.settings, activity=True)
        except Exception as exc:
            reference = log_with_reference("loading the model set failed; keeping the set in use",
                                           exc)
            self.last_error = mask_credentials(first_line(exc))
            public = getattr(exc, "public", None)  # ModelLoadError, ModelUnavailable
            self.problem = (f"loading the models failed{': ' + public if public else ''}; "
                            f"reference {reference} in the log")
            if self._current is None:
                self._reason = self.problem
            for listener in self._listeners:
                listener(None, self.last_error)
            return False
        self._current = new  # the atomic swap: one reference assignment
        if self.settings.freeze_models:
            heap.settle()  # the new set out of full collections' way, the replaced one collected
        self.last_error = self.problem = None
        log.info("serving model set %s", new.versions())
        if new.missing:
            log.warning("not serving: %s", new.missing_text())
        if new.activity is None:
            log.info("schedules use the default template: %s", new.activity_reason)
        for listener in self._listeners:
            listener(new, None)
        return True

