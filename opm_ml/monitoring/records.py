"""What the prediction log writes: one forecast request as rows of the two log tables.

`Entry` is captured on the hot path (references to the request's inputs and forecast arrays,
nothing copied or converted); `entry_rows` turns it into table rows in the writer thread, so
a request pays for a timestamp and a queue append, not for building dictionaries.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from opm_ml.forecasting.families import STAGES
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.forecasting.result import ForecastBatch


@dataclass(frozen=True)
class Entry:
    """One forecast request waiting to be written (see module docstring).

    `models`: family -> (registered model name, version) of the model that answered.
    """

    source: str  # api | score
    logged_at: datetime
    inputs: ProjectInputs
    forecasts: Mapping[str, ForecastBatch]
    models: Mapping[str, tuple[str, str]]

    @property
    def rows(self) -> int:
        return self.inputs.n


def entry_rows(entry: Entry) -> tuple[list[dict], list[dict]]:
    """(prediction_log rows, prediction_log_forecast rows) of an entry."""
    inputs = entry.inputs
    ids = [uuid.uuid4().hex for _ in range(inputs.n)]
    log_rows: list[dict | None] = [None] * inputs.n
    status = _dates(inputs.columns.get("status_date"), inputs.n)
    progress = _progress(inputs)
    group = inputs.columns.get(inputs.manifest.reference_class or "")
    for stage in STAGES:
        rows = inputs.rows_of(stage)
        if not len(rows):
            continue
        features = inputs.features(stage)
        names = list(features)
        matrix = np.column_stack([features[n] for n in names]).astype(object) if names else \
            np.empty((len(rows), 0), dtype=object)
        matrix[matrix != matrix] = None  # NaN (the only value unequal to itself) -> null
        for pos, values in zip(rows.tolist(), matrix.tolist()):
            log_rows[pos] = {
                "id": ids[pos], "logged_at": entry.logged_at, "source": entry.source,
                "project_id": _text(inputs.ids[pos]), "stage": stage,
                "status_date": status[pos] if stage == "inflight" else None,
                "progress": progress[pos] if stage == "inflight" else None,
                "project_type": None if group is None else _text(group[pos]),
                "features": dict(zip(names, values)),
            }
    forecast_rows = []
    for name, batch in entry.forecasts.items():
        model_name, version = entry.models[name]
        planned = inputs.columns.get(batch.family.planned)
        planned = [None] * inputs.n if planned is None else _floats(planned)
        q = _floats(batch.quantiles)
        late = batch.values.get("probability_late")
        late = _floats(late) if late is not None else [None] * inputs.n
        for i in range(inputs.n):
            if planned[i] is None or q[i][1] is None:
                continue  # no forecast of this family: the row lacks its planned value
            forecast_rows.append({
                "prediction_id": ids[i], "family": name, "model_name": model_name,
                "model_version": str(version), "planned": planned[i],
                "p10": q[i][0], "p50": q[i][1], "p90": q[i][2], "probability_late": late[i],
                "late_threshold": batch.late_threshold if late[i] is not None else None,
            })
    return [row for row in log_rows if row is not None], forecast_rows


def _progress(inputs: ProjectInputs) -> list[float | None]:
    """Percent complete per row: as reported, else earned value / budget (the EVM reading)."""
    cols, n = inputs.columns, inputs.n
    pct = cols.get("percent_complete")
    pct = np.full(n, np.nan) if pct is None else np.asarray(pct, dtype=float)
    if "ev" in cols and "budget_at_completion" in cols:
        earned = 100 * np.asarray(cols["ev"], float) / np.asarray(cols["budget_at_completion"],
                                                                  float)
        pct = np.where(np.isnan(pct), earned, pct)
    return _floats(pct)


def _floats(values) -> list:
    """Floats as Python values, NaN as None (SQL NULL), for any array shape."""
    array = np.asarray(values, dtype=float)
    out = array.astype(object)
    out[np.isnan(array)] = None
    return out.tolist()


def _dates(values, n: int) -> list:
    if values is None:
        return [None] * n
    days = np.asarray(values).astype("datetime64[D]")
    return [None if np.isnat(d) else d.item() for d in days]


def _text(value) -> str | None:
    return None if value is None else str(value)
