"""Validated requests -> numpy columns, OPM metrics and model features, without pandas.

`opm_ml.features.build_features` is the one definition of the features; on one row its pandas
machinery costs several milliseconds, more than the whole latency budget of an assessment. This
module computes the same features with plain numpy on column arrays (one code path for one row
and for 10,000), and the serving tests assert it matches `build_features` on generated data.
The OPM metrics of in-flight rows are computed once and shared by the features of all three
models and the response.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.contract import INTAKE_COLUMNS, column
from opm_ml.features import CATEGORICAL_COLUMNS
from opm_ml.opm_metrics import METRIC_COLUMNS, evm_frame, evm_single

_NUMERIC = tuple(
    c for c in INTAKE_COLUMNS if c not in CATEGORICAL_COLUMNS and c != "start_date"
)
_CODES = {c: {v: float(i) for i, v in enumerate(column("projects", c).categories)}
          for c in CATEGORICAL_COLUMNS}
CATEGORIES = {c: column("projects", c).categories for c in CATEGORICAL_COLUMNS}
# Same constant as opm_ml.features: planned hours a full-time person works per calendar day.
_HOURS_PER_PERSON_DAY = 40.0 / 7.0


@dataclass(frozen=True)
class Evm:
    """OPM metrics of the in-flight rows: float arrays (NaN = undefined), finish dates, reasons."""

    values: dict[str, np.ndarray]
    forecast_finish: np.ndarray  # datetime64[D], NaT where undefined
    reasons: list[dict[str, str]]


@dataclass(frozen=True)
class ProjectRows:
    """A request's projects as column arrays; in-flight rows also carry status and OPM metrics."""

    n: int
    project_ids: list[str | None]
    columns: dict[str, np.ndarray]  # intake numbers as float, categories as contract codes
    start: np.ndarray  # datetime64[D]
    intake: np.ndarray  # row positions without a status snapshot
    inflight: np.ndarray  # row positions with a status snapshot
    status: dict[str, np.ndarray]  # for the `inflight` rows only
    evm: Evm | None

    @classmethod
    def from_requests(cls, items: Sequence) -> ProjectRows:
        n = len(items)
        columns = {c: np.fromiter((getattr(i, c) for i in items), float, n) for c in _NUMERIC}
        for c in CATEGORICAL_COLUMNS:
            codes = _CODES[c]
            columns[c] = np.fromiter((codes[getattr(i, c)] for i in items), float, n)
        start = np.array([i.start_date for i in items], dtype="datetime64[D]")
        has_status = np.fromiter((i.status is not None for i in items), bool, n)
        intake, inflight = np.flatnonzero(~has_status), np.flatnonzero(has_status)
        reports = [items[k].status for k in inflight]
        status = {
            name: np.fromiter((getattr(s, name) for s in reports), float, len(reports))
            for name in ("pv", "ev", "ac")
        }
        status["percent_complete"] = np.fromiter(
            (np.nan if s.percent_complete is None else s.percent_complete for s in reports),
            float, len(reports),
        )
        status["status_date"] = np.array([s.status_date for s in reports], dtype="datetime64[D]")
        evm = None
        if len(inflight):
            evm = opm_metrics(columns["budget_at_completion"][inflight],
                              columns["planned_duration_days"][inflight], start[inflight], status)
        return cls(n, [i.project_id for i in items], columns, start, intake, inflight, status, evm)

    def rows_of(self, stage: str) -> np.ndarray:
        """Row positions scored by the intake or the in-flight model."""
        return self.inflight if stage == "inflight" else self.intake

    def category(self, name: str, positions: np.ndarray) -> list[str]:
        return [CATEGORIES[name][int(code)] for code in self.columns[name][positions]]


