"""Public entry points: `evm_frame` for a DataFrame of snapshots, `evm_single` for one snapshot.

Both validate their inputs, turn them into aligned numpy arrays and run the same `_evaluate`
core, so the two can never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real

import numpy as np
import pandas as pd

from opm_ml.opm_metrics.consistency import above_bac
from opm_ml.opm_metrics.formulas import DAY, METRIC_COLUMNS, metrics
from opm_ml.opm_metrics.schedule import earned_schedule_days

INPUT_COLUMNS: tuple[str, ...] = (
    "bac", "pv", "ev", "ac", "start_date", "planned_duration_days", "status_date",
)
_AMOUNTS = ("bac", "pv", "ev", "ac", "planned_duration_days")
_DATES = ("start_date", "status_date")
_NUMERIC = METRIC_COLUMNS[:-1]


@dataclass(frozen=True, slots=True)
class EvmResult:
    """EVM and ES metrics of one snapshot; None where undefined, explained in `reasons`."""

    sv: float | None
    cv: float | None
    spi: float | None
    cpi: float | None
    eac_cpi: float | None
    eac_plan_rate: float | None
    eac_cpi_spi: float | None
    etc: float | None
    vac: float | None
    tcpi_bac: float | None
    tcpi_eac: float | None
    es_days: float | None
    at_days: float | None
    sv_t_days: float | None
    spi_t: float | None
    ieac_t_days: float | None
    forecast_finish_date: dt.date | None
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The metrics and `reasons` as a plain dict (JSON-ready apart from the date)."""
        return asdict(self)


