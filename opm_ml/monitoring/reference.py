"""The champion's reference profile: its training features and held-out forecasts, summarised.

Built once at training time (`build_reference`) and carried by the fitted `FamilyModel`
(`model.reference`, pickled with it and logged as `reference_profile.json`), so whoever serves
a version can measure drift against exactly the rows that version learned from, without a
round trip to MLflow. Predictions are kept as P50 / planned (scale-free) and P(late).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.monitoring.distribution import Distribution, describe

RATIO = "p50_ratio"  # forecast P50 / planned value
LATE = "probability_late"


@dataclass(frozen=True)
class ReferenceProfile:
    """Per stage: each model feature's training distribution and the held-out forecasts'."""

    features: Mapping[str, Mapping[str, Distribution]]  # stage -> feature -> distribution
    predictions: Mapping[str, Mapping[str, Distribution]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {part: {stage: {name: d.to_dict() for name, d in items.items()}
                       for stage, items in getattr(self, part).items()}
                for part in ("features", "predictions")}

    @classmethod
    def from_dict(cls, data: dict) -> ReferenceProfile:
        return cls(**{part: {stage: {name: Distribution.from_dict(d) for name, d in items.items()}
                             for stage, items in data.get(part, {}).items()}
                      for part in ("features", "predictions")})


def build_reference(model, train: Mapping[str, pd.DataFrame],
                    heldout: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]) -> ReferenceProfile:
    """The profile of a fitted `FamilyModel`.

    `train`: stage -> the raw rows its estimator was fitted on; `heldout`: stage -> (the raw
    held-out rows, their `ForecastBatch.to_frame()` output), for the prediction distribution.
    """
    manifest, spec = model.manifest, model.spec
    features = {}
    for stage, frame in train.items():
        if stage not in model.stages or frame.empty:
            continue
        values = ProjectInputs.from_frame(frame, manifest).features(stage, manifest)
        features[stage] = {
            name: describe(values[name], manifest.kind(name), manifest.categories.get(name, ()))
            for name in model.stage_features(stage)}
    predictions = {}
    for stage, (rows, output) in heldout.items():
        if rows.empty:
            continue
        ratio = output[f"{spec.quantity}_p50"].to_numpy(float) / rows[spec.planned].to_numpy(float)
        predictions[stage] = {RATIO: describe(ratio, "number")}
        if LATE in output.columns:
            predictions[stage][LATE] = describe(output[LATE].to_numpy(float), "number")
    return ReferenceProfile(features, predictions)


def stage_values(frame: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """Columns of a logged-features frame as float arrays (NaN where a feature is absent)."""
    return {name: (frame[name].to_numpy(dtype=float, na_value=np.nan) if name in frame.columns
                   else np.full(len(frame), np.nan)) for name in names}
