"""The API's side of monitoring: its prediction log, the report it serves, /metrics gauges.

`install(app, settings, metrics)` puts a `PredictionLog` on the database of `database_url` on
`app.state` (unless `OPM_ML_PREDICTION_LOG=false`) and registers a collector: the log's
written / dropped / queued counts and whether the database is up, and the latest report's
drift and realised-error figures. A scrape never waits for a report: when the last one is
older than `REFRESH_SECONDS` a background thread computes a new one for the next scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from opm_ml import database
from opm_ml.model_set import ModelSet
from opm_ml.monitoring.log import PredictionLog
from opm_ml.monitoring.report import build_report
from opm_ml.monitoring.thresholds import all_thresholds
from opm_ml.settings import Settings
from opm_ml.text import first_line

log = logging.getLogger("opm_ml.serving")
REFRESH_SECONDS = 300.0


def install(app, settings: Settings, metrics) -> PredictionLog | None:
    """The app's prediction log (None when turned off) and its /metrics collector."""
    plog = (PredictionLog(settings.database_url, settings.prediction_log_capacity)
            if settings.prediction_log else None)
    app.state.prediction_log = plog
    app.state.monitoring = Reports(settings)
    metrics.registry.register(MonitoringCollector(plog, app.state.monitoring,
                                                  lambda: app.state.model_store.current))
    return plog


def log_forecasts(plog: PredictionLog | None, inputs, forecasts: dict, served: dict) -> None:
    """Queue one answer's forecasts (family -> ForecastBatch, family -> ServedModel)."""
    if plog is not None:
        plog.record("api", inputs, forecasts, {f: (m.name, m.version) for f, m in served.items()})


class Reports:
    """Computes monitoring reports for the served set and keeps the latest default one."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.latest: tuple[float, dict] | None = None
        self._refreshing = threading.Lock()

    def compute(self, model_set: ModelSet, since: datetime | None = None) -> dict:
        """A report over the window (default: the last 30 days); raises DatabaseUnavailable."""
        engine = database.connect(self.settings.database_url)
        report = build_report(engine, model_set.models, all_thresholds(model_set.models), since)
        if since is None:
            self.latest = (time.monotonic(), report)
        return report

    def refresh_if_stale(self, model_set: ModelSet | None) -> None:
        """Start a background recompute when the latest report is missing or old."""
        fresh = self.latest and time.monotonic() - self.latest[0] < REFRESH_SECONDS
        if model_set is None or fresh or not self._refreshing.acquire(blocking=False):
            return

        def run():
            try:
                self.compute(model_set)
            except Exception as exc:  # an outage must not kill the thread or the scrape
                log.warning("monitoring report failed: %s", first_line(exc))
                self.latest = (time.monotonic(), self.latest[1] if self.latest else {})
            finally:
                self._refreshing.release()

        threading.Thread(target=run, name="opm-monitoring-report", daemon=True).start()


class MonitoringCollector(Collector):
    """Prediction-log counters and the latest report's figures, read at scrape time."""

    def __init__(self, plog: PredictionLog | None, reports: Reports, current):
        self.plog, self.reports, self.current = plog, reports, current

    def collect(self):
        if self.plog is not None:
            stats = self.plog.stats
            yield CounterMetricFamily("opm_prediction_log_written",
                                      "forecast records committed to the database",
                                      value=stats.written)
            dropped = CounterMetricFamily("opm_prediction_log_dropped",
                                          "forecast records not written, by reason",
                                          labels=["reason"])
            for reason in ("queue_full", "shutdown", "error"):
                dropped.add_metric([reason], stats.dropped.get(reason, 0))
            yield dropped
            yield GaugeMetricFamily("opm_prediction_log_queue_rows",
                                    "forecast records waiting to be written", value=stats.queued)
            yield GaugeMetricFamily("opm_prediction_log_database_up",
                                    "1 when the last write or connect succeeded",
                                    value=int(stats.database_up))
        if self.plog is not None:  # with the log off, only GET /v1/monitoring reads the database
            self.reports.refresh_if_stale(self.current())
        yield from report_gauges(self.reports.latest[1] if self.reports.latest else {})


def report_gauges(report: dict):
    """Gauges of a monitoring report (nothing before the first one)."""
    psi = GaugeMetricFamily("opm_monitoring_feature_psi", "PSI of recent requests vs the "
                            "champion's training rows", labels=["stage", "feature"])
    drifted = GaugeMetricFamily("opm_monitoring_feature_drifted", "1 when the feature drifts",
                                labels=["stage", "feature"])
    for row in report.get("drift", []):
        if row["judged"]:
            psi.add_metric([row["stage"], row["feature"]], row["psi"])
            drifted.add_metric([row["stage"], row["feature"]], int(row["drifted"]))
    realised = GaugeMetricFamily("opm_monitoring_realised_mape", "MAPE of the champion's "
                                 "forecasts of finished projects", labels=["task", "version"])
    heldout = GaugeMetricFamily("opm_monitoring_heldout_mape", "the champion's held-out MAPE "
                                "at the same stages", labels=["task", "version"])
    retrain = GaugeMetricFamily("opm_monitoring_retrain_needed", "1 when a retrain threshold "
                                "is crossed", labels=["task"])
    for family, item in report.get("families", {}).items():
        version = item["model"]["version"]
        if item["realised"]:
            realised.add_metric([family, version], item["realised"]["mape"])
            if item["realised"]["heldout_mape"] is not None:
                heldout.add_metric([family, version], item["realised"]["heldout_mape"])
        retrain.add_metric([family], int(item["decision"]["retrain"]))
    yield from (psi, drifted, realised, heldout, retrain)

