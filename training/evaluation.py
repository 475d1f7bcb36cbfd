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

from opm_ml.contract import INTAKE_COLUMNS, ROLES
from opm_ml.features import STATUS_INPUT_COLUMNS
from training.baselines import LogLinearBaseline, ReferenceClassBaseline, evm_forecasts, evm_late_flag
from training.family import LEVELS, QUANTITIES, FamilyModel

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


def score_predictions(family: str, output: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Metrics of a family's `predict` output (ours or a loaded champion's) against outcomes."""
    _, qty, actual_col = QUANTITIES[family]
    actual = truth[actual_col].to_numpy(float)
    q = output[[f"{qty}_{lv}" for lv in LEVELS]].to_numpy(float)
    metrics = quantity_metrics(actual, q)
    if family == "delay":
        metrics |= late_metrics(truth["late"].to_numpy(int),
                                output["probability_late"].to_numpy(float))
    if family == "resource":
        shares = truth[[f"actual_share_{r}" for r in ROLES]].to_numpy(float)
        inside = [(actual * shares[:, i] >= output[f"effort_{r}_hours_p10"].to_numpy(float))
                  & (actual * shares[:, i] <= output[f"effort_{r}_hours_p90"].to_numpy(float))
                  for i, r in enumerate(ROLES)]
        metrics |= {f"coverage_80_{r}": float(np.mean(v)) for r, v in zip(ROLES, inside)}
    return metrics


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The raw columns a served model receives: intake columns plus any status columns."""
    cols = [*INTAKE_COLUMNS, *(c for c in STATUS_INPUT_COLUMNS if c in frame.columns)]
    return frame[cols].reset_index(drop=True)


def heldout_frame(intake_test: pd.DataFrame, inflight_test: pd.DataFrame) -> pd.DataFrame:
    """Held-out intake and in-flight rows in one frame (the promotion gate's test set)."""
    return pd.concat([intake_test, inflight_test], ignore_index=True)


def evaluate_family(model: FamilyModel, spec, data) -> Evaluation:
    """All held-out metrics of one family, its baselines' and the beat-the-baseline checks."""
    family, metrics, checks = model.family, {}, []
    planned_col, qty, actual_col = QUANTITIES[family]

    intake = data.intake.test
    out = model.predict(intake, shap=False)
    metrics |= _prefixed("intake", score_predictions(family, out, intake))
    actual = intake[actual_col].to_numpy(float)
    for name, baseline in (("loglinear", LogLinearBaseline(family)),
                           ("refclass", ReferenceClassBaseline(family, spec.late_threshold))):
        baseline.fit(data.intake.train)
        pred = baseline.predict(intake)
        metrics[f"intake/baseline_{name}/mape"] = mape(actual, pred)
        metrics[f"intake/baseline_{name}/mae"] = float(np.mean(np.abs(pred - actual)))
        checks.append(Check(f"intake vs {name}", "mape", metrics["intake/mape"],
                            metrics[f"intake/baseline_{name}/mape"]))
        if family == "delay" and name == "refclass":
            base = late_metrics(intake["late"].to_numpy(int), baseline.predict_late(intake))
            metrics |= _prefixed("intake/baseline_refclass", base)
            checks.append(Check("intake P(late) vs refclass", "brier", metrics["intake/brier"],
                                base["brier"]))
    predictions = {"intake": out}

    inflight = data.inflight.test
    if len(inflight):
        out = model.predict(inflight, shap=False)
        predictions["inflight"] = out
        metrics |= _prefixed("inflight", score_predictions(family, out, inflight))
        evm = evm_forecasts(family, inflight)
        flag = evm_late_flag(inflight, spec.late_threshold) if family == "delay" else None
        for point in spec.progress_points:
            at = (inflight["progress_point"] == point).to_numpy()
            if not at.any():
                continue
            tag = f"inflight_p{point:g}"
            metrics |= _prefixed(tag, score_predictions(family, out[at], inflight[at]))
            metrics[f"{tag}/n"] = float(at.sum())
            actual = inflight.loc[at, actual_col].to_numpy(float)
            pred = out.loc[at, f"{qty}_p50"].to_numpy(float)
            for name in evm.columns:
                base = evm.loc[at, name].to_numpy(float)
                ok = ~np.isnan(base)  # compare on rows where the index forecast exists
                metrics[f"{tag}/baseline_{name}/mape"] = mape(actual[ok], base[ok])
                checks.append(Check(f"in flight {point:g}% vs {name}", "mape",
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
    metrics |= _prefixed("heldout", score_predictions(family, out, both))
    return Evaluation(metrics, checks, predictions)


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in values.items()}