def evm_frame(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Earned value and earned schedule metrics for every row of a snapshot table.

    Input columns: `bac, pv, ev, ac` (currency), `start_date`, `status_date` (datetime64 or
    datetime.date) and `planned_duration_days`; optional `project_id`. Rows may be in any
    order and projects interleaved. Returns a frame on the same index with the columns
    METRIC_COLUMNS (Float64, pd.NA where undefined; `forecast_finish_date` datetime64[s] with
    NaT) and `undefined` ("metric: reason; ..." for the null metrics, "" when none).

    Baseline rule for earned schedule: a project's time-phased PV curve is the polyline
    through (start, 0), every (status_date, pv) of its snapshots on or after the start, and
    (start + planned_duration_days, bac). All snapshots of a project contribute, later ones
    included, because the baseline is known in advance; without `project_id` each row is its
    own project. ES is Lipke's C + I in calendar days: C is the last knot with PV <= EV (so
    where PV stays flat at EV, ES is the end of the flat stretch), I interpolates linearly to
    the next knot, and ES stops at the planned finish; SPI(t) = ES / AT,
    IEAC(t) = planned duration / SPI(t), and the forecast finish is start + IEAC(t) rounded
    to whole days.

    Undefined values (pv, ac or ev of 0 in a denominator, status before start, AT = 0,
    bac = ac for TCPI, ac > bac for TCPI to BAC, no work left for TCPI to EAC, numeric overflow)
    are null with a reason. Raises ValueError, naming the column, for a missing column, a
    wrong dtype, missing or negative values, pv or ev above bac, pv > 0 before the start,
    bac/start/duration differing within a project, or a PV baseline that decreases.
    """
    missing = [c for c in INPUT_COLUMNS if c not in snapshots.columns]
    if missing:
        raise ValueError(f"snapshots lack column(s) {missing}; required: {list(INPUT_COLUMNS)}")
    inputs = {c: _numeric_column(snapshots[c], c) for c in _AMOUNTS}
    inputs |= {c: _date_column(snapshots[c], c) for c in _DATES}
    project, name_of, where_row = _projects(snapshots)
    values, reasons, texts = _evaluate(inputs, project, None, where_row, name_of)

    data: dict[str, object] = {}
    for m in _NUMERIC:
        undefined = reasons[m] > 0
        data[m] = pd.arrays.FloatingArray(np.where(undefined, 0.0, values[m]), undefined)
    data["forecast_finish_date"] = _forecast_finish(values, reasons)
    data["undefined"] = pd.array(_undefined_text(reasons, texts), dtype="str")
    return pd.DataFrame(data, index=snapshots.index)


def evm_single(
    *,
    bac: float,
    pv: float,
    ev: float,
    ac: float,
    start_date: dt.date,
    planned_duration_days: float,
    status_date: dt.date,
    pv_curve: Sequence[tuple[dt.date, float]] | None = None,
) -> EvmResult:
    """The metrics of one snapshot, with the same rules and errors as `evm_frame`.

    `pv_curve` holds further known (date, pv) points of the project's baseline (for example
    the planned value at each month end); the baseline always also runs through (start, 0),
    (status_date, pv) and (planned finish, bac).
    """
    amounts = {"bac": bac, "pv": pv, "ev": ev, "ac": ac,
               "planned_duration_days": planned_duration_days}
    inputs = {name: np.array([_number(value, name)]) for name, value in amounts.items()}
    inputs["start_date"] = _dates([start_date], "start_date")
    inputs["status_date"] = _dates([status_date], "status_date")
    start = inputs["start_date"][0]
    curve = None if pv_curve is None else _curve_points(pv_curve, start, inputs["bac"][0])
    values, reasons, texts = _evaluate(
        inputs, np.zeros(1, dtype=np.intp), curve, lambda i: "the snapshot",
        lambda g: "the project",
    )
    fields = {m: None if reasons[m][0] else float(values[m][0]) for m in _NUMERIC}
    finish = values["forecast_finish_date"][0].astype("datetime64[D]").item()
    return EvmResult(
        **fields,
        forecast_finish_date=None if reasons["forecast_finish_date"][0] else finish,
        reasons={m: texts[m][reasons[m][0] - 1] for m in METRIC_COLUMNS if reasons[m][0]},
    )


def evm_columns(bac: np.ndarray, pv: np.ndarray, ev: np.ndarray, ac: np.ndarray,
                start_date: np.ndarray, planned_duration_days: np.ndarray,
                status_date: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """The metrics of aligned snapshot arrays, each its own project, with no frame or
    `EvmResult` around them (the features and the forecasts' OPM metrics read arrays).

    Returns per metric but the date the float values (NaN where undefined), the forecast
    finish (datetime64[s], NaT where undefined) and per snapshot `evm_frame`'s "metric:
    reason; ..." text. The checks and their messages are `evm_single`'s for one snapshot
    ("the snapshot") and `evm_frame`'s for more ("row 3", counted from 0).
    """
    single = len(bac) == 1
    amounts = {"bac": bac, "pv": pv, "ev": ev, "ac": ac,
               "planned_duration_days": planned_duration_days}
    inputs = {name: np.asarray(values, dtype=np.float64) for name, values in amounts.items()}
    for name, values in (("start_date", start_date), ("status_date", status_date)):
        inputs[name] = np.asarray(values).astype("datetime64[s]")
        if np.isnat(inputs[name]).any():
            raise ValueError(f"{name} is missing (NaT)" if single
                             else f"{name} has missing dates")

    def row(i: int) -> str:
        return "the snapshot" if single else f"row {i!r}"

    values, reasons, texts = _evaluate(inputs, np.arange(len(bac)), None, row,
                                       (lambda g: "the project") if single else row)
    undefined = np.array([reasons[m] for m in _NUMERIC]) > 0  # one (metrics, n) pass
    table = np.where(undefined, np.nan, np.array([values[m] for m in _NUMERIC]))
    numbers = dict(zip(_NUMERIC, table))
    return numbers, _forecast_finish(values, reasons), list(_undefined_text(reasons, texts))


def _forecast_finish(values, reasons) -> np.ndarray:
    """The forecast finish dates (datetime64[s]), NaT where undefined."""
    return np.where(reasons["forecast_finish_date"] > 0, np.datetime64("NaT", "s"),
                    values["forecast_finish_date"])


def _evaluate(inputs, project, curve, where_row: Callable, name_of: Callable):
    """Shared core: validated arrays (one element per snapshot) -> `formulas.metrics` output."""
    _check_amounts(inputs, where_row)
    start, status = inputs["start_date"], inputs["status_date"]
    at = (status - start).astype(np.int64) / DAY
    n_projects = int(project.max()) + 1 if len(project) else 0
    first = np.full(n_projects, len(project), dtype=np.intp)
    np.minimum.at(first, project, np.arange(len(project)))  # first row of each project
    for name in ("bac", "planned_duration_days", "start_date"):
        differs = inputs[name] != inputs[name][first][project]
        if differs.any():
            raise ValueError(f"{name} must be the same in every snapshot of a project; "
                             f"{where_row(int(np.flatnonzero(differs)[0]))} differs")
    pv, ev = inputs["pv"], inputs["ev"]
    early = (at < 0) & (pv > 0)
    if early.any():
        raise ValueError(f"pv must be 0 before start_date; {_bad_rows(early, where_row)}")
    own = at >= 0
    points = (project[own], at[own], pv[own])
    if curve is not None:
        points = tuple(np.concatenate(pair) for pair in zip(points, curve, strict=True))

    def describe(g: int, t: float, value: float) -> str:
        day = start[first[g]] + np.timedelta64(round(t * DAY), "s")
        return f"pv={value:g} on {day.astype('datetime64[D]')} in {name_of(g)}"

    bac_p, duration_p = inputs["bac"][first], inputs["planned_duration_days"][first]
    es = earned_schedule_days(ev, project, bac_p, duration_p, points, describe)
    return metrics(inputs["bac"], pv, ev, inputs["ac"], start, at,
                   inputs["planned_duration_days"], es)


def _projects(snapshots: pd.DataFrame) -> tuple[np.ndarray, Callable, Callable]:
    """Project code (0..P-1) of each row, and how to name a project and a row in errors."""
    index = snapshots.index

    def row_name(i: int) -> str:
        return f"row {index[i]!r}"

    if "project_id" not in snapshots.columns:
        return np.arange(len(snapshots)), row_name, row_name
    if snapshots["project_id"].isna().any():
        raise ValueError("project_id has missing values; every snapshot needs its project")
    project, labels = pd.factorize(snapshots["project_id"])

    def project_name(g: int) -> str:
        return f"project {labels[g]!r}"

    def row_of_project(i: int) -> str:
        return f"{row_name(i)} of {project_name(project[i])}"

    return project, project_name, row_of_project


def _check_amounts(inputs: dict[str, np.ndarray], where_row: Callable) -> None:
    """Amounts must be finite, non-negative (bac and duration positive), pv and ev <= bac."""
    for name in _AMOUNTS:
        bad = ~np.isfinite(inputs[name])
        if bad.any():
            raise ValueError(f"{name} must be a finite number (not missing); "
                             f"{_bad_rows(bad, where_row)}")
        strict = name in ("bac", "planned_duration_days")
        bad = inputs[name] <= 0 if strict else inputs[name] < 0
        if bad.any():
            raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}; "
                             f"{_bad_rows(bad, where_row)} has {inputs[name][bad][0]:g}")
    for name in ("pv", "ev"):
        bad = above_bac(inputs[name], inputs["bac"])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} exceeds bac; {_bad_rows(bad, where_row)} has "
                             f"{name}={inputs[name][i]:g} > bac={inputs['bac'][i]:g}")


def _bad_rows(bad: np.ndarray, where_row: Callable) -> str:
    rows = np.flatnonzero(bad)
    more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
    return f"{where_row(int(rows[0]))}{more}"


def _undefined_text(reasons: dict, texts: dict) -> np.ndarray:
    """The "metric: reason; ..." text per row, built once per distinct combination."""
    if len(reasons["sv"]) == 1:  # one snapshot: its digits as they are, nothing to share
        return np.array([_text({m: int(reasons[m][0]) for m in METRIC_COLUMNS}, texts)],
                        dtype=object)
    code = np.zeros(len(reasons["sv"]), dtype=np.int64)
    weight = 1
    for m in METRIC_COLUMNS:  # mixed-radix number: one digit (reason index) per metric
        code += reasons[m].astype(np.int64) * weight
        weight *= len(texts[m]) + 1
    codes, uniques = pd.factorize(code)
    labels = np.array([_decode(int(c), texts) for c in uniques] or [""], dtype=object)
    return labels[codes]


def _decode(code: int, texts: dict) -> str:
    digits = {}
    for m in METRIC_COLUMNS:
        code, digits[m] = divmod(code, len(texts[m]) + 1)
    return _text(digits, texts)


def _text(digits: dict[str, int], texts: dict) -> str:
    """Metric -> reason index (0: defined) as "metric: reason; ..."."""
    return "; ".join(f"{m}: {texts[m][d - 1]}" for m, d in digits.items() if d)


def _numeric_column(column: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise ValueError(f"{name} must be numeric, got dtype {column.dtype}")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _date_column(column: pd.Series, name: str) -> np.ndarray:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        raise ValueError(f"{name} must be timezone-naive dates, got {column.dtype}")
    if not pd.api.types.is_datetime64_dtype(column):
        if pd.api.types.infer_dtype(column, skipna=True) not in ("date", "datetime"):
            raise ValueError(f"{name} must hold dates (datetime64 or datetime.date), got dtype "
                             f"{column.dtype}; parse text with pd.to_datetime first")
        column = pd.to_datetime(column)
    values = column.to_numpy().astype("datetime64[s]")
    if np.isnat(values).any():
        raise ValueError(f"{name} has missing dates")
    return values


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _dates(values: Sequence, name: str) -> np.ndarray:
    """Naive dates (datetime.date, datetime, pd.Timestamp, np.datetime64) -> datetime64[s]."""
    for value in values:
        if not isinstance(value, (dt.date, np.datetime64)):  # pd.Timestamp is a datetime
            raise ValueError(f"{name} must be a date, got {type(value).__name__}")
        if getattr(value, "tzinfo", None) is not None:
            raise ValueError(f"{name} must be timezone-naive, got {value}")
    out = np.array(values, dtype="datetime64[s]")
    if np.isnat(out).any():
        raise ValueError(f"{name} is missing (NaT)")
    return out


def _curve_points(pv_curve, start: np.datetime64, bac: float) -> tuple[np.ndarray, ...]:
    """`pv_curve` (date, pv) pairs -> (project 0, days since start, pv) for points >= start."""
    pairs = list(pv_curve)
    if not pairs:
        return np.zeros(0, dtype=np.intp), np.zeros(0), np.zeros(0)
    try:
        dates, pv = zip(*pairs, strict=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"pv_curve must be a sequence of (date, pv) pairs: {err}") from err
    days = (_dates(dates, "pv_curve dates") - start).astype(np.int64)
    pv = np.array([_number(v, "pv_curve values") for v in pv])
    t = days / DAY
    if not np.isfinite(pv).all() or (pv < 0).any():
        raise ValueError("pv_curve values must be finite and >= 0")
    if above_bac(pv, np.float64(bac)).any():
        raise ValueError(f"pv_curve exceeds bac={bac:g}")
    if ((t < 0) & (pv > 0)).any():
        raise ValueError("pv_curve must be 0 before start_date")
    keep = t >= 0
    return np.zeros(int(keep.sum()), dtype=np.intp), t[keep], pv[keep]
