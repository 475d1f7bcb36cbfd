"""A project assessment: every family's forecast, and in flight the OPM metrics beside them.

`assess(models, inputs)` predicts each family on the same `ProjectInputs` (features and OPM
metrics computed once) and returns an `Assessment`, written as the API's JSON
(`POST /v1/projects/assess`) or as batch scoring's flat frame (`<family>__<column>` and
`evm__<metric>`). In flight, each model's P50 sits next to the earned-value index forecasts of
the same quantity (IEAC(t) for duration; EAC(CPI) and EAC(CPI x SPI) for cost and, scaled
from cost, effort), the baselines training holds the models to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.features import StatusMetrics
from opm_ml.forecasting.families import LEVELS
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.forecasting.model import FamilyModel
from opm_ml.forecasting.result import ForecastBatch, paused_gc
from opm_ml.opm_metrics import METRIC_COLUMNS

EVM_PREFIX = "evm__"


def assess(models: Mapping[str, FamilyModel], inputs: ProjectInputs | pd.DataFrame,
           shap: bool = True) -> Assessment:
    """Every model's forecasts for the same rows (family name -> model, in that order)."""
    if isinstance(inputs, pd.DataFrame):
        inputs = ProjectInputs.from_frame(inputs, next(iter(models.values())).manifest)
    return Assessment(inputs, {name: m.predict(inputs, shap) for name, m in models.items()})


@dataclass
class Assessment:
    """Forecast batches of several families over one `ProjectInputs`."""

    inputs: ProjectInputs
    forecasts: dict[str, ForecastBatch]

    # --- JSON -----------------------------------------------------------------------------------

    def to_json(self, top_k: int | None = None, compact: bool = False) -> list[dict]:
        """Per project: id, forecasts by family slug (those it has the planned value of), and
        in flight the OPM metrics.

        `compact` (see `ForecastBatch.to_json`) also leaves out what repeats another field of
        the same answer (the id inside `opm_metrics`, `evm_forecast_finish_date`, the models'
        intervals inside `evm_comparison`) and the empty in-flight fields of intake rows.
        """
        with paused_gc():  # see `paused_gc`: new acyclic objects only
            by_slug = {b.family.slug: b.to_json(top_k, compact)
                       for b in self.forecasts.values()}
            warnings = self.warnings()
            empty = {} if compact else {"opm_metrics": None, "evm_comparison": None,
                                        "evm_forecast_finish_date": None}
            results = [
                {"project_id": pid, "forecasts": {slug: by_slug[slug][i] for slug in by_slug
                                                  if by_slug[slug][i] is not None},
                 **empty, **({"warnings": warnings[i]} if warnings[i] else {})}
                for i, pid in enumerate(self.inputs.ids)
            ]
            evm = self.inputs.evm
            if evm is not None:
                self._add_opm_metrics(results, evm, compact)
            return results

    def warnings(self) -> list[list[str]]:
        """Per project: unseen category values, and the families it has no forecast of."""
        return self.inputs.family_warnings([b.family for b in self.forecasts.values()])

    def _add_opm_metrics(self, results: list[dict], evm: StatusMetrics, compact: bool) -> None:
        rows = self.inputs.inflight
        values = metric_dicts(evm)
        comparisons: list[dict] = [{} for _ in rows]
        for batch in self.forecasts.values():
            family = batch.family
            planned = self.inputs.columns[family.planned][rows].tolist()
            index = self.index_forecasts(batch)
            p50, q = batch.quantiles[rows, 1].tolist(), batch.quantiles[rows].tolist()
            for j in np.flatnonzero(np.isfinite(np.asarray(planned, dtype=float))).tolist():
                # a family without a plan has no forecast to compare
                model = {} if compact else {"model_p50": p50[j],
                                            "model_interval": dict(zip(LEVELS, q[j]))}
                comparisons[j][family.quantity] = {
                    "planned": planned[j], **model,
                    "evm": {name: v[j] for name, v in index.items()},
                }
        reasons = evm.reasons()
        for j, pos in enumerate(rows.tolist()):
            result = results[pos]
            result["opm_metrics"] = {"metrics": values[j], "undefined": reasons[j]} if compact \
                else {"project_id": result["project_id"], "metrics": values[j],
                      "undefined": reasons[j]}
            if not compact:
                result["evm_forecast_finish_date"] = values[j]["forecast_finish_date"]
            result["evm_comparison"] = comparisons[j]

    def index_forecasts(self, batch: ForecastBatch) -> dict[str, list]:
        """The family's EVM index forecasts for the in-flight rows (None where undefined, or
        where scaling a finite EAC overflows: JSON has no infinity)."""
        family, rows = batch.family, self.inputs.inflight
        planned = self.inputs.columns[family.planned][rows]
        ratio_of = planned / self.inputs.columns[family.evm_scale][rows]
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = {name: self.inputs.evm.values[col] * ratio_of
                      for name, col in family.evm_baselines.items()}
        return {name: np.where(np.isfinite(f), f, None).tolist() for name, f in scaled.items()}

    # --- DataFrame ------------------------------------------------------------------------------

    def to_frame(self, shap: bool = True, late_shap: bool = True,
                 top_k: int | None = None) -> pd.DataFrame:
        """`project_id`, `warnings` (as the API's, joined by "; "), each family's `to_frame()`
        prefixed `<family>__`, the OPM metrics."""
        warnings = pd.array(["; ".join(w) or None for w in self.warnings()], dtype="string")
        parts = [pd.DataFrame({"project_id": np.asarray(self.inputs.ids, dtype=object),
                               "warnings": warnings})]
        parts += [b.to_frame(shap, late_shap, top_k).add_prefix(f"{name}__")
                  for name, b in self.forecasts.items()]
        if self.inputs.manifest.evm:
            parts.append(self.evm_frame())
        return pd.concat(parts, axis=1)

    def evm_frame(self) -> pd.DataFrame:
        """The OPM metrics of in-flight rows, null on intake rows; same dtypes for any mix."""
        n, rows, evm = self.inputs.n, self.inputs.inflight, self.inputs.evm
        data: dict[str, object] = {}
        for m in METRIC_COLUMNS[:-1]:
            values = np.full(n, np.nan)
            if evm is not None:
                values[rows] = evm.values[m]
            data[m] = pd.array(values, dtype="Float64")  # NaN -> <NA>
        finish = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
        undefined = np.full(n, None, dtype=object)
        if evm is not None:
            finish[rows] = evm.forecast_finish.astype("datetime64[s]")
            undefined[rows] = evm.undefined
        data["forecast_finish_date"] = finish
        data["undefined"] = pd.array(undefined, dtype="string")
        return pd.DataFrame(data).add_prefix(EVM_PREFIX)


def metric_dicts(evm: StatusMetrics) -> list[dict]:
    """Per snapshot, metric -> JSON value (null where undefined, the finish date as ISO text)."""
    table = np.array(list(evm.values.values()), dtype=float)  # (metrics, n): one pass
    values = table.astype(object)
    values[np.isnan(table)] = None
    columns = dict(zip(evm.values, values.tolist()))
    finish = np.datetime_as_string(evm.forecast_finish, unit="D")
    columns["forecast_finish_date"] = np.where(np.isnat(evm.forecast_finish), None,
                                               finish).tolist()
    return [dict(zip(columns, values)) for values in zip(*columns.values())]
