"""Held-out evaluation: model metrics, the baselines' metrics and the beat-the-baseline checks.

Accuracy is measured on the family's quantity in natural units (days, currency, hours): MAE and
MAPE of the P50. Pinball loss is the mean over P10/P50/P90 in log-ratio space. Coverage per
level is the share of outcomes at or below that quantile (ideal: 0.1/0.5/0.9) and `coverage_80`
the share inside P10-P90 (ideal 0.8). The late classifier: AUC, Brier score, expected calibration
error (10 equal-width bins). In flight every number is also given per progress point.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from opm_ml.features import build_features
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
    """One model-vs-baseline comparison (lower is better for every metric compared).

    `beats`: the model's metric is lower. `passed`: it beats the baseline, or with `tolerant`
    (a profile's "noise" gate) it is not worse beyond the noise of the held-out slice: with
    the per-row errors of both, a paired bootstrap of the mean difference (95 %, seeded) must
    not put the model above the baseline; on tens of projects a small loss is noise.
    """

    name: str
    metric: str
    model: float
    baseline: float
    model_errors: np.ndarray | None = field(default=None, repr=False)
    baseline_errors: np.ndarray | None = field(default=None, repr=False)
    gate: bool = True  # False: reported only, not a reason to refuse the model
    tolerant: bool = False  # passed when within noise of the baseline (see above)

    @property
    def beats(self) -> bool:
        return bool(self.model < self.baseline)

    @property
    def passed(self) -> bool:
        if self.beats or not self.tolerant or self.model_errors is None:
            return self.beats
        return not worse_beyond_noise(self.model_errors, self.baseline_errors)


def worse_beyond_noise(model: np.ndarray, baseline: np.ndarray, resamples: int = 2000,
                       level: float = 0.95) -> bool:
    """Whether the model's mean per-row error exceeds the baseline's in `level` of paired
    bootstrap resamples of the rows."""
    diff = np.asarray(model, float) - np.asarray(baseline, float)
    diff = diff[np.isfinite(diff)]
    if len(diff) < 2:
        return bool(diff.sum() > 0)
    rows = np.random.default_rng(0).integers(0, len(diff), (resamples, len(diff)))
    return bool(np.quantile(diff[rows].mean(axis=1), 1 - level) > 0)


def ape(actual: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Absolute percentage error per row (MAPE is its mean)."""
    return np.abs(pred - actual) / actual * 100


def point_errors(metric: str, actual: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-row errors of point forecasts under `metric` (mape: percentage, mae: units)."""
    return ape(actual, pred) if metric == "mape" else np.abs(pred - actual)


@dataclass
class Evaluation:
    metrics: dict[str, float]
    checks: list[Check]
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def beats_baselines(self) -> bool:
        return all(c.passed for c in self.checks if c.gate)


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
    metric = model.manifest.metric  # what the baselines are held to
    group = model.manifest.reference_class
    for base_name, baseline in (("loglinear", LogLinearBaseline(name)),
                                ("refclass", ReferenceClassBaseline(name, group))):
        baseline.fit(data.intake.train)
        pred = baseline.predict(intake)
        metrics[f"intake/baseline_{base_name}/mape"] = mape(actual, pred)
        metrics[f"intake/baseline_{base_name}/mae"] = float(np.mean(np.abs(pred - actual)))
        p50 = out[f"{qty}_p50"].to_numpy(float)
        checks.append(Check(f"intake vs {base_name}", metric, metrics[f"intake/{metric}"],
                            metrics[f"intake/baseline_{base_name}/{metric}"],
                            point_errors(metric, actual, p50), point_errors(metric, actual, pred)))
        if spec.classifier and base_name == "refclass":
            y, base_p = intake["late"].to_numpy(int), baseline.predict_late(intake)
            base = late_metrics(y, base_p)
            metrics |= _prefixed("intake/baseline_refclass", base)
            p = out["probability_late"].to_numpy(float)
            checks.append(Check("intake P(late) vs refclass", "brier", metrics["intake/brier"],
                                base["brier"], (p - y) ** 2, (base_p - y) ** 2))
    predictions = {"intake": out}

    inflight = data.inflight.test
    if len(inflight) and "inflight" in model.stages:
        out = model.predict(inflight, shap=False).to_frame(shap=False)
        predictions["inflight"] = out
        metrics |= _prefixed("inflight", score_predictions(name, out, inflight))
        evm = evm_forecasts(name, inflight) if model.manifest.evm else anchor_forecasts(
            model, inflight)
        flag = (evm_late_flag(inflight, spec.late_threshold)
                if spec.classifier and model.manifest.evm else None)
        pooled = _pooled_checks(inflight, out, evm, flag, metric, qty, actual_col)
        checks += pooled
        metrics |= {f"inflight/baseline_{c.name.split(' vs ')[1]}/{c.metric}": c.baseline
                    for c in pooled if c.metric != "brier"}
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
                metrics[f"{tag}/baseline_{base_name}/mae"] = float(np.mean(np.abs(
                    base[ok] - actual[ok])))
                mine, theirs = (point_errors(metric, actual[ok], pred[ok]),
                                point_errors(metric, actual[ok], base[ok]))
                checks.append(Check(f"in flight {point:g}% vs {base_name}", metric,
                                    float(np.mean(mine)), float(np.mean(theirs)), mine, theirs,
                                    gate=False))
            if flag is not None:
                ok = ~np.isnan(flag[at])
                y = inflight.loc[at, "late"].to_numpy(int)[ok]
                base_brier = float(brier_score_loss(y, flag[at][ok]))
                metrics[f"{tag}/baseline_evm_flag/brier"] = base_brier
                p = out.loc[at, "probability_late"].to_numpy(float)[ok]
                checks.append(Check(f"in flight {point:g}% P(late) vs EVM flag", "brier",
                                    float(brier_score_loss(y, p)), base_brier,
                                    (p - y) ** 2, (flag[at][ok] - y) ** 2, gate=False))

    # Rows are scored independently, so the two parts together are the held-out frame's output.
    both = heldout_frame(data.intake.test, data.inflight.test)
    out = pd.concat(list(predictions.values()), ignore_index=True)
    metrics |= _prefixed("heldout", score_predictions(name, out, both))
    return Evaluation(metrics, _gated(checks, model.manifest.gate), predictions)


def _gated(checks: list[Check], gate: str) -> list[Check]:
    """The manifest's gate: "strict" gates every check but the pooled in-flight ones (each
    progress point gates on its own) and wants a win; "noise" gates the intake and pooled
    in-flight checks and tolerates a loss within noise."""
    if gate != "strict":
        return [replace(c, tolerant=True) for c in checks]
    # In flight, the pooled checks are built gating and the per-point ones reporting: swap.
    return [replace(c, gate=not c.gate if c.name.startswith("in flight") else c.gate)
            for c in checks]


def _pooled_checks(inflight: pd.DataFrame, out: pd.DataFrame, evm: pd.DataFrame, flag,
                   metric: str, qty: str, actual_col: str) -> list[Check]:
    """The in-flight checks the gate counts: all progress points together (each point alone
    is a thin slice, reported but not a reason to refuse a model)."""
    actual = inflight[actual_col].to_numpy(float)
    pred = out[f"{qty}_p50"].to_numpy(float)
    checks = []
    for base_name in evm.columns:
        base = evm[base_name].to_numpy(float)
        ok = ~np.isnan(base)
        mine, theirs = (point_errors(metric, actual[ok], pred[ok]),
                        point_errors(metric, actual[ok], base[ok]))
        checks.append(Check(f"in flight vs {base_name}", metric, float(np.mean(mine)),
                            float(np.mean(theirs)), mine, theirs))
    if flag is not None:
        ok = ~np.isnan(flag)
        y = inflight["late"].to_numpy(int)[ok]
        p = out["probability_late"].to_numpy(float)[ok]
        checks.append(Check("in flight P(late) vs EVM flag", "brier",
                            float(np.mean((p - y) ** 2)), float(np.mean((flag[ok] - y) ** 2)),
                            (p - y) ** 2, (flag[ok] - y) ** 2))
    return checks


def anchor_forecasts(model: FamilyModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Without earned value, the in-flight baseline is the snapshot's own re-forecast: the
    planned value times the anchor ratio the in-flight model starts from (if it has one)."""
    estimator = model.stages["inflight"]
    anchor = estimator.regressor_.anchor
    if anchor is None:
        return pd.DataFrame(index=rows.index)
    features = build_features(rows, "inflight", model.manifest)
    planned = rows[model.spec.planned].to_numpy(float)
    return pd.DataFrame({anchor: planned * features[anchor].to_numpy(float)}, index=rows.index)


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{k}": v for k, v in values.items()}
