"""What the prediction log writes: one forecast request as rows of the two log tables.

`Entry` is captured on the hot path (references to the request's inputs and forecast arrays,
nothing copied or converted); `entry_rows` turns it into table rows in the writer thread, so
a request pays for a timestamp and a queue append, not for building dictionaries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat

import numpy as np
import orjson

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


def entry_rows(entry: Entry) -> tuple[list[tuple], list[tuple]]:
    """(prediction_log rows, prediction_log_forecast rows) of an entry: tuples in the tables'
    column order, the features as JSON text.

    Built a column at a time (numpy, then one list per column zipped into rows): the writer
    holds the GIL meanwhile, and a dict per row and per forecast cost the API's next batch.
    """
    inputs, n = entry.inputs, entry.inputs.n
    ids = uuid4_hex(n)
    inflight = inputs.inflight_mask
    status = inputs.columns.get("status_date")
    status = [None] * n if status is None else \
        np.where(inflight, np.asarray(status).astype("datetime64[D]").astype(object), None)
    group = inputs.columns.get(inputs.manifest.reference_class or "")
    features: list = [None] * n
    for stage in STAGES:
        rows = inputs.rows_of(stage)
        if len(rows):  # (a stage without rows has no features to compute)
            texts = features_json(inputs.features(stage), len(rows))
            for pos, text in zip(rows.tolist(), texts):
                features[pos] = text
    log_rows = list(zip(
        ids, repeat(entry.logged_at), repeat(entry.source), map(_text, inputs.ids),
        np.where(inflight, "inflight", "intake").tolist(), list(status),
        _floats(np.where(inflight, _progress(inputs), np.nan)),
        repeat(None) if group is None else map(_text, group), features))
    forecast_rows: list[tuple] = []
    for name, batch in entry.forecasts.items():
        planned = inputs.columns.get(batch.family.planned)
        if planned is None:
            continue  # no forecast of this family: the rows lack its planned value
        late = batch.values.get("probability_late")
        late = np.full(n, np.nan) if late is None else np.asarray(late, dtype=float)
        threshold = np.nan if batch.late_threshold is None else batch.late_threshold
        values = np.column_stack([np.asarray(planned, dtype=float), batch.quantiles, late,
                                  np.where(np.isnan(late), np.nan, threshold)])
        kept = np.flatnonzero(~np.isnan(values[:, 0]) & ~np.isnan(values[:, 2]))  # plan, P50
        model_name, version = entry.models[name]
        forecast_rows += zip([ids[i] for i in kept], repeat(name), repeat(model_name),
                             repeat(str(version)), *_floats(values[kept].T))
    return log_rows, forecast_rows


def uuid4_hex(n: int) -> list[str]:
    """`uuid.uuid4().hex` n times, from one draw of random bytes (the same bytes, versions and
    variant bits as uuid4; a UUID object per row was a third of the cost of its rows)."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40  # version 4
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80  # variant RFC 4122
    text = raw.tobytes().hex()
    return [text[i:i + 32] for i in range(0, 32 * n, 32)]


def features_json(features: Mapping[str, np.ndarray], rows: int) -> list[str]:
    """Each row's features (name -> float array) as a JSON object, NaN as null.

    orjson writes it (under a tenth of the cost of `json.dumps`); a row holding an infinite value is
    written by `json.dumps` as before (`Infinity`), where orjson would write null.
    """
    names = list(features)
    if not names:
        return ["{}"] * rows
    # (n, F) as a transposed (F, n): one array call, a third of `column_stack`'s cost
    matrix = np.array([features[name] for name in names]).T
    infinite = np.isinf(matrix).any(axis=1).tolist()
    return [json.dumps({k: None if v != v else v for k, v in zip(names, values)}) if inf
            else orjson.dumps(dict(zip(names, values))).decode()  # NaN -> null
            for values, inf in zip(matrix.tolist(), infinite)]


def _progress(inputs: ProjectInputs) -> np.ndarray:
    """Percent complete per row: as reported, else earned value / budget (the EVM reading)."""
    cols, n = inputs.columns, inputs.n
    pct = cols.get("percent_complete")
    pct = np.full(n, np.nan) if pct is None else np.asarray(pct, dtype=float)
    if "ev" in cols and "budget_at_completion" in cols:
        earned = 100 * np.asarray(cols["ev"], float) / np.asarray(cols["budget_at_completion"],
                                                                  float)
        pct = np.where(np.isnan(pct), earned, pct)
    return pct


def _floats(values) -> list:
    """Floats as Python values, NaN as None (SQL NULL), for any array shape."""
    array = np.asarray(values, dtype=float)
    out = array.astype(object)
    out[np.isnan(array)] = None
    return out.tolist()


def _text(value) -> str | None:
    return None if value is None else str(value)
