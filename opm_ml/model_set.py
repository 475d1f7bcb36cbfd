"""The registered models served together: loaded from MLflow at an alias, checked, immutable.

`load_model_set(settings)` resolves each family's alias to a version, loads that exact version
(so a set reports precisely what it serves even if an alias moves meanwhile) and checks that
the families agree on their dataset profile. The API swaps a whole `ModelSet` in with one
assignment; batch scoring and the dashboard read one the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from opm_ml import mlflow_access
from opm_ml.forecasting.families import FAMILY_NAMES, family
from opm_ml.forecasting.model import FamilyModel
from opm_ml.manifest import FeatureManifest
from opm_ml.mlflow_access import ACTIVITY_DURATION, activity_model_name
from opm_ml.schedule.served import ServedActivityModel, activity_version, load_activity_model
from opm_ml.settings import Settings
from opm_ml.signing import ModelRefused
from opm_ml.text import first_line


class ModelUnavailable(LookupError):
    """A family's model is not served (not in the registry, or not loaded yet): `reason` why.

    The reason names registry entries, never paths or hosts: it is shown to API clients.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def public(self) -> str:
        return self.reason


class ContractOnly(LookupError):
    """A view built on the contract's fields (the sample history, the example candidates) asked of
    models trained on an organisation's own profile: `reason` says which and what to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ModelLoadError(RuntimeError):
    """A registered version that cannot be served (missing or corrupt files, wrong family,
    families trained on different profiles, not signed with the deployment's key).

    `public` is the part safe to show anyone: which model and why, without the cause's text
    (which may hold file paths or a tracking URI).
    """

    def __init__(self, message: str, public: str | None = None):
        super().__init__(message)
        self.public = message if public is None else public


@dataclass(frozen=True)
class ServedModel:
    """One loaded model with what /v1/models reports about it."""

    family: str
    name: str
    version: str
    alias: str
    model: FamilyModel
    trained_at: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage_digest: str | None = None
    datasets: tuple[dict[str, str], ...] = ()
    run_id: str | None = None

    @property
    def slug(self) -> str:
        return family(self.family).slug

    def ref(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "alias": self.alias}


@dataclass(frozen=True)
class ModelSet:
    """The models served together; replaced as a whole, never edited in place.

    `models`: family name -> model, in registry order; `missing`: family -> why not served.
    """

    models: Mapping[str, ServedModel]
    missing: Mapping[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # The schedule's activity-duration model (optional: schedules fall back to the template),
    # why it is not served, and the version its alias pointed to when the set was loaded.
    activity: ServedActivityModel | None = None
    activity_reason: str = "the activity-duration model was not asked for"
    activity_seen: str | None = None

    @property
    def manifest(self) -> FeatureManifest:
        """The manifest requests are read with (the families share their profile)."""
        return next(iter(self.models.values())).model.manifest

    def versions(self) -> dict[str, str]:
        """Family slug -> served version."""
        return {m.slug: m.version for m in self.models.values()}

    def registry_state(self) -> dict[str, str]:
        """What the registry's aliases pointed to when this set was loaded: family slug ->
        version, plus the activity-duration model's (the poller reloads when they move)."""
        seen = {ACTIVITY_DURATION: self.activity_seen} if self.activity_seen else {}
        return {**self.versions(), **seen}

    def model(self, name: str) -> ServedModel:
        """The family's model (by name or slug), or ModelUnavailable naming why it is missing."""
        spec = family(name)
        if spec.name not in self.models:
            manifest = self.manifest
            why = self.missing.get(spec.name) or (
                f"profile {manifest.profile} has no {spec.name} model (it does not map both "
                f"{spec.planned} and {spec.actual})")
            raise ModelUnavailable(f"no {spec.slug} model is served: {why}")
        return self.models[spec.name]

    def require_all(self) -> None:
        """ModelUnavailable naming every missing model, unless every family is served."""
        if self.missing:
            raise ModelUnavailable(f"not every model is served: {self.missing_text()}")

    def require_contract(self, what: str, instead: str = "") -> None:
        """ContractOnly unless the served models read the built-in contract: `what` needs its
        fields; `instead` is what a user of a profile can do."""
        profile = self.manifest.profile
        if profile != "contract":
            raise ContractOnly(f"{what} uses the contract's fields, and the served models read "
                               f"the {profile!r} profile" + (f"; {instead}" if instead else ""))

    def family_models(self) -> dict[str, FamilyModel]:
        return {name: m.model for name, m in self.models.items()}

    def refs(self) -> dict[str, dict[str, str]]:
        return {m.slug: m.ref() for m in self.models.values()}

    def missing_text(self) -> str:
        return "; ".join(f"{family(name).slug} ({why})" for name, why in self.missing.items())


def load_model_set(settings: Settings, families: Iterable[str] | None = None,
                   activity: bool = False) -> ModelSet:
    """The families' models at `settings.serve_alias`, for those in the registry.

    `families` (e.g. `["delay"]`) loads only those; `activity` also loads the schedule's
    activity-duration model when registered (never failing the set: without it, schedules
    run on the template and the set says why). Raises LookupError naming them when no family
    model is there, ModelLoadError naming a version that cannot be served (or is not signed
    with `settings.model_signing_key`, when set), and whatever the registry raises when it
    cannot be read.
    """
    mlflow_access.require_tracking_folder(settings.mlflow_tracking_uri)
    client = mlflow_access.client(settings)
    alias = settings.serve_alias
    models, missing = {}, {}
    for name in (FAMILY_NAMES if families is None else [family(f).name for f in families]):
        registered = mlflow_access.registered_name(name, settings)
        version, reason = mlflow_access.served_version(client, registered, alias)
        if version is None:
            missing[name] = reason
            continue
        try:
            model = mlflow_access.load_family_model(client, registered, version.version,
                                                    settings.mlflow_tracking_uri,
                                                    settings.signing_key())
        except ModelRefused as exc:
            raise ModelLoadError(str(exc), public=str(exc)) from None
        except Exception as exc:  # missing or corrupt artifacts: say which model, keep the cause
            what = f"{registered} v{version.version} ({name}) cannot be loaded"
            raise ModelLoadError(f"{what}: {first_line(exc)}", public=what) from exc
        if not isinstance(model, FamilyModel) or model.family != name:
            raise ModelLoadError(f"{registered} v{version.version} is not a {name} model of "
                                 "this opm-ml version (retrain it: opm-ml train)")
        run = client.get_run(version.run_id) if version.run_id else None
        datasets = _datasets(run)
        models[name] = ServedModel(
            family=name, name=registered, version=str(version.version), alias=alias,
            model=model,
            trained_at=_iso(run.info.end_time or run.info.start_time) if run else None,
            metrics=dict(run.data.metrics) if run else {},
            lineage_digest=_digest(datasets) if datasets else None,
            datasets=tuple(datasets), run_id=version.run_id,
        )
    if not models:
        raise ModelUnavailable("none of the models is in the registry: "
                               + "; ".join(missing.values()))
    check_profiles(models)
    # A family the profile cannot train is not missing: it does not exist for this profile.
    trainable = next(iter(models.values())).model.manifest.families
    extra = _activity(settings, client) if activity else {}
    return ModelSet(models, {f: why for f, why in missing.items() if f in trainable}, **extra)


def _activity(settings: Settings, client) -> dict:
    """The activity-duration fields of a `ModelSet` (the model, or why not, and its version)."""
    seen = activity_version(settings, client)
    served, reason = load_activity_model(settings, client) if seen else (
        None, f"{activity_model_name(settings)}@{settings.serve_alias} is not in the registry "
              "(train one: opm-ml schedule train)")
    return {"activity": served, "activity_reason": reason, "activity_seen": seen}


def check_profiles(models: Mapping[str, ServedModel]) -> None:
    """ModelLoadError unless every model was trained on the same profile (name and digest)."""
    seen = {(m.model.manifest.profile, m.model.manifest.profile_digest): m
            for m in models.values()}
    if len(seen) > 1:
        described = "; ".join(f"{m.name} v{m.version} on profile {p} ({d})"
                              for (p, d), m in seen.items())
        raise ModelLoadError("the models were trained on different dataset profiles, so one "
                             f"request cannot serve them all: {described}; retrain the others "
                             "on the same profile")


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
