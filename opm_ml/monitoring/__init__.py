"""Closing the loop: what was forecast, what happened, and whether the champion is stale.

* `log.PredictionLog`: every served forecast into the service database, off the hot path;
* `outcomes.ingest_outcomes`: finished projects' actual values, validated row by row;
* `report.build_report`: drift against the champion's `reference` profile (`drift`),
  realised accuracy (`accuracy`) and the retrain decision (`decision`) per family;
* `thresholds`: the `[monitoring]` table of `models/*.toml`;
* `tracking.log_monitoring_run`: each monitoring run in MLflow, linked to the champions;
* `scenario`: the drift scenario of the tests and `benchmarks/monitoring.py`.
"""
