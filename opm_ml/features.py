"""The one feature function: raw contract rows in, model features out (training and serving).

`build_features(frame, stage)` turns intake columns (plus, in flight, the latest status snapshot:
`status_date, pv, ev, ac, percent_complete`) into a numeric frame for LightGBM. Every feature is
either a contract attribute or scale-free (ratios to BAC, to planned duration, EVM indices), so
one model serves portfolios of any currency or size. Categories keep the contract's order, so
codes are stable between training and serving; an unknown category is an error, not a NaN.
`FeatureBuilder` wraps the same function as the first step of every sklearn pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from opm_ml.contract import INTAKE_COLUMNS, ROLE_SHARE_COLUMNS, column

CATEGORICAL_COLUMNS = ("project_type", "sector", "region", "methodology")
STATUS_INPUT_COLUMNS = ("status_date", "pv", "ev", "ac", "percent_complete")
# percent_complete may be missing in a status report; the other four define the snapshot.
REQUIRED_STATUS_COLUMNS = ("status_date", "pv", "ev", "ac")

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
# Planned hours a full-time person works per calendar day (40 h / 7 days).
_HOURS_PER_PERSON_DAY = 40.0 / 7.0


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

    In flight every row must carry a complete status snapshot (see `has_status`).
    """
    if stage not in FEATURE_SETS:
        raise ValueError(f"stage must be one of {', '.join(FEATURE_SETS)}, got {stage!r}")
    missing = [c for c in INTAKE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing intake column(s): {', '.join(missing)}")
    out = _intake_features(frame)
    if stage == "inflight":
        if not has_status(frame).all():
            raise ValueError("in-flight features need status_date, pv, ev and ac on every row")
        out = pd.concat([out, _status_features(frame)], axis=1)
    return out[list(FEATURE_SETS[stage])]


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


def _intake_features(frame: pd.DataFrame) -> pd.DataFrame:
    feats = {c: _categorical(frame, c) for c in CATEGORICAL_COLUMNS}
    feats.update({c: _numeric(frame, c) for c in _RAW_NUMERIC})
    budget, effort = feats["budget_at_completion"], feats["planned_effort_hours"]
    duration, team = feats["planned_duration_days"], feats["planned_team_size"]
    with np.errstate(divide="ignore", invalid="ignore"):
        feats["log_budget"] = np.log(budget)
        feats["log_effort_hours"] = np.log(effort)
        feats["log_duration_days"] = np.log(duration)
        feats["hours_per_day"] = effort / duration
        # >1 means the plan needs more hours than the planned team can work in the time.
        feats["team_utilisation"] = effort / (team * duration * _HOURS_PER_PERSON_DAY)
        feats["cost_per_hour"] = budget / effort
    feats["risk_exposure"] = feats["num_identified_risks"] * feats["mean_risk_severity"]
    feats["start_month"] = _dates(frame, "start_date").dt.month.to_numpy(dtype=float)
    return pd.DataFrame(feats, index=frame.index)


def _status_features(frame: pd.DataFrame) -> pd.DataFrame:
    from opm_ml.opm_metrics import evm_frame

    bac = _numeric(frame, "budget_at_completion")
    duration = _numeric(frame, "planned_duration_days")
    evm_in = pd.DataFrame({
        "bac": bac, "pv": _numeric(frame, "pv"), "ev": _numeric(frame, "ev"),
        "ac": _numeric(frame, "ac"), "start_date": _dates(frame, "start_date").to_numpy(),
        "planned_duration_days": duration, "status_date": _dates(frame, "status_date").to_numpy(),
    })
    evm = evm_frame(evm_in)

    def metric(name: str) -> np.ndarray:
        return evm[name].to_numpy(dtype=float, na_value=np.nan)

    pct = (_numeric(frame, "percent_complete") if "percent_complete" in frame.columns
           else np.full(len(frame), np.nan))
    feats = {
        "percent_complete": pct,
        "elapsed_fraction": metric("at_days") / duration,
        "pv_fraction": evm_in["pv"].to_numpy() / bac,
        "ev_fraction": evm_in["ev"].to_numpy() / bac,
        "ac_fraction": evm_in["ac"].to_numpy() / bac,
        "spi": metric("spi"),
        "cpi": metric("cpi"),
        "spi_t": metric("spi_t"),
        "sv_t_fraction": metric("sv_t_days") / duration,
        "es_fraction": metric("es_days") / duration,
        "eac_cpi_ratio": metric("eac_cpi") / bac,
        "eac_cpi_spi_ratio": metric("eac_cpi_spi") / bac,
        "ieac_t_ratio": metric("ieac_t_days") / duration,
        "tcpi_bac": metric("tcpi_bac"),
        # Reported physical progress ahead of earned value hints at optimistic reporting.
        "progress_gap": pct / 100.0 - evm_in["ev"].to_numpy() / bac,
    }
    return pd.DataFrame(feats, index=frame.index)


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    try:
        values = pd.to_numeric(frame[name], errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must be numeric: {exc}") from None
    return values.to_numpy(dtype=float, na_value=np.nan)


def _categorical(frame: pd.DataFrame, name: str) -> pd.Categorical:
    allowed = column("projects", name).categories
    values = frame[name]
    unknown = sorted(set(values.dropna().astype(str)) - set(allowed))
    if unknown:
        raise ValueError(
            f"column {name} has unknown value(s) {unknown[:5]}; allowed: {', '.join(allowed)}"
        )
    return pd.Categorical(values.astype(object), categories=list(allowed))


def _dates(frame: pd.DataFrame, name: str) -> pd.Series:
    try:
        return pd.to_datetime(frame[name], errors="raise").astype("datetime64[ns]")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must hold ISO dates: {exc}") from None
