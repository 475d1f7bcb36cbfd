"""The one feature computation: raw contract columns in, model features out (training and serving).

`feature_arrays(columns, stage)` is the core: numpy column arrays of the intake columns (plus,
in flight, the latest status snapshot `status_date, pv, ev, ac, percent_complete`) in, feature
arrays out, with the same lines for one row and for 100,000. `build_features(frame, stage)`
validates a DataFrame and runs the core on its columns (training, the MLflow pyfunc); serving
runs the core on its validated request columns directly, since pandas costs milliseconds a row.
Every feature is a contract attribute or scale-free (ratios to BAC, to planned duration, EVM
indices), so one model serves portfolios of any currency or size. Categories are coded in the
contract's order, so codes are stable between training and serving; an unknown category is an
error, not a NaN. `FeatureBuilder` wraps `build_features` as the first step of every pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from opm_ml.contract import INTAKE_COLUMNS, ROLE_SHARE_COLUMNS, column
from opm_ml.opm_metrics import METRIC_COLUMNS, evm_frame, evm_single

CATEGORICAL_COLUMNS = ("project_type", "sector", "region", "methodology")
STATUS_INPUT_COLUMNS = ("status_date", "pv", "ev", "ac", "percent_complete")
# percent_complete may be missing in a status report; the other four define the snapshot.
REQUIRED_STATUS_COLUMNS = ("status_date", "pv", "ev", "ac")
CATEGORIES: dict[str, tuple[str, ...]] = {
    c: tuple(column("projects", c).categories) for c in CATEGORICAL_COLUMNS
}
# Category -> code as `feature_arrays` expects it (the position in the contract's list).
CATEGORY_CODES: dict[str, dict[str, float]] = {
    c: {value: float(i) for i, value in enumerate(values)} for c, values in CATEGORIES.items()
}

_RAW_NUMERIC = (
    "planned_duration_days", "budget_at_completion", "planned_effort_hours", "planned_team_size",
    *ROLE_SHARE_COLUMNS, "complexity", "requirements_volatility", "num_vendors",
    "num_dependencies", "pm_experience_years", "strategic_fit", "expected_roi",
    "num_identified_risks", "mean_risk_severity",
)
_DERIVED_INTAKE = (
    "log_budget", "log_effort_hours", "log_duration_days", "hours_per_day",
    "team_utilisation", "cost_per_hour", "risk_exposure", "start_month",
)
INTAKE_FEATURES: tuple[str, ...] = (*CATEGORICAL_COLUMNS, *_RAW_NUMERIC, *_DERIVED_INTAKE)
STATUS_FEATURES: tuple[str, ...] = (
    "percent_complete", "elapsed_fraction", "pv_fraction", "ev_fraction", "ac_fraction",
    "spi", "cpi", "spi_t", "sv_t_fraction", "es_fraction", "eac_cpi_ratio",
    "eac_cpi_spi_ratio", "ieac_t_ratio", "tcpi_bac", "progress_gap",
)
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "intake": INTAKE_FEATURES,
    "inflight": INTAKE_FEATURES + STATUS_FEATURES,
}
# EAC/BAC and IEAC(t)/plan beyond these are measurement noise, not forecasts (see _bounded_ratio).
INDEX_RATIO_BOUNDS = (0.1, 10.0)
# Planned hours a full-time person works per calendar day (40 h / 7 days).
_HOURS_PER_PERSON_DAY = 40.0 / 7.0


@dataclass(frozen=True)
class StatusMetrics:
    """OPM metrics of aligned status snapshots as arrays, shared by features and responses."""

    values: dict[str, np.ndarray]  # METRIC_COLUMNS but the date: float, NaN where undefined
    forecast_finish: np.ndarray  # datetime64[D], NaT where undefined
    undefined: list[str]  # per snapshot, `evm_frame`'s "metric: reason; ..." ("" when none)

    def reasons(self) -> list[dict[str, str]]:
        """Per snapshot, undefined metric -> reason (`{"cpi": "ac is 0", ...}`)."""
        parsed: dict[str, dict[str, str]] = {}  # few distinct texts: parse each once
        for text in set(self.undefined):
            parsed[text] = dict(p.split(": ", 1) for p in text.split("; ")) if text else {}
        return [parsed[text] for text in self.undefined]


def status_metrics(columns: Mapping[str, np.ndarray]) -> StatusMetrics:
    """OPM metrics of the snapshots in `columns` (contract names; each row its own project).

    Needs `budget_at_completion, planned_duration_days, start_date, status_date, pv, ev, ac`.
    One snapshot goes through `evm_single` (microseconds), more through `evm_frame`; both run
    the same `opm_metrics` core and raise ValueError naming the field for inconsistent input.
    """
    bac, duration = columns["budget_at_completion"], columns["planned_duration_days"]
    start, status = columns["start_date"], columns["status_date"]
    pv, ev, ac = columns["pv"], columns["ev"], columns["ac"]
    if len(bac) == 1:
        result = evm_single(
            bac=float(bac[0]), pv=float(pv[0]), ev=float(ev[0]), ac=float(ac[0]),
            start_date=start[0], planned_duration_days=float(duration[0]),
            status_date=status[0],
        )
        values = {m: np.array([np.nan if getattr(result, m) is None else getattr(result, m)])
                  for m in METRIC_COLUMNS[:-1]}
        finish = np.array([result.forecast_finish_date or "NaT"], dtype="datetime64[D]")
        undefined = "; ".join(f"{m}: {reason}" for m, reason in result.reasons.items())
        return StatusMetrics(values, finish, [undefined])
    metrics = evm_frame(pd.DataFrame({
        "bac": bac, "pv": pv, "ev": ev, "ac": ac, "start_date": start,
        "planned_duration_days": duration, "status_date": status,
    }))
    values = {m: metrics[m].to_numpy(dtype=float, na_value=np.nan) for m in METRIC_COLUMNS[:-1]}
    finish = metrics["forecast_finish_date"].to_numpy().astype("datetime64[D]")
    return StatusMetrics(values, finish, metrics["undefined"].tolist())


def feature_arrays(columns: Mapping[str, np.ndarray], stage: str = "intake",
                   metrics: StatusMetrics | None = None) -> dict[str, np.ndarray]:
    """Feature name -> float array for `stage`, in `FEATURE_SETS[stage]` order.

    `columns` holds aligned arrays: the intake numbers as float, the categories as
    `CATEGORY_CODES` (NaN = missing), `start_date` as datetime64; in flight also `pv, ev, ac,
    percent_complete` (NaN = not reported) and `status_date`. `metrics`: the snapshots' OPM
    metrics when the caller has them already (serving shares them with its response).
    """
    if stage not in FEATURE_SETS:
        raise ValueError(f"stage must be one of {', '.join(FEATURE_SETS)}, got {stage!r}")
    out = {name: columns[name] for name in (*CATEGORICAL_COLUMNS, *_RAW_NUMERIC)}
    budget, effort = out["budget_at_completion"], out["planned_effort_hours"]
    duration, team = out["planned_duration_days"], out["planned_team_size"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_budget"] = np.log(budget)
        out["log_effort_hours"] = np.log(effort)
        out["log_duration_days"] = np.log(duration)
        out["hours_per_day"] = effort / duration
        # >1 means the plan needs more hours than the planned team can work in the time.
        out["team_utilisation"] = effort / (team * duration * _HOURS_PER_PERSON_DAY)
        out["cost_per_hour"] = budget / effort
    out["risk_exposure"] = out["num_identified_risks"] * out["mean_risk_severity"]
    start = columns["start_date"]
    month = (start.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(float)
    out["start_month"] = np.where(np.isnat(start), np.nan, month)
    if stage == "inflight":
        m = (status_metrics(columns) if metrics is None else metrics).values
        pct, pv, ev, ac = (columns[c] for c in ("percent_complete", "pv", "ev", "ac"))
        out.update({
            "percent_complete": pct,
            "elapsed_fraction": m["at_days"] / duration,
            "pv_fraction": pv / budget,
            "ev_fraction": ev / budget,
            "ac_fraction": ac / budget,
            "spi": m["spi"],
            "cpi": m["cpi"],
            "spi_t": m["spi_t"],
            "sv_t_fraction": m["sv_t_days"] / duration,
            "es_fraction": m["es_days"] / duration,
            "eac_cpi_ratio": _bounded_ratio(m["eac_cpi"] / budget),
            "eac_cpi_spi_ratio": _bounded_ratio(m["eac_cpi_spi"] / budget),
            "ieac_t_ratio": _bounded_ratio(m["ieac_t_days"] / duration),
            "tcpi_bac": m["tcpi_bac"],
            # Reported physical progress ahead of earned value hints at optimistic reporting.
            "progress_gap": pct / 100.0 - ev / budget,
        })
    return out


def _bounded_ratio(ratio: np.ndarray) -> np.ndarray:
    """An EVM index forecast as a ratio to plan, held within INDEX_RATIO_BOUNDS (NaN kept).

    Early snapshots can give absurd indices (EV = 1 on a 2.4M budget: EAC = 10^6 x BAC); the
    in-flight models anchor on these ratios, so unbounded they would turn into forecasts
    centuries late. In generated history under 1 in 1,000 snapshots, all in a project's first
    weeks, fall outside; the 25/50/75 % snapshots the models train on never do.
    """
    return np.clip(ratio, *INDEX_RATIO_BOUNDS)


def feature_matrix(features: Mapping[str, np.ndarray] | pd.DataFrame,
                   names: Sequence[str]) -> np.ndarray:
    """The `names` columns of `feature_arrays` output or of a `build_features` frame as the
    float64 matrix LightGBM predicts on (categories as contract codes, NaN where missing)."""
    if isinstance(features, pd.DataFrame):
        features = {name: _float_values(features[name]) for name in names}
    matrix = np.empty((len(features[names[0]]), len(names)))  # C order, as LightGBM wants it
    for j, name in enumerate(names):
        matrix[:, j] = features[name]
    return matrix


def has_status(frame: pd.DataFrame) -> np.ndarray:
    """Which rows carry a status snapshot (and so go to the in-flight model).

    A row with some but not all of `status_date, pv, ev, ac` is an error: silently scoring it
    at intake would hide the caller's mistake.
    """
    present = [c for c in REQUIRED_STATUS_COLUMNS if c in frame.columns]
    if not present:
        return np.zeros(len(frame), dtype=bool)
    filled = frame[present].notna().to_numpy()
    complete = filled.all(axis=1) & (len(present) == len(REQUIRED_STATUS_COLUMNS))
    partial = filled.any(axis=1) & ~complete
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        missing = [c for c in REQUIRED_STATUS_COLUMNS
                   if c not in frame.columns or pd.isna(frame[c].iloc[row])]
        raise ValueError(
            f"{int(partial.sum())} row(s) carry a partial status snapshot (first: row {row}, "
            f"missing {', '.join(missing)}); give all of {', '.join(REQUIRED_STATUS_COLUMNS)} "
            "or none"
        )
    return complete


def build_features(frame: pd.DataFrame, stage: str = "intake") -> pd.DataFrame:
    """Model features for `stage` ("intake" or "inflight") from raw contract columns.

    In flight every row must carry a complete status snapshot (see `has_status`). Categories
    come back as pandas categoricals in the contract's order, the rest as float64.
    """
    if stage not in FEATURE_SETS:
        raise ValueError(f"stage must be one of {', '.join(FEATURE_SETS)}, got {stage!r}")
    missing = [c for c in INTAKE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing intake column(s): {', '.join(missing)}")
    columns = {c: _category_codes(frame, c) for c in CATEGORICAL_COLUMNS}
    columns.update({c: _numeric(frame, c) for c in _RAW_NUMERIC})
    columns["start_date"] = _dates(frame, "start_date")
    if stage == "inflight":
        if not has_status(frame).all():
            raise ValueError("in-flight features need status_date, pv, ev and ac on every row")
        columns.update({c: _numeric(frame, c) for c in ("pv", "ev", "ac")})
        columns["percent_complete"] = (_numeric(frame, "percent_complete")
                                       if "percent_complete" in frame.columns
                                       else np.full(len(frame), np.nan))
        columns["status_date"] = _dates(frame, "status_date")
    features: dict = feature_arrays(columns, stage)
    for name in CATEGORICAL_COLUMNS:
        codes = np.where(np.isnan(features[name]), -1, features[name]).astype(np.int64)
        features[name] = pd.Categorical.from_codes(codes, categories=list(CATEGORIES[name]))
    return pd.DataFrame(features, index=frame.index)


class FeatureBuilder(TransformerMixin, BaseEstimator):
    """`build_features` as a pipeline step; `exclude` drops features named in the model spec."""

    def __init__(self, stage: str = "intake", exclude: tuple[str, ...] = ()):
        self.stage = stage
        self.exclude = exclude

    def fit(self, X: pd.DataFrame, y=None) -> FeatureBuilder:
        unknown = sorted(set(self.exclude) - set(FEATURE_SETS[self.stage]))
        if unknown:
            raise ValueError(f"cannot exclude unknown {self.stage} feature(s): {unknown}")
        self.feature_names_out_ = [f for f in FEATURE_SETS[self.stage] if f not in self.exclude]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return build_features(X, self.stage)[self.feature_names_out_]

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = pd.to_numeric(frame[name], errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must be numeric: {exc}") from None
    return values.to_numpy(dtype=float, na_value=np.nan)


def _category_codes(frame: pd.DataFrame, name: str) -> np.ndarray:
    allowed = CATEGORIES[name]
    values = frame[name]
    unknown = sorted(set(values.dropna().astype(str)) - set(allowed))
    if unknown:
        raise ValueError(
            f"column {name} has unknown value(s) {unknown[:5]}; allowed: {', '.join(allowed)}"
        )
    return _float_codes(pd.Categorical(values.astype(object), categories=list(allowed)).codes)


def _float_values(values: pd.Series) -> np.ndarray:
    """A feature column as floats: a categorical's codes (NaN for missing) or its numbers."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _float_codes(values.cat.codes.to_numpy())
    return values.to_numpy(dtype=float, na_value=np.nan)


def _float_codes(codes: np.ndarray) -> np.ndarray:
    return np.where(codes < 0, np.nan, codes.astype(float))


def _dates(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        dates = pd.to_datetime(frame[name], errors="raise").astype("datetime64[ns]")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must hold ISO dates: {exc}") from None
    return dates.to_numpy()
