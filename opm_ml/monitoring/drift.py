"""Drift: logged forecasts' features and predictions against the champion's reference profile.

Per stage and feature: PSI (binned numbers and categories) and, for numbers, the KS statistic;
a feature drifts when either reaches the spec's threshold, judged once the stage has
`min_requests` logged forecasts. Predictions: the P50 / planned ratio (and P(late)) of the
champion's own recent forecasts against its forecasts of the held-out projects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_ml.monitoring.distribution import compare
from opm_ml.monitoring.reference import LATE, RATIO, ReferenceProfile, stage_values
from opm_ml.monitoring.thresholds import Thresholds


def feature_drift(reference: ReferenceProfile, logged: dict[str, pd.DataFrame],
                  thresholds: Thresholds) -> list[dict]:
    """One row per (stage, feature) of the reference: n, psi, ks, missing, drifted."""
    rows = []
    for stage, features in reference.features.items():
        frame = logged.get(stage, pd.DataFrame())
        values = stage_values(frame, list(features))
        for name, ref in features.items():
            rows.append({"stage": stage, "feature": name, "kind": ref.kind,
                         **_judged(compare(ref, values[name]), thresholds.psi, thresholds.ks,
                                   thresholds.min_requests)})
    return rows


def prediction_drift(reference: ReferenceProfile, forecasts: pd.DataFrame,
                     thresholds: Thresholds) -> list[dict]:
    """One row per (stage, output): the champion's recent forecasts vs its held-out ones."""
    rows = []
    for stage, outputs in reference.predictions.items():
        mine = forecasts[forecasts["stage"] == stage] if len(forecasts) else forecasts
        values = {RATIO: np.empty(0), LATE: np.empty(0)}
        if len(mine):
            values[RATIO] = (mine["p50"].to_numpy(float) / mine["planned"].to_numpy(float))
            values[LATE] = mine["probability_late"].to_numpy(dtype=float, na_value=np.nan)
        for output, ref in outputs.items():
            rows.append({"stage": stage, "output": output,
                         **_judged(compare(ref, values[output]), thresholds.prediction_psi,
                                   None, thresholds.min_requests)})
    return rows


def _judged(result: dict, psi: float, ks: float | None, min_n: int) -> dict:
    judged = result["n"] >= min_n
    hit = (result["psi"] or 0.0) >= psi or (ks is not None and (result["ks"] or 0.0) >= ks)
    return {**result, "judged": judged, "drifted": bool(judged and hit)}


def drifted_features(rows: list[dict]) -> list[dict]:
    """The drifted rows, the largest PSI first, one per feature (its worst stage)."""
    worst: dict[str, dict] = {}
    for row in rows:
        if row["drifted"] and row["psi"] > worst.get(row["feature"], {"psi": -1})["psi"]:
            worst[row["feature"]] = row
    return sorted(worst.values(), key=lambda r: -r["psi"])


def summary_rows(per_family: dict[str, list[dict]]) -> list[dict]:
    """One row per (stage, feature) over the families (each measured on its own reference;
    families trained on the same rows give the same figures), with the families using it."""
    merged: dict[tuple[str, str], dict] = {}
    for family, rows in per_family.items():
        for row in rows:
            key = (row["stage"], row["feature"])
            if key not in merged or (row["psi"] or 0.0) > (merged[key]["psi"] or 0.0):
                merged[key] = {**row, "families": merged.get(key, {}).get("families", [])}
            merged[key]["families"] = [*merged[key]["families"], family]
    return sorted(merged.values(), key=lambda r: (r["stage"], -(r["psi"] or 0.0)))
