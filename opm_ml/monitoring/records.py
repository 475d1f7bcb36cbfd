"""What the prediction log writes: one forecast request as rows of the two log tables.

`Entry` is captured on the hot path (references to the request's inputs and forecast arrays,
nothing copied or converted); `entries_rows` turns the queued entries into table rows in the
writer thread, so a request pays for a timestamp and a queue append, not for building
dictionaries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, repeat

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
    """`entries_rows` of one entry."""
    return entries_rows([entry])


def entries_rows(entries: Sequence[Entry]) -> tuple[list[tuple], list[tuple]]:
    """(prediction_log rows, prediction_log_forecast rows) of queued entries, in their order:
    tuples in the tables' column order, the features as JSON text.

    Built a column at a time across all the entries (numpy, then one list per column zipped
    into rows), each entry handing over array references only. The writer holds the GIL
    meanwhile: converting a linger window of one-project requests one entry at a time took the
    API ~10 % of its requests/s at concurrency 1 (docs/benchmarks.md).
    """
    inputs = [e.inputs for e in entries]
    sizes = [i.n for i in inputs]
    starts = np.cumsum([0, *sizes])[:-1].tolist()
    total = sum(sizes)
    ids = uuid4_hex(total)
    inflight = np.concatenate([i.inflight_mask for i in inputs])
    status = np.concatenate([_dates(i.columns.get("status_date"), i.n) for i in inputs])
    status = np.where(inflight, status.astype(object), None)  # NaT -> None as well
    progress = np.where(inflight, _progress(inputs), np.nan)
    groups = chain.from_iterable(
        repeat(None, i.n) if (g := i.columns.get(i.manifest.reference_class or "")) is None
        else map(_text, g) for i in inputs)
    log_rows = list(zip(
        ids, chain.from_iterable(repeat(e.logged_at, k) for e, k in zip(entries, sizes)),
        chain.from_iterable(repeat(e.source, k) for e, k in zip(entries, sizes)),
        map(_text, chain.from_iterable(i.ids for i in inputs)),
        np.where(inflight, "inflight", "intake").tolist(), status.tolist(), _floats(progress),
        groups, _features(inputs, starts, total)))
    return log_rows, _forecast_rows(entries, starts, ids)


def _features(inputs: list[ProjectInputs], starts: list[int], total: int) -> list:
    """Each row's features as JSON text: one matrix per stage and feature set."""
    parts: dict[tuple, list] = {}  # (stage, names) -> [(row positions, feature arrays)]
    for start, i in zip(starts, inputs):
        for stage in STAGES:
            rows = i.rows_of(stage)
            if len(rows):  # (a stage without rows has no features to compute)
                features = i.features(stage)
                parts.setdefault((stage, tuple(features)), []).append((rows + start, features))
    texts: list = [None] * total
    for (_, names), group in parts.items():
        positions = np.concatenate([rows for rows, _ in group]).tolist()
        if not names:
            matrix = np.empty((len(positions), 0))
        else:  # (F, rows) per entry, side by side, transposed: one array call per entry
            matrix = np.concatenate([np.array([f[n] for n in names]) for _, f in group],
                                    axis=1).T
        for pos, text in zip(positions, features_json(names, matrix)):
            texts[pos] = text
    return texts


def _forecast_rows(entries: Sequence[Entry], starts: list[int], ids: list[str]) -> list[tuple]:
    """Every entry's family forecasts with a plan and a P50, entry by entry, family by family."""
    rows, planned, quantiles, late, thresholds, labels = [], [], [], [], [], []
    for start, entry in zip(starts, entries):
        inputs, n = entry.inputs, entry.inputs.n
        for name, batch in entry.forecasts.items():
            plan = inputs.columns.get(batch.family.planned)
            if plan is None:
                continue  # no forecast of this family: the rows lack its planned value
            rows.append(np.arange(start, start + n))
            planned.append(plan)
            quantiles.append(batch.quantiles)
            p_late = batch.values.get("probability_late")
            late.append(np.full(n, np.nan) if p_late is None else p_late)
            thresholds.append(np.nan if batch.late_threshold is None else batch.late_threshold)
            model_name, version = entry.models[name]
            labels.append((name, model_name, str(version)))
    if not rows:
        return []
    counts = [len(r) for r in rows]
    late = np.concatenate(late).astype(float)
    values = np.column_stack([np.concatenate(planned).astype(float), np.concatenate(quantiles),
                              late, np.where(np.isnan(late), np.nan,
                                             np.repeat(thresholds, counts))])
    kept = np.flatnonzero(~np.isnan(values[:, 0]) & ~np.isnan(values[:, 2]))  # plan, P50
    label = np.repeat(np.arange(len(labels)), counts)[kept].tolist()
    return list(zip([ids[i] for i in np.concatenate(rows)[kept].tolist()],
                    *zip(*(labels[j] for j in label)), *_floats(values[kept].T)))


def uuid4_hex(n: int) -> list[str]:
    """`uuid.uuid4().hex` n times, from one draw of random bytes (the same bytes, versions and
    variant bits as uuid4; a UUID object per row was a third of the cost of its rows)."""
    raw = np.frombuffer(os.urandom(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40  # version 4
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80  # variant RFC 4122
    text = raw.tobytes().hex()
    return [text[i:i + 32] for i in range(0, 32 * n, 32)]


def features_json(names: Sequence[str], matrix: np.ndarray) -> list[str]:
    """Each row of the (n, F) `matrix` as a JSON object of `names`, NaN as null.

    orjson writes it (under a tenth of the cost of `json.dumps`); a row holding an infinite value is
    written by `json.dumps` as before (`Infinity`), where orjson would write null.
    """
    infinite = np.isinf(matrix).any(axis=1).tolist()
    return [json.dumps({k: None if v != v else v for k, v in zip(names, values)}) if inf
            else orjson.dumps(dict(zip(names, values))).decode()  # NaN -> null
            for values, inf in zip(matrix.tolist(), infinite)]


def _progress(inputs: list[ProjectInputs]) -> np.ndarray:
    """Percent complete per row: as reported, else earned value / budget (the EVM reading)."""
    pct = _numbers(inputs, "percent_complete")
    earned = 100 * _numbers(inputs, "ev") / _numbers(inputs, "budget_at_completion")
    return np.where(np.isnan(pct), earned, pct)


def _numbers(inputs: list[ProjectInputs], name: str) -> np.ndarray:
    """Column `name` of every entry's inputs as one float array, NaN where an entry lacks it."""
    return np.concatenate([np.full(i.n, np.nan) if (c := i.columns.get(name)) is None
                           else np.asarray(c, dtype=float) for i in inputs])


def _dates(values, n: int) -> np.ndarray:
    """Dates as datetime64[D] (NaT for a missing column)."""
    if values is None:
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.asarray(values).astype("datetime64[D]")


def _floats(values) -> list:
    """Floats as Python values, NaN as None (SQL NULL), for any array shape."""
    array = np.asarray(values, dtype=float)
    out = array.astype(object)
    out[np.isnan(array)] = None
    return out.tolist()


def _text(value) -> str | None:
    return None if value is None else str(value)
