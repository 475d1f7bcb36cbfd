"""Score validated rows: each chosen family's forecasts and SHAP values, plus the OPM metrics.

Models come from the registry at the serving alias (`opm_ml.model_set.load_model_set`, the
API's own loader), once per run; the loaded `FamilyModel`s are plain picklable objects, so a
Dask run ships them to each worker once. The output is `Assessment.to_frame()`: per family
its `ForecastBatch.to_frame()` columns prefixed `<family>__` (SHAP values as columns,
`<family>__shap__<feature>`, one row per project: docs/formats.md), then the OPM metrics of
in-flight rows as `evm__<metric>` (null at intake).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from opm_ml import heap
from opm_ml.forecasting import FAMILY_NAMES, FamilyModel
from opm_ml.forecasting.assessment import EVM_PREFIX, assess
from opm_ml.forecasting.families import check_families
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.manifest import FeatureManifest
from opm_ml.text import first_line

# How long a chunk waits for room in the prediction log while its database takes writes.
LOG_WAIT_SECONDS = 120.0
__all__ = ["EVM_PREFIX", "ModelsUnavailable", "ScoringModels", "load_models", "score_frame"]


class ModelsUnavailable(LookupError):
    """A chosen family has no model at the alias, or the registry cannot be read."""


@dataclass(frozen=True)
class ScoringModels:
    """The fitted family models a run scores with, and what the registry calls them."""

    models: dict[str, FamilyModel]  # family -> model, in registry order
    versions: dict[str, str]  # family -> "opm-delay v3 (champion)"
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)  # family -> (name, version)

    @property
    def manifest(self) -> FeatureManifest:
        return next(iter(self.models.values())).manifest


def load_models(settings, families: list[str] | None) -> ScoringModels:
    """Load the chosen families at `settings.serve_alias` (None: every family of the served
    profile); ModelsUnavailable names any missing.

    Only those families are loaded, so a broken model of another family does not stop a run.
    """
    from opm_ml.model_set import load_model_set

    families = check_families(families) if families is not None else None
    try:
        model_set = load_model_set(settings, families)
    except Exception as exc:  # no models at all, unreadable artifacts, registry outage
        raise ModelsUnavailable(f"cannot load the {settings.serve_alias} models from "
                                f"{settings.mlflow_tracking_uri}: {first_line(exc, typed=False)}"
                                ) from exc
    if families is None:
        families = list(model_set.models) + list(model_set.missing)
    missing = [model_set.missing.get(f, f"{f} is not a family of the served profile")
               for f in families if f not in model_set.models]
    if missing:
        raise ModelsUnavailable("; ".join(missing) + " (train it first: opm-ml train)")
    served = {f: model_set.models[f] for f in FAMILY_NAMES if f in families}
    if settings.freeze_models:
        heap.settle()  # models out of the full collections a long scoring run triggers
    return ScoringModels(
        {f: m.model for f, m in served.items()},
        {f: f"{m.name} v{m.version} ({m.alias})" for f, m in served.items()},
        {f: (m.name, m.version) for f, m in served.items()},
    )


def score_frame(valid: pd.DataFrame, models: ScoringModels, shap: bool = True,
                log=None, late_shap: bool = False) -> pd.DataFrame:
    """Output rows for validated rows (`inputs.validate_rows`), in their order; each forecast
    also goes to `log` (an `opm_ml.monitoring.log.PredictionLog`) when given. `late_shap` adds
    the late classifier's SHAP values (a fourth TreeSHAP pass, about a quarter more time)."""
    inputs = ProjectInputs.from_frame(valid, models.manifest)
    assessment = assess(models.models, inputs, shap)
    if log is not None:
        log.record("score", inputs, assessment.forecasts, models.refs, block=LOG_WAIT_SECONDS)
    return assessment.to_frame(shap, late_shap)
