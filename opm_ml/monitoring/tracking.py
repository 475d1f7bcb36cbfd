"""Each monitoring run in MLflow: its own run, linked both ways to the champions it judged.

The run (`opm_ml.kind` = monitor or retrain) sits in the training experiment and carries the
report as `monitoring_report.json` (and the HTML report when written), its figures as metrics
and, per family, tags naming the champion's model version and run. Each champion version in
turn gets tags pointing at the latest monitoring run and its retrain verdict. Everything goes
through an `MlflowClient` on the settings' store: no process-wide URI is touched.
"""

from __future__ import annotations

import time
from pathlib import Path

from opm_ml import mlflow_access
from opm_ml.settings import Settings

_MAX_KEY = 250  # MLflow's metric key limit


def log_monitoring_run(settings: Settings, report: dict, kind: str = "monitor",
                       html: Path | None = None, extra_tags: dict | None = None) -> str:
    """Log `report` as a new run; returns its id. LookupError when the experiment is missing."""
    from mlflow.entities import Metric, Param

    client = mlflow_access.client(settings)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is None:
        raise LookupError(f"no MLflow experiment {settings.mlflow_experiment!r} in "
                          f"{settings.mlflow_tracking_uri}: train a champion first")
    tags = {"opm_ml.kind": kind, "monitoring.since": report["since"], **(extra_tags or {})}
    for family, item in report["families"].items():
        model, decision = item["model"], item["decision"]
        tags |= {f"champion.{family}.name": model["name"],
                 f"champion.{family}.version": model["version"],
                 f"champion.{family}.run_id": model["run_id"] or "",
                 f"retrain.{family}": str(decision["retrain"]).lower(),
                 f"retrain.{family}.reasons": "; ".join(decision["reasons"])[:5000] or "-"}
    run = client.create_run(experiment.experiment_id, run_name=kind,
                            tags={k: str(v) for k, v in tags.items()})
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k[:_MAX_KEY], float(v), now, 0) for k, v in report_metrics(report).items()]
    thresholds = [Param(f"{family}.{k}", str(v)) for family, item in report["families"].items()
                  for k, v in item["thresholds"].items()]
    for start in range(0, len(metrics), 900):  # log_batch takes at most 1,000 entries
        client.log_batch(run_id, metrics=metrics[start:start + 900],
                         params=thresholds if start == 0 else [])
    client.log_dict(run_id, report, "monitoring_report.json")
    if html is not None:
        client.log_artifact(run_id, str(html))
    client.set_terminated(run_id)
    for family, item in report["families"].items():
        model = item["model"]
        client.set_model_version_tag(model["name"], model["version"], "monitoring.last_run_id",
                                     run_id)
        client.set_model_version_tag(model["name"], model["version"], "monitoring.retrain",
                                     str(item["decision"]["retrain"]).lower())
    return run_id


def report_metrics(report: dict) -> dict[str, float]:
    """The report's figures as MLflow metrics (name -> value), finite values only."""
    out: dict[str, float] = {f"requests/{s}": n for s, n in report["requests"].items()}
    out["judged_forecasts"] = report["judged_forecasts"]
    for row in report["drift"]:
        if row["judged"]:
            out[f"drift/{row['stage']}/{row['feature']}/psi"] = row["psi"]
            if row["ks"] is not None:
                out[f"drift/{row['stage']}/{row['feature']}/ks"] = row["ks"]
    for family, item in report["families"].items():
        out[f"{family}/retrain"] = float(item["decision"]["retrain"])
        out[f"{family}/new_outcomes"] = item["new_outcomes"]
        out[f"{family}/forecasts"] = item["forecasts"]
        for key, value in (item["realised"] or {}).items():
            out[f"{family}/realised_{key}"] = value
        for row in item["prediction_drift"]:
            if row["judged"]:
                out[f"{family}/prediction_drift/{row['stage']}/{row['output']}/psi"] = row["psi"]
    return {k: float(v) for k, v in out.items() if v is not None and v == v}


def registry_heldout(settings: Settings, served):
    """heldout(family, version): the served models' training metrics, else the registry's
    (for forecasts made by earlier versions); None for a version the registry cannot give."""
    client = mlflow_access.client(settings)
    cache: dict[tuple[str, str], dict | None] = {}

    def lookup(family: str, version: str):
        known = served(family, version)
        if known is not None:
            return known
        if (family, version) not in cache:
            try:
                name = mlflow_access.registered_name(family, settings)
                run_id = client.get_model_version(name, version).run_id
                cache[family, version] = dict(client.get_run(run_id).data.metrics)
            except Exception:  # noqa: BLE001 - a deleted version or run: no comparison, no error
                cache[family, version] = None
        return cache[family, version]

    return lookup
