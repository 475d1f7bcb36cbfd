"""The prediction log's writer as it was before the columnar rows (commit 7a7a977), frozen: a
dict per row and per forecast, `insert()` through SQLAlchemy with its own JSON and date
handling. The oracle of tests/test_monitoring_rows.py and the in-run baseline of
benchmarks/prediction_log.py. (Percent complete and the float conversion are today's
`records` helpers, unchanged in what they compute; `_progress` now takes a list of inputs.)"""

import uuid

import numpy as np
from sqlalchemy import insert

from opm_ml import database
from opm_ml.database.tables import prediction_log, prediction_log_forecast
from opm_ml.forecasting.families import STAGES
from opm_ml.monitoring.records import Entry, _floats, _progress


def reference_rows(entry: Entry) -> tuple[list[dict], list[dict]]:
    """`entry_rows` as it was before the columnar writer (commit 7a7a977), helpers too."""
    inputs = entry.inputs
    ids = [uuid.uuid4().hex for _ in range(inputs.n)]
    log_rows: list[dict | None] = [None] * inputs.n
    status = _dates(inputs.columns.get("status_date"), inputs.n)
    progress = _floats(_progress([inputs]))
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


def _dates(values, n: int) -> list:
    if values is None:
        return [None] * n
    days = np.asarray(values).astype("datetime64[D]")
    return [None if np.isnat(d) else d.item() for d in days]


def _text(value) -> str | None:
    return None if value is None else str(value)


def reference_write(engine, batch: list[Entry]) -> None:
    """`PredictionLog._write` as it was: a dict per row through SQLAlchemy's `insert()`."""
    log_rows, forecast_rows = [], []
    for entry in batch:
        a, b = reference_rows(entry)
        log_rows += a
        forecast_rows += b
    with database.engine.translate_errors(engine), engine.begin() as conn:
        conn.execute(insert(prediction_log), log_rows)
        if forecast_rows:
            conn.execute(insert(prediction_log_forecast), forecast_rows)
