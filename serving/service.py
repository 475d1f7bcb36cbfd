"""What the endpoints do, independent of HTTP: predict one family, assess a project, list models.

Every function takes validated requests (one or many) and works on the whole list at once:
rows and OPM metrics are computed once and shared by the three models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from serving.model_store import ModelSet, ServedModel
from serving.observability import Metrics
from serving.predictor import FamilyPredictor, StageOutput, forecast_json
from serving.rows import ProjectRows, metric_dicts
from training.baselines import EVM_BASELINES

# The planned value each EVM index forecast scales, per model quantity (as training's baselines:
# effort tracks cost, so planned effort x EAC / BAC).
_EVM_SCALE = {"delay": "planned_duration_days", "overrun": "budget_at_completion",
              "resource": "budget_at_completion"}
_RATIO_OUTPUT = {"delay": "duration_ratio", "overrun": "cost_ratio", "resource": "effort_ratio"}


def model_ref(model: ServedModel) -> dict[str, str]:
    return {"name": model.name, "version": model.version, "alias": model.alias}


def forecasts(model: ServedModel, rows: ProjectRows, top_k: int | None,
              metrics: Metrics | None = None) -> list[dict]:
    """One family's forecasts for every row, in request order; recorded in /metrics."""
    predictor: FamilyPredictor = model.predictor
    outputs = predictor.predict(rows)
    if metrics is not None:
        _observe(metrics, model.task, predictor, rows, outputs)
    return forecast_json(predictor, rows, outputs, top_k)


def predict(model: ServedModel, items: Sequence, top_k: int | None,
            metrics: Metrics | None = None) -> list[dict]:
    """`POST /v1/predictions/{task}`: per project, its id and the task's forecast."""
    rows = ProjectRows.from_requests(items)
    results = forecasts(model, rows, top_k, metrics)
    return [{"project_id": pid, **r} for pid, r in zip(rows.project_ids, results, strict=True)]


def assess(model_set: ModelSet, items: Sequence, top_k: int | None,
           metrics: Metrics | None = None) -> list[dict]:
    """`POST /v1/projects/assess`: three forecasts, and OPM metrics next to them in flight.

    Raises ModelsNotReady naming the missing models unless all three are served.
    """
    model_set.require_all()
    rows = ProjectRows.from_requests(items)
    by_task = {task: forecasts(model, rows, top_k, metrics)
               for task, model in model_set.models.items()}
    results = [
        {"project_id": pid, "forecasts": {task: by_task[task][i] for task in by_task},
         "opm_metrics": None, "evm_comparison": None, "evm_forecast_finish_date": None}
        for i, pid in enumerate(rows.project_ids)
    ]
    if rows.evm is not None:
        _add_opm_metrics(results, rows, model_set)
    return results


def _add_opm_metrics(results: list[dict], rows: ProjectRows, model_set: ModelSet) -> None:
    """In-flight rows: the OPM metrics and the EVM index forecasts beside the models' P50.

    The index forecasts are those training's baselines use: IEAC(t) for duration, EAC(CPI)
    and EAC(CPI x SPI) for cost and, scaled from cost, for effort.
    """
    k = rows.inflight
    evm = rows.evm
    values = metric_dicts(evm)
    comparisons: list[dict] = [{} for _ in k]
    for task, model in model_set.models.items():
        predictor: FamilyPredictor = model.predictor
        planned = rows.columns[predictor.planned_column][k]
        ratio_of = planned / rows.columns[_EVM_SCALE[predictor.family]][k]
        index_forecasts = {
            name: np.where(np.isnan(f := evm.values[col] * ratio_of), None, f).tolist()
            for name, col in EVM_BASELINES[predictor.family].items()
        }
        for j, pos in enumerate(k.tolist()):
            forecast = results[pos]["forecasts"][task]
            comparisons[j][predictor.quantity] = {
                "planned": float(planned[j]),
                "model_p50": forecast["prediction"],
                "model_interval": forecast["interval"],
                "evm": {name: v[j] for name, v in index_forecasts.items()},
            }
    reasons = evm.reasons()
    for j, pos in enumerate(k.tolist()):
        result = results[pos]
        result["opm_metrics"] = {"project_id": result["project_id"], "metrics": values[j],
                                 "undefined": reasons[j]}
        result["evm_forecast_finish_date"] = values[j]["forecast_finish_date"]
        result["evm_comparison"] = comparisons[j]


def _observe(metrics: Metrics, task: str, predictor: FamilyPredictor, rows: ProjectRows,
             outputs: list[StageOutput]) -> None:
    for out in outputs:
        planned = rows.columns[predictor.planned_column][out.positions]
        metrics.predictions.observe(task, _RATIO_OUTPUT[predictor.family],
                                    out.result["quantiles"][:, 1] / planned)
        if "probability_late" in out.result:
            metrics.predictions.observe(task, "probability_late", out.result["probability_late"])


def models_info(model_set: ModelSet) -> dict:
    """`GET /v1/models`: registry identity, training time, metrics and lineage of each model."""
    return {
        "loaded_at": model_set.loaded_at.isoformat(timespec="seconds"),
        "models": [
            {"task": m.task, **model_ref(m), "run_id": m.run_id, "trained_at": m.trained_at,
             "metrics": dict(m.metrics), "lineage_digest": m.lineage_digest,
             "datasets": list(m.datasets)}
            for m in model_set.models.values()
        ],
    }
