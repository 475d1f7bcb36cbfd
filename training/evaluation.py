"""Held-out evaluation: model metrics, the baselines' metrics and the beat-the-baseline checks.

Accuracy is measured on the family's quantity in natural units (days, currency, hours): MAE and
MAPE of the P50. Pinball loss is the mean over P10/P50/P90 in log-ratio space. Coverage per
level is the share of outcomes at or below that quantile (ideal: 0.1/0.5/0.9) and `coverage_80`
the share inside P10-P90 (ideal 0.8). The late classifier: AUC, Brier score, expected calibration
error (10 equal-width bins). In flight every number is also given per progress point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from opm_ml.forecasting import FamilyModel, family
from opm_ml.forecasting.families import LEVELS
from training.baselines import (
    LogLinearBaseline,
    ReferenceClassBaseline,
    evm_forecasts,
    evm_late_flag,
)

QUANTILE_LEVELS = (0.1, 0.5, 0.9)


@dataclass
class Check:
    """One model-vs-baseline comparison (lower is better for every metric compared)."""

    name: str
    metric: str
    model: float
    baseline: float

    @property
    def passed(self) -> bool:
        return bool(self.model < self.baseline)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    checks: list[Check]
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def beats_baselines(self) -> bool:
        return all(c.passed for c in self.checks)


def mape(actual: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - actual) / actual) * 100)


def pinball(actual: np.ndarray, q: np.ndarray, levels=QUANTILE_LEVELS) -> float:
    """Mean pinball loss over the levels, in log space (log actual vs log quantile)."""
    diff = np.log(actual)[:, None] - np.log(q)
    lv = np.asarray(levels)[None, :]
    return float(np.mean(np.maximum(lv * diff, (lv - 1) * diff)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    which = np.minimum((p * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, p, bins) - np.bincount(which, y, bins))
    return float(gap.sum() / max(count.sum(), 1))


def quantity_metrics(actual: np.ndarray, q: np.ndarray) -> dict[str, float]:
    """Metrics of P10/P50/P90 forecasts `q` (n, 3) of `actual`, in natural units."""
    return {
        "mae": float(np.mean(np.abs(q[:, 1] - actual))),
        "mape": mape(actual, q[:, 1]),
        "pinball": pinball(actual, q),
        "coverage_p10": float(np.mean(actual <= q[:, 0])),
        "coverage_p50": float(np.mean(actual <= q[:, 1])),
        "coverage_p90": float(np.mean(actual <= q[:, 2])),
        "coverage_80": float(np.mean((actual >= q[:, 0]) & (actual <= q[:, 2]))),
    }


def late_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    both = len(np.unique(y)) == 2
    return {"auc": float(roc_auc_score(y, p)) if both else float("nan"),
            "brier": float(brier_score_loss(y, p)),
            "ece": expected_calibration_error(y, p)}


def score_predictions(name: str, output: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Metrics of a family's predictions (`ForecastBatch.to_frame()`) against outcomes."""
    spec = family(name)
    actual = truth[spec.actual].to_numpy(float)
    q = output[[f"{spec.quantity}_{lv}" for lv in LEVELS]].to_numpy(float)
    metrics = quantity_metrics(actual, q)
    if "probability_late" in output.columns and "late" in truth.columns:
        metrics |= late_metrics(truth["late"].to_numpy(int),
                                output["probability_late"].to_numpy(float))
    roles = [c[len("actual_share_"):] for c in truth.columns if c.startswith("actual_share_")]
    if roles and f"effort_{roles[0]}_hours_p10" in output.columns:
        shares = truth[[f"actual_share_{r}" for r in roles]].to_numpy(float)
        inside = [(actual * shares[:, i] >= output[f"effort_{r}_hours_p10"].to_numpy(float))
                  & (actual * shares[:, i] <= output[f"effort_{r}_hours_p90"].to_numpy(float))
                  for i, r in enumerate(roles)]
        metrics |= {f"coverage_80_{r}": float(np.mean(v)) for r, v in zip(roles, inside)}
    return metrics