def opm_metrics(bac: np.ndarray, duration: np.ndarray, start: np.ndarray, status: dict) -> Evm:
    """OPM metrics of aligned snapshots: `evm_single` for one (fast), `evm_frame` for a batch."""
    if len(bac) == 1:
        result = evm_single(
            bac=float(bac[0]), pv=float(status["pv"][0]), ev=float(status["ev"][0]),
            ac=float(status["ac"][0]), start_date=start[0].item(),
            planned_duration_days=float(duration[0]), status_date=status["status_date"][0].item(),
        )
        values = {m: np.array([np.nan if getattr(result, m) is None else getattr(result, m)])
                  for m in METRIC_COLUMNS[:-1]}
        finish = np.array([result.forecast_finish_date or "NaT"], dtype="datetime64[D]")
        return Evm(values, finish, [dict(result.reasons)])
    metrics = evm_frame(pd.DataFrame({
        "bac": bac, "pv": status["pv"], "ev": status["ev"], "ac": status["ac"],
        "start_date": start, "planned_duration_days": duration,
        "status_date": status["status_date"],
    }))
    values = {m: metrics[m].to_numpy(dtype=float, na_value=np.nan) for m in METRIC_COLUMNS[:-1]}
    finish = metrics["forecast_finish_date"].to_numpy().astype("datetime64[D]")
    parsed: dict[str, dict[str, str]] = {}  # few distinct texts: parse each once
    reasons = [parsed[t] if t in parsed else parsed.setdefault(t, parse_undefined(t))
               for t in metrics["undefined"].tolist()]
    return Evm(values, finish, reasons)


def parse_undefined(text: str) -> dict[str, str]:
    """`evm_frame`'s `"cpi: ac is 0; etc: ..."` -> `{"cpi": "ac is 0", ...}`."""
    return dict(part.split(": ", 1) for part in text.split("; ")) if text else {}


def features(rows: ProjectRows, stage: str, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Feature name -> values for the rows at `positions` (as `build_features` computes them)."""
    c = {name: values[positions] for name, values in rows.columns.items()}
    budget, effort = c["budget_at_completion"], c["planned_effort_hours"]
    duration, team = c["planned_duration_days"], c["planned_team_size"]
    out = dict(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_budget"] = np.log(budget)
        out["log_effort_hours"] = np.log(effort)
        out["log_duration_days"] = np.log(duration)
        out["hours_per_day"] = effort / duration
        out["team_utilisation"] = effort / (team * duration * _HOURS_PER_PERSON_DAY)
        out["cost_per_hour"] = budget / effort
    out["risk_exposure"] = c["num_identified_risks"] * c["mean_risk_severity"]
    start = rows.start[positions]
    out["start_month"] = (start.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(float)
    if stage == "inflight":
        out.update(_status_features(rows, bac=budget, duration=duration))
    return out


def _status_features(rows: ProjectRows, bac: np.ndarray, duration: np.ndarray) -> dict:
    m, s = rows.evm.values, rows.status
    pct = s["percent_complete"]
    return {
        "percent_complete": pct,
        "elapsed_fraction": m["at_days"] / duration,
        "pv_fraction": s["pv"] / bac,
        "ev_fraction": s["ev"] / bac,
        "ac_fraction": s["ac"] / bac,
        "spi": m["spi"],
        "cpi": m["cpi"],
        "spi_t": m["spi_t"],
        "sv_t_fraction": m["sv_t_days"] / duration,
        "es_fraction": m["es_days"] / duration,
        "eac_cpi_ratio": m["eac_cpi"] / bac,
        "eac_cpi_spi_ratio": m["eac_cpi_spi"] / bac,
        "ieac_t_ratio": m["ieac_t_days"] / duration,
        "tcpi_bac": m["tcpi_bac"],
        "progress_gap": pct / 100.0 - s["ev"] / bac,
    }


def feature_matrix(values: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """Columns in the model's order, as the float64 matrix LightGBM predicts on."""
    return np.column_stack([values[name] for name in names]).astype(np.float64, copy=False)


def metric_dicts(evm: Evm) -> list[dict]:
    """Per snapshot, metric -> JSON value (null where undefined, the finish date as ISO text)."""
    columns = {m: np.where(np.isnan(v), None, v).tolist() for m, v in evm.values.items()}
    finish = np.datetime_as_string(evm.forecast_finish, unit="D")
    columns["forecast_finish_date"] = np.where(np.isnat(evm.forecast_finish), None, finish).tolist()
    return [dict(zip(columns, values)) for values in zip(*columns.values())]
