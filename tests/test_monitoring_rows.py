"""The prediction log stores the same rows as the dict-per-row writer it replaced.

`reference_write` is that writer, frozen (a dict per row, `insert()` through SQLAlchemy with
its own JSON and date handling). One mixed entry (intake and in-flight rows, missing
features, a row without a planned effort and so without a resource forecast, an in-flight
row without percent complete) is written by it and by `PredictionLog._write` with the same
ids, and both tables are read back: every column of every row must match, the features as
JSON values, and on SQLite the stored type of every value as well.
"""

import json
import os
import random
import uuid
from datetime import datetime, timezone

import numpy as np
import pg_cluster
import pytest
from frozen_log_writer import reference_write
from sqlalchemy import delete, select, text

from opm_ml import database
from opm_ml.database.tables import prediction_log, prediction_log_forecast
from opm_ml.forecasting.assessment import assess
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.model_set import load_model_set
from opm_ml.monitoring import scenario
from opm_ml.monitoring.log import PredictionLog
from opm_ml.monitoring.records import Entry, features_json, uuid4_hex

TABLES = (prediction_log, prediction_log_forecast)


@pytest.fixture(scope="module")
def entry(small_registry) -> Entry:
    """One assessed batch of every kind of row the log meets (checked, so it stays mixed)."""
    settings, _ = small_registry
    model_set = load_model_set(settings)
    frame = scenario.forecast_rows(scenario.future(30, seed=5, shifted=False))
    frame = frame.sample(frac=1, random_state=3).reset_index(drop=True)  # stages interleaved
    inflight = frame.index[frame["status_date"].notna()]
    intake = frame.index[frame["status_date"].isna()]
    frame.loc[intake[0], "planned_effort_hours"] = np.nan  # no resource forecast for it
    frame.loc[inflight[0], "planned_effort_hours"] = np.nan
    frame.loc[intake[1], "pm_experience_years"] = np.nan  # a missing feature -> null
    frame.loc[inflight[1], "percent_complete"] = np.nan  # progress from EV / BAC
    frame.loc[intake[3], "percent_complete"] = 40.0  # no status date: intake, no progress
    frame["project_type"] = frame["project_type"].astype(object)
    frame.loc[intake[2], "project_type"] = None  # no reference class
    inputs = ProjectInputs.from_frame(frame, model_set.manifest)
    forecasts = assess(model_set.family_models(), inputs).forecasts
    refs = {f: (m.name, m.version) for f, m in model_set.models.items()}
    assert len(inputs.intake) and len(inputs.inflight) and intake[3] in inputs.intake
    assert np.isnan(forecasts["resource"].quantiles[intake[0], 1])
    assert np.isnan(inputs.features("intake")["pm_experience_years"]).any()
    return Entry("api", datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc), inputs,
                 forecasts, refs)


@pytest.fixture(scope="module")
def entries(small_registry, entry) -> list[Entry]:
    """What the writer meets in one linger window: one-project requests of either stage,
    a small batch, and the mixed entry, from two sources at different times."""
    models = load_model_set(small_registry[0]).family_models()
    inputs = entry.inputs
    parts = [inputs.take([int(inputs.inflight[0])]), inputs.take([int(inputs.intake[0])]),
             inputs.take(slice(4, 9)), inputs.take([int(inputs.inflight[1])])]
    out = [Entry("api" if k % 2 else "score",
                 datetime(2024, 5, 6, 7, 8, k, tzinfo=timezone.utc), part,
                 assess(models, part).forecasts, entry.models)
           for k, part in enumerate(parts)]
    return [*out[:2], entry, *out[2:]]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        yield database.connect(f"sqlite:///{tmp_path / 'rows.db'}")
        return
    try:
        pg_cluster.server_bin()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with pg_cluster.postgres_cluster("opm") as url:
        yield database.connect(url)


def stored(engine, monkeypatch, write) -> dict:
    """Every row of both tables after `write(engine)` on empty tables, the ids made of the
    same random bytes (uuid4 draws 16 at a time, the writer all at once)."""
    stream = random.Random(7)
    monkeypatch.setattr(os, "urandom", lambda k: stream.randbytes(k))
    with engine.begin() as conn:
        for table in reversed(TABLES):
            conn.execute(delete(table))
    write(engine)
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            key = list(table.primary_key.columns)
            typed = conn.execute(select(table).order_by(*key)).all()
            raw = conn.execute(text(f"SELECT * FROM {table.name} ORDER BY "
                                    + ", ".join(c.name for c in key))).all()
            out[table.name] = [tuple(row) for row in typed]
            # The values as stored, JSON text parsed (its spacing is not part of the value).
            out[table.name, "raw"] = [tuple(json.loads(v) if c == "features" and isinstance(
                v, str) else v for c, v in zip(table.columns.keys(), row)) for row in raw]
            if engine.dialect.name == "sqlite":
                kinds = ", ".join(f"typeof({c.name})" for c in table.columns)
                out[table.name, "types"] = conn.execute(text(
                    f"SELECT {kinds} FROM {table.name} ORDER BY "
                    + ", ".join(c.name for c in key))).all()
    return out


def test_the_writer_stores_what_the_dict_per_row_writer_stored(engine, entry, monkeypatch):
    before = stored(engine, monkeypatch, lambda e: reference_write(e, [entry]))
    after = stored(engine, monkeypatch, lambda e: PredictionLog("unused")._write(e, [entry]))
    n = entry.inputs.n
    logged = before["prediction_log"]
    assert len(logged) == n and len(before["prediction_log_forecast"]) < 3 * n
    assert any(v is None for row in logged for v in row[-1].values())  # a null feature
    assert {row[4] for row in logged} == {"intake", "inflight"}
    for key in before:
        assert after[key] == before[key], key


def test_one_write_of_several_entries_stores_what_the_dict_per_row_writer_stored(
        entries, monkeypatch, tmp_path):
    engine = database.connect(f"sqlite:///{tmp_path / 'rows.db'}")
    before = stored(engine, monkeypatch, lambda e: reference_write(e, entries))
    after = stored(engine, monkeypatch, lambda e: PredictionLog("unused")._write(e, entries))
    assert len(before["prediction_log"]) == sum(e.inputs.n for e in entries)
    assert {row[2] for row in before["prediction_log"]} == {"api", "score"}
    for key in before:
        assert after[key] == before[key], key


@pytest.mark.parametrize("values", [
    [[1.5, np.nan, 3.0], [0.1, 2e-7, 1e16]],
    [[np.inf, 1.0, np.nan], [-np.inf, 0.0, -0.0]],  # not JSON: written as json.dumps writes it
])
def test_features_json_is_json_dumps_of_the_row(values):
    names = ["a", "b", "c"]
    matrix = np.array(values)
    expected = [{n: None if v != v else v for n, v in zip(names, row)} for row in values]
    texts = features_json(names, matrix)
    assert [json.loads(t) for t in texts] == expected
    for text_, row in zip(texts, expected):
        if any(v in (np.inf, -np.inf) for v in row.values()):
            assert text_ == json.dumps(row)
    assert features_json([], np.empty((2, 0))) == ["{}", "{}"]


def test_uuid4_hex_are_version_4_uuids():
    ids = uuid4_hex(1000)
    parsed = [uuid.UUID(h) for h in ids]
    assert len(set(ids)) == 1000 and all(p.hex == h for p, h in zip(parsed, ids))
    assert {(p.version, p.variant) for p in parsed} == {(4, uuid.RFC_4122)}
