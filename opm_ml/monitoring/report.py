"""The monitoring report: drift, realised accuracy and the retrain decision of each champion.

`build_report(engine, models, thresholds, since)` reads the prediction log and the outcomes
since `since` and returns one JSON-ready dict, the same for `opm-ml monitor`, `GET
/v1/monitoring`, the dashboard view and `opm-ml retrain --if-needed`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import Engine

from opm_ml.model_set import ServedModel
from opm_ml.monitoring import accuracy, queries
from opm_ml.monitoring.decision import decide
from opm_ml.monitoring.drift import feature_drift, prediction_drift, summary_rows
from opm_ml.monitoring.thresholds import Thresholds

DEFAULT_DAYS = 30


def default_since(now: datetime | None = None) -> datetime:
    """The start of the default window: the last DEFAULT_DAYS days."""
    return (now or datetime.now(timezone.utc)) - timedelta(days=DEFAULT_DAYS)


def parse_since(text: str | None) -> datetime | None:
    """`--since YYYY-MM-DD` as the start of that day in UTC (None stays None); ValueError
    naming the option otherwise."""
    if text is None:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise ValueError(f"--since must be a date YYYY-MM-DD, got {text!r}") from None
    return day.replace(tzinfo=timezone.utc)


def served_heldout(models: Mapping[str, ServedModel]) -> accuracy.Heldout:
    """heldout(family, version) from the training metrics of the models being served."""
    known = {(m.family, m.version): m.metrics for m in models.values()}
    return lambda family, version: known.get((family, str(version)))


def build_report(engine: Engine, models: Mapping[str, ServedModel],
                 thresholds: Mapping[str, Thresholds], since: datetime | None = None,
                 heldout: accuracy.Heldout | None = None) -> dict:
    """The report over forecasts logged since `since` (default: the last 30 days)."""
    since = queries.utc(since or default_since())
    heldout = heldout or served_heldout(models)
    logged = queries.logged_features(engine, since)
    forecasts = queries.logged_forecasts(engine, since)
    judged = queries.judged_forecasts(engine, since)
    points = accuracy.progress_points(next(iter(models.values())).metrics if models else None)
    families, drift_rows = {}, {}
    for name, served in models.items():
        reference = served.model.reference
        mine = forecasts[(forecasts["family"] == name)
                         & (forecasts["model_version"] == served.version)] if len(forecasts) \
            else forecasts
        trained = pd.Timestamp(served.trained_at).to_pydatetime() if served.trained_at else None
        # Drift is judged on requests since the champion was trained: older ones may be in its
        # training data already, and judging them again would retrain it over and over.
        recent = {stage: frame[frame[queries.LOGGED_AT] >= queries.utc(trained)]
                  for stage, frame in logged.items()} if trained else logged
        features = feature_drift(reference, recent, thresholds[name]) if reference else []
        predictions = prediction_drift(reference, mine, thresholds[name]) if reference else []
        realised = _champion_accuracy(judged, served, heldout, points)
        new = queries.outcomes_since(engine, trained)
        drift_rows[name] = features
        families[name] = {
            "model": {"name": served.name, "version": served.version, "alias": served.alias,
                      "run_id": served.run_id, "trained_at": served.trained_at},
            "reference": reference is not None,
            "thresholds": thresholds[name].to_dict(),
            "forecasts": int(len(mine)),
            "prediction_drift": predictions,
            "realised": realised,
            "new_outcomes": new,
            "decision": decide(thresholds[name], features, predictions, realised, new,
                               served.version),
            "reliability": accuracy.reliability(
                judged[judged["family"] == name]) if len(judged) else [],
        }
    return json_safe({
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "since": since.isoformat(timespec="seconds"),
        "requests": {stage: int(len(frame)) for stage, frame in sorted(logged.items())},
        "judged_forecasts": int(len(judged)),
        "families": families,
        "drift": summary_rows(drift_rows),
        "accuracy": accuracy.accuracy_tables(judged, heldout, points),
    })


def _champion_accuracy(judged: pd.DataFrame, served: ServedModel, heldout: accuracy.Heldout,
                       points) -> dict | None:
    """Realised metrics of the served version's own forecasts, with its held-out MAPE."""
    if judged.empty:
        return None
    rows = judged[(judged["family"] == served.family)
                  & (judged["model_version"] == served.version)]
    if rows.empty:
        return None
    rows = rows.assign(label=accuracy.stage_labels(rows["stage"], rows["progress"], points))
    return {**accuracy.metrics(rows), "heldout_mape": accuracy.expected_mape(rows, heldout)}


def json_safe(value):
    """`value` with non-finite floats as None (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
