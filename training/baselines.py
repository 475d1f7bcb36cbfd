"""Baselines every model must beat in the same run.

At intake: a log-linear regression of the actual quantity (duration, cost, effort) on the log
size features, and the naive reference-class forecast "planned x the median actual/planned
ratio of past projects of the same type". For P(late): the reference class's late rate.
In flight: the earned-value index forecasts, from `opm_ml.opm_metrics.evm_frame`:
cost EAC = BAC/CPI and AC + (BAC-EV)/(CPI*SPI); duration IEAC(t) = planned / SPI(t);
effort = planned effort x the cost EAC / BAC (effort tracks cost); P(late) = 1 if IEAC(t) is
beyond the late threshold, else 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from opm_ml.forecasting import family

# The planned sizes a log-linear baseline regresses on, where a dataset has them.
SIZE_COLUMNS = ("planned_duration_days", "budget_at_completion", "planned_effort_hours",
                "planned_team_size")


class LogLinearBaseline:
    """log(actual quantity) ~ log of the planned size columns present, ordinary least squares."""

    def __init__(self, family: str):
        self.family = family

    def fit(self, train: pd.DataFrame) -> LogLinearBaseline:
        actual = train[family(self.family).actual].to_numpy(dtype=float)
        # Planned sizes given (and positive) for most projects; a gap takes the median.
        self.columns_ = [c for c in SIZE_COLUMNS if c in train.columns
                         and (train[c].to_numpy(dtype=float, na_value=np.nan) > 0).mean() > 0.5]
        logs = self._raw_logs(train)
        self.medians_ = np.nanmedian(logs, axis=0)
        self.model_ = make_pipeline(FunctionTransformer(self._log_size), LinearRegression())
        self.model_.fit(train, np.log(actual))
        return self

    def _raw_logs(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[self.columns_].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(values > 0, np.log(values), np.nan)

    def _log_size(self, frame: pd.DataFrame) -> np.ndarray:
        logs = self._raw_logs(frame)
        return np.where(np.isnan(logs), self.medians_, logs)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.exp(self.model_.predict(frame))


class ReferenceClassBaseline:
    """planned x median(actual/planned) of the training projects of the same class (`group`,
    e.g. project type; every project is one class without it)."""

    def __init__(self, family: str, group: str | None = None):
        self.family = family
        self.group = group

    def _groups(self, frame: pd.DataFrame) -> pd.Series:
        if self.group is None or self.group not in frame.columns:
            return pd.Series("all", index=frame.index)
        return frame[self.group].astype(object)

    def fit(self, train: pd.DataFrame) -> ReferenceClassBaseline:
        spec = family(self.family)
        ratio = train[spec.actual].to_numpy(float) / train[spec.planned].to_numpy(float)
        groups = self._groups(train)
        self.uplift_ = pd.Series(ratio).groupby(groups.to_numpy()).median().to_dict()
        self.overall_uplift_ = float(np.median(ratio))
        if "late" in train.columns:
            self.late_rate_ = train["late"].groupby(groups.to_numpy()).mean().to_dict()
            self.overall_late_rate_ = float(train["late"].mean())
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        uplift = self._groups(frame).map(self.uplift_).fillna(self.overall_uplift_)
        return frame[family(self.family).planned].to_numpy(float) * uplift.to_numpy(float)

    def predict_late(self, frame: pd.DataFrame) -> np.ndarray:
        rate = self._groups(frame).map(self.late_rate_).fillna(self.overall_late_rate_)
        return rate.to_numpy(float)


def evm_forecasts(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The family's EVM index forecasts of the actual quantity (NaN where undefined)."""
    from opm_ml.opm_metrics import evm_frame

    evm = evm_frame(pd.DataFrame({
        "bac": frame["budget_at_completion"].to_numpy(float),
        "pv": frame["pv"].to_numpy(float), "ev": frame["ev"].to_numpy(float),
        "ac": frame["ac"].to_numpy(float),
        "start_date": pd.to_datetime(frame["start_date"]).to_numpy(),
        "planned_duration_days": frame["planned_duration_days"].to_numpy(float),
        "status_date": pd.to_datetime(frame["status_date"]).to_numpy(),
    }))
    spec = family(name)
    planned = frame[spec.planned].to_numpy(float)
    base = frame[spec.evm_scale].to_numpy(float)
    out = {}
    for baseline, col in spec.evm_baselines.items():
        ratio = evm[col].to_numpy(dtype=float, na_value=np.nan) / base
        out[baseline] = planned * ratio
    return pd.DataFrame(out, index=frame.index)


def evm_late_flag(frame: pd.DataFrame, late_threshold: float) -> np.ndarray:
    """1.0 where IEAC(t) forecasts a finish beyond the late threshold, else 0.0 (NaN: undefined)."""
    ieac = evm_forecasts("delay", frame)["ieac_t"].to_numpy(float)
    planned = frame["planned_duration_days"].to_numpy(float)
    return np.where(np.isnan(ieac), np.nan, (ieac > planned * (1 + late_threshold)).astype(float))
