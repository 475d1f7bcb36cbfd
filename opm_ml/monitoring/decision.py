"""Whether a family's champion should be retrained, and why (or why not), from a report.

Four checks against the spec's `[monitoring]` thresholds: drifted features, the drift of the
champion's own predictions, realised error against held-out error at the same stages, and how
many projects finished since the champion was trained. Each check says what it measured and
what it needed, so a decision not to retrain is as explained as one to retrain.
"""

from __future__ import annotations

from opm_ml.monitoring.drift import drifted_features
from opm_ml.monitoring.thresholds import Thresholds


def decide(thresholds: Thresholds, features: list[dict], predictions: list[dict],
           realised: dict | None, new_outcomes: int, version: str) -> dict:
    """{"retrain": bool, "reasons": [triggered checks], "checks": [every check]}."""
    t = thresholds
    checks = [_drift(t, features), _prediction(t, predictions), _error(t, realised, version),
              {"check": "new_outcomes", "triggered": new_outcomes >= t.new_outcomes,
               "detail": f"{new_outcomes:,} projects finished since v{version} was trained "
                         f"(retrain at {t.new_outcomes:,})"}]
    reasons = [c["detail"] for c in checks if c["triggered"]]
    return {"retrain": bool(reasons), "reasons": reasons, "checks": checks}


def _drift(t: Thresholds, rows: list[dict]) -> dict:
    drifted = drifted_features(rows)
    judged = any(r["judged"] for r in rows)
    named = ", ".join(f"{r['feature']} ({r['stage']}: PSI {r['psi']:.2f}"
                      + (f", KS {r['ks']:.2f}" if r["ks"] is not None else "") + ")"
                      for r in drifted[:6])
    if not judged:
        detail = f"drift not judged: fewer than {t.min_requests} logged forecasts per stage"
    else:
        detail = (f"{len(drifted)} feature(s) drifted (retrain at {t.drifted_features}; PSI >= "
                  f"{t.psi:g} or KS >= {t.ks:g})" + (f": {named}" if named else ""))
    return {"check": "feature_drift", "triggered": len(drifted) >= t.drifted_features,
            "detail": detail, "drifted": [r["feature"] for r in drifted]}


def _prediction(t: Thresholds, rows: list[dict]) -> dict:
    hits = [r for r in rows if r["drifted"]]
    judged = [r for r in rows if r["judged"]]
    worst = max(judged, key=lambda r: r["psi"], default=None)
    detail = ("prediction drift not judged: too few forecasts by the champion" if worst is None
              else f"P50/planned and P(late) vs held-out: largest PSI {worst['psi']:.2f} "
                   f"({worst['stage']} {worst['output']}; retrain at {t.prediction_psi:g})")
    return {"check": "prediction_drift", "triggered": bool(hits), "detail": detail}


def _error(t: Thresholds, realised: dict | None, version: str) -> dict:
    if not realised or realised["n"] < t.min_outcomes:
        n = realised["n"] if realised else 0
        return {"check": "realised_error", "triggered": False,
                "detail": f"realised error not judged: {n} forecast(s) of v{version} with an "
                          f"outcome (needs {t.min_outcomes})"}
    expected, mape = realised["heldout_mape"], realised["mape"]
    if not expected:
        return {"check": "realised_error", "triggered": False,
                "detail": f"realised MAPE {mape:.1f} % on {realised['n']:,} forecasts; no "
                          "held-out MAPE to compare with"}
    rise = mape / expected - 1
    return {"check": "realised_error", "triggered": rise > t.error_rise,
            "detail": f"realised MAPE {mape:.1f} % on {realised['n']:,} forecasts of "
                      f"v{version} vs {expected:.1f} % held-out at the same stages "
                      f"({rise:+.0%}; retrain above {t.error_rise:+.0%})"}
