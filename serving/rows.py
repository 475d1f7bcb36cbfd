"""Validated requests -> the column arrays `opm_ml.features.feature_arrays` takes, without pandas.

A request's projects become one array per contract column (one code path for one row and for
10,000); the features of each stage and the OPM metrics of the in-flight rows are computed once
by `opm_ml.features` and shared by the three models and the response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from opm_ml.contract import INTAKE_COLUMNS
from opm_ml.features import (
    CATEGORICAL_COLUMNS,
    CATEGORIES,
    CATEGORY_CODES,
    StatusMetrics,
    feature_arrays,
    status_metrics,
)

_NUMERIC = tuple(
    c for c in INTAKE_COLUMNS if c not in CATEGORICAL_COLUMNS and c != "start_date"
)
_STATUS_NUMERIC = ("pv", "ev", "ac")


@dataclass(frozen=True)
class ProjectRows:
    """A request's projects as column arrays, split into intake and in-flight rows."""

    n: int
    project_ids: list[str | None]
    columns: dict[str, np.ndarray]  # intake columns: numbers, category codes, start_date [D]
    intake: np.ndarray  # row positions without a status snapshot
    inflight: np.ndarray  # row positions with a status snapshot
    evm: StatusMetrics | None  # OPM metrics of the `inflight` rows
    features: dict[str, dict[str, np.ndarray]]  # stage -> features of its rows

    @classmethod
    def from_requests(cls, items: Sequence) -> ProjectRows:
        n = len(items)
        columns = {c: np.fromiter((getattr(i, c) for i in items), float, n) for c in _NUMERIC}
        for c in CATEGORICAL_COLUMNS:
            codes = CATEGORY_CODES[c]
            columns[c] = np.fromiter((codes[getattr(i, c)] for i in items), float, n)
        columns["start_date"] = np.array([i.start_date for i in items], dtype="datetime64[D]")
        has_status = np.fromiter((i.status is not None for i in items), bool, n)
        intake, inflight = np.flatnonzero(~has_status), np.flatnonzero(has_status)
        features, evm = {}, None
        if len(intake):
            features["intake"] = feature_arrays(_take(columns, intake, n), "intake")
        if len(inflight):
            status = _take(columns, inflight, n)
            reports = [items[k].status for k in inflight]
            status.update({name: np.fromiter((getattr(s, name) for s in reports), float,
                                             len(reports)) for name in _STATUS_NUMERIC})
            status["percent_complete"] = np.fromiter(
                (np.nan if s.percent_complete is None else s.percent_complete for s in reports),
                float, len(reports))
            status["status_date"] = np.array([s.status_date for s in reports],
                                             dtype="datetime64[D]")
            evm = status_metrics(status)
            features["inflight"] = feature_arrays(status, "inflight", evm)
        return cls(n, [i.project_id for i in items], columns, intake, inflight, evm, features)

    def rows_of(self, stage: str) -> np.ndarray:
        """Row positions scored by the intake or the in-flight model."""
        return self.inflight if stage == "inflight" else self.intake

    def category(self, name: str, positions: np.ndarray) -> list[str]:
        return [CATEGORIES[name][int(code)] for code in self.columns[name][positions]]


def _take(columns: dict[str, np.ndarray], positions: np.ndarray, n: int) -> dict:
    """The columns at `positions` (the arrays themselves when that is every row)."""
    if len(positions) == n:
        return dict(columns)
    return {name: values[positions] for name, values in columns.items()}


# The last day an ISO date (and Python's `date`) can hold.
LAST_DATE = np.datetime64("9999-12-31")


def iso_dates(days: np.ndarray) -> np.ndarray:
    """datetime64[D] values as ISO text; None where undefined (NaT) or after 9999-12-31.

    Such dates come from absurd extrapolations (e.g. the delay forecast of a project that has
    earned almost nothing) and no ISO date can write them, so they are left out, not malformed.
    """
    text = np.datetime_as_string(days, unit="D").astype(object)
    text[np.isnat(days) | (days > LAST_DATE)] = None
    return text


def metric_dicts(evm: StatusMetrics) -> list[dict]:
    """Per snapshot, metric -> JSON value (null where undefined, the finish date as ISO text)."""
    columns = {m: np.where(np.isnan(v), None, v).tolist() for m, v in evm.values.items()}
    finish = np.datetime_as_string(evm.forecast_finish, unit="D")
    columns["forecast_finish_date"] = np.where(np.isnat(evm.forecast_finish), None, finish).tolist()
    return [dict(zip(columns, values)) for values in zip(*columns.values())]
