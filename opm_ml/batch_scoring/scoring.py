"""Score validated rows: each chosen family's forecasts and SHAP values, plus the OPM metrics.

Models come from the registry at the serving alias through the API's own loader
(`serving.loading.load_model_set`), once per run; the loaded `FamilyModel`s are plain picklable
objects, so a Dask run ships them to each worker once. Output columns per family are exactly
what `FamilyModel.predict` returns, prefixed `<family>__`; in-flight rows add `evm__<metric>`
from `opm_metrics.evm_frame` (null at intake).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.features import has_status
from opm_ml.model_loading import FAMILIES, check_families, to_model_input
from opm_ml.opm_metrics import METRIC_COLUMNS, evm_frame

EVM_PREFIX = "evm__"


class ModelsUnavailable(LookupError):
    """A chosen family has no model at the alias, or the registry cannot be read."""


@dataclass(frozen=True)
class ScoringModels:
    """The fitted family models a run scores with, and what the registry calls them."""

    models: dict  # family -> training.family.FamilyModel, in FAMILIES order
    versions: dict[str, str]  # family -> "opm-delay v3 (champion)"


def load_models(settings, families: list[str]) -> ScoringModels:
    """Load the chosen families at `settings.serve_alias`; ModelsUnavailable names any missing.

    Only those families are loaded, so a broken model of another family does not stop a run.
    """
    from serving.loading import load_model_set
    from serving.model_store import TASKS, first_line

    families = check_families(families)
    task_of = {family: task for task, family in TASKS.items()}
    try:
        model_set = load_model_set(settings, [task_of[f] for f in families])
    except Exception as exc:  # no models at all, unreadable artifacts, registry outage
        raise ModelsUnavailable(f"cannot load the {settings.serve_alias} models from "
                                f"{settings.mlflow_tracking_uri}: {first_line(exc, typed=False)}"
                                ) from exc
    missing = [model_set.missing[task_of[f]] for f in families if task_of[f] not in
               model_set.models]
    if missing:
        raise ModelsUnavailable("; ".join(missing) + " (train it first: opm-ml train)")
    served = {f: model_set.models[task_of[f]] for f in FAMILIES if f in families}
    return ScoringModels(
        {f: m.predictor.model for f, m in served.items()},
        {f: f"{m.name} v{m.version} ({m.alias})" for f, m in served.items()},
    )


def score_frame(valid: pd.DataFrame, models: ScoringModels, shap: bool = True) -> pd.DataFrame:
    """Output rows for validated rows (`inputs.validate_rows`), in their order.

    `project_id`, then per family its `FamilyModel.predict` columns prefixed `<family>__`,
    then the OPM metrics of in-flight rows.
    """
    model_input = to_model_input(valid)
    parts = [pd.DataFrame({"project_id": valid["project_id"].to_numpy(dtype=object)})]
    for family, model in models.models.items():
        parts.append(model.predict(model_input, shap=shap).add_prefix(f"{family}__"))
    parts.append(evm_columns(model_input))
    return pd.concat(parts, axis=1)


def evm_columns(model_input: pd.DataFrame) -> pd.DataFrame:
    """`evm_frame` of the in-flight rows, null on intake rows; same dtypes for any mix."""
    inflight = np.flatnonzero(has_status(model_input))
    rows = model_input.iloc[inflight]
    metrics = evm_frame(pd.DataFrame({
        "bac": rows["budget_at_completion"], "pv": rows["pv"], "ev": rows["ev"],
        "ac": rows["ac"], "planned_duration_days": rows["planned_duration_days"],
        "start_date": pd.to_datetime(rows["start_date"]).astype("datetime64[ns]"),
        "status_date": pd.to_datetime(rows["status_date"]).astype("datetime64[ns]"),
    }).set_axis(inflight))
    out = metrics.reindex(pd.RangeIndex(len(model_input)))
    # Typed even when all null, so every chunk and part writes the same Parquet schema.
    out = out.astype({m: "Float64" for m in METRIC_COLUMNS[:-1]} | {"undefined": "string"})
    out["forecast_finish_date"] = out["forecast_finish_date"].astype("datetime64[s]")
    return out.add_prefix(EVM_PREFIX)