def heldout_frame(intake_test: pd.DataFrame, inflight_test: pd.DataFrame) -> pd.DataFrame:
    """Held-out intake and in-flight rows in one frame (the promotion gate's test set)."""
    return pd.concat([intake_test, inflight_test], ignore_index=True)


def evaluate_family(model: FamilyModel, spec, data) -> Evaluation:
    """All held-out metrics of one family, its baselines' and the beat-the-baseline checks."""
    name, metrics, checks = model.family, {}, []
    spec_f = family(name)
    qty, actual_col = spec_f.quantity, spec_f.actual

    intake = data.intake.test
    out = model.predict(intake, shap=False).to_frame(shap=False)
    metrics |= _prefixed("intake", score_predictions(name, out, intake))
    actual = intake[actual_col].to_numpy(float)
    group = model.manifest.reference_class
    for base_name, baseline in (("loglinear", LogLinearBaseline(name)),
                                ("refclass", ReferenceClassBaseline(name, group))):
        baseline.fit(data.intake.train)
        pred = baseline.predict(intake)
        metrics[f"intake/baseline_{base_name}/mape"] = mape(actual, pred)
        metrics[f"intake/baseline_{base_name}/mae"] = float(np.mean(np.abs(pred - actual)))
        checks.append(Check(f"intake vs {base_name}", "mape", metrics["intake/mape"],
                            metrics[f"intake/baseline_{base_name}/mape"]))
        if spec.classifier and base_name == "refclass":
            base = late_metrics(intake["late"].to_numpy(int), baseline.predict_late(intake))
            metrics |= _prefixed("intake/baseline_refclass", base)
            checks.append(Check("intake P(late) vs refclass", "brier", metrics["intake/brier"],
                                base["brier"]))
    predictions = {"intake": out}

    inflight = data.inflight.test
    if len(inflight):
        out = model.predict(inflight, shap=False).to_frame(shap=False)
        predictions["inflight"] = out
        metrics |= _prefixed("inflight", score_predictions(name, out, inflight))
        evm = evm_forecasts(name, inflight) if model.manifest.evm else pd.DataFrame(
            index=inflight.index)
        flag = (evm_late_flag(inflight, spec.late_threshold)
                if spec.classifier and model.manifest.evm else None)
        for point in spec.progress_points:
            at = (inflight["progress_point"] == point).to_numpy()
            if not at.any():
                continue
            tag = f"inflight_p{point:g}"
            metrics |= _prefixed(tag, score_predictions(name, out[at], inflight[at]))
            metrics[f"{tag}/n"] = float(at.sum())
            actual = inflight.loc[at, actual_col].to_numpy(float)
            pred = out.loc[at, f"{qty}_p50"].to_numpy(float)
            for base_name in evm.columns:
                base = evm.loc[at, base_name].to_numpy(float)
                ok = ~np.isnan(base)  # compare on rows where the index forecast exists
                metrics[f"{tag}/baseline_{base_name}/mape"] = mape(actual[ok], base[ok])
                checks.append(Check(f"in flight {point:g}% vs {base_name}", "mape",
                                    mape(actual[ok], pred[ok]), mape(actual[ok], base[ok])))
            if flag is not None:
                ok = ~np.isnan(flag[at])
                y = inflight.loc[at, "late"].to_numpy(int)[ok]
                base_brier = float(brier_score_loss(y, flag[at][ok]))
                metrics[f"{tag}/baseline_evm_flag/brier"] = base_brier
                p = out.loc[at, "probability_late"].to_numpy(float)[ok]
                checks.append(Check(f"in flight {point:g}% P(late) vs EVM flag", "brier",
                                    float(brier_score_loss(y, p)), base_brier))

    # Rows are scored independently, so the two parts together are the held-out frame's output.
    both = heldout_frame(data.intake.test, data.inflight.test)
    out = pd.concat(list(predictions.values()), ignore_index=True)
    metrics |= _prefixed("heldout", score_predictions(name, out, both))
    return Evaluation(metrics, checks, predictions)


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in values.items()}
