"""A fitted model family: its intake and in-flight estimators and the one way to predict.

`FamilyModel.predict(inputs)` routes each row to its stage (a row with a complete status
snapshot goes to the in-flight estimator, any other to the intake one), predicts the
family's P10/P50/P90, its extras and the SHAP values, and returns a `ForecastBatch`, which
writes itself as a DataFrame (the MLflow pyfunc, batch scoring) or as JSON (the API). The MLflow
pyfunc, the API, batch scoring, intake scoring, the dashboard and training's evaluation all go
through `predict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from opm_ml.forecasting.estimators import StageEstimator
from opm_ml.forecasting.families import STAGES, Family, family
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.forecasting.result import ForecastBatch, StageShap, family_info
from opm_ml.forecasting.role_profile import RoleProfile
from opm_ml.manifest import FeatureManifest


@dataclass
class FamilyModel:
    """Fitted estimators of one family per stage, and the manifest of what they read.

    `notes`: what training decided about the data (e.g. features dropped as mostly missing).
    `reference`: the training-feature profile drift is measured against
    (`opm_ml.monitoring.reference.ReferenceProfile`; None for models trained before it).
    `intake_reference`: a dataset profile's resource model keeps its history's past projects,
    what intake scoring's percentile scales compare with (`opm_ml.intake.past_projects`).
    """

    family: str
    manifest: FeatureManifest
    stages: dict[str, StageEstimator]
    late_threshold: float | None = None
    role_profile: RoleProfile | None = None
    notes: tuple[str, ...] = field(default=())
    reference: object | None = None
    intake_reference: object | None = None

    @property
    def spec(self) -> Family:
        """The family's registry entry (name, quantity, unit, planned column ...)."""
        return family(self.family)

    @property
    def target(self) -> str:
        return self.spec.target

    def stage_features(self, stage: str) -> list[str]:
        """The columns of `stage`'s feature matrix, in order."""
        return list(self.stages[stage].feature_names_)

    @cached_property  # fixed once fitted; a one-project prediction asked for it per call
    def feature_names(self) -> list[str]:
        """Union of the stages' features, intake first (the SHAP column order of frames)."""
        names: list[str] = []
        for stage in self.stages:
            names += [f for f in self.stage_features(stage) if f not in names]
        return names

    @cached_property
    def outputs(self):
        """What `predict` returns besides the quantity's P10/P50/P90 (see `Family.outputs`)."""
        any_stage = next(iter(self.stages.values()))
        return self.spec.outputs(
            has_roles=any_stage.shares_ is not None,
            has_profile=self.role_profile is not None,
            has_dates=self.manifest.has("start_date"),
            has_late=any_stage.classifier_ is not None,
        )

    def info(self) -> dict:
        """What every forecast of this model shares (`result.family_info`)."""
        return family_info(self.spec, self.outputs, self.late_threshold)

    def predict(self, inputs: ProjectInputs | pd.DataFrame, shap: bool = True) -> ForecastBatch:
        """Forecasts for every row of `inputs` (a frame of raw columns or `ProjectInputs`);
        a row without the family's planned value gets none (its stage is None)."""
        if isinstance(inputs, pd.DataFrame):
            inputs = ProjectInputs.from_frame(inputs, self.manifest)
        spec, n = self.spec, inputs.n
        outputs = self.outputs
        values = {o.name: _empty(o.kind, n, len(self.manifest.roles)) for o in outputs
                  if o.kind not in ("constant", "profile")}
        stage_of = np.full(n, None, dtype=object)
        shap_parts, late_parts = [], []
        lacking = inputs.lacking(spec.planned)  # no planned value: nothing to scale, no forecast
        for stage in STAGES:
            rows = inputs.rows_of(stage)
            if not len(rows) or stage not in self.stages:  # (one project has one stage)
                continue
            keep = ~lacking[rows]
            rows = rows[keep]
            if not len(rows):
                continue
            estimator = self.stages[stage]
            names = estimator.feature_names_
            X = inputs.matrix(stage, self.manifest, names)
            X = X if keep.all() else X[keep]
            out = estimator.predict_arrays(X, shap)
            planned = inputs.columns[spec.planned][rows]
            quantiles = planned[:, None] * np.exp(out["log_quantiles"])
            start = inputs.columns["start_date"][rows] if "start_date" in inputs.columns else None
            stage_values = {spec.quantity: quantiles,
                            **spec.extras(quantiles, planned, out, start)}
            for name, array in stage_values.items():
                if name in values:
                    values[name][rows] = array
            stage_of[rows] = stage
            if shap:
                shap_parts.append(StageShap(stage, rows, out["shap"], X, names))
                if estimator.classifier_ is not None:
                    late_parts.append(StageShap(stage, rows, None, X, names,
                                                estimator.classifier_.contributions))
        profiles = None
        if any(o.kind == "profile" for o in outputs):
            profiles = self._profiles(inputs, values["effort_by_role"])
        return ForecastBatch(spec, outputs, inputs, stage_of, values, shap_parts, late_parts,
                             self.feature_names, self.late_threshold, self.manifest.roles,
                             profiles)

    def _profiles(self, inputs: ProjectInputs, role_hours: np.ndarray) -> list[dict]:
        """Each role's P50 hours spread over the planned months (by reference class)."""
        group = self.manifest.reference_class
        groups = (inputs.columns[group] if group in inputs.columns
                  else np.full(inputs.n, None, dtype=object))
        return self.role_profile.monthly_hours(groups, inputs.columns["planned_duration_days"],
                                               role_hours[:, :, 1])


def _empty(kind: str, n: int, roles: int) -> np.ndarray:
    if kind == "levels":
        return np.full((n, 3), np.nan)
    if kind == "scalar":
        return np.full(n, np.nan)
    if kind == "dates":
        return np.full((n, 3), np.datetime64("NaT"), dtype="datetime64[D]")
    if kind == "role_levels":
        return np.full((n, roles, 3), np.nan)
    raise ValueError(f"unknown output kind {kind!r}")
