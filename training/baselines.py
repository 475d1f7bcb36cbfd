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

from training.family import QUANTITIES

SIZE_COLUMNS = ("planned_duration_days", "budget_at_completion", "planned_effort_hours",
                "planned_team_size")
# family -> {baseline name: EVM column whose ratio to the planned value is the forecast ratio}
EVM_BASELINES = {
    "delay": {"ieac_t": "ieac_t_days"},
    "overrun": {"eac_cpi": "eac_cpi", "eac_cpi_spi": "eac_cpi_spi"},
    "resource": {"eac_cpi": "eac_cpi", "eac_cpi_spi": "eac_cpi_spi"},
}


def _log_size(frame: pd.DataFrame) -> np.ndarray:
    return np.log(frame[list(SIZE_COLUMNS)].to_numpy(dtype=float))


class LogLinearBaseline:
    """log(actual quantity) ~ log size features, ordinary least squares."""

    def __init__(self, family: str):
        self.family = family

    def fit(self, train: pd.DataFrame) -> LogLinearBaseline:
        actual = train[QUANTITIES[self.family][2]].to_numpy(dtype=float)
        self.model_ = make_pipeline(FunctionTransformer(_log_size), LinearRegression())
        self.model_.fit(train, np.log(actual))
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.exp(self.model_.predict(frame))


class ReferenceClassBaseline:
    """planned x median(actual/planned) of the training projects of the same type."""

    def __init__(self, family: str, late_threshold: float | None = None):
        self.family = family
        self.late_threshold = late_threshold

    def fit(self, train: pd.DataFrame) -> ReferenceClassBaseline:
        planned_col, _, actual_col = QUANTITIES[self.family]
        ratio = train[actual_col].to_numpy(float) / train[planned_col].to_numpy(float)
        by_type = pd.Series(ratio).groupby(train["project_type"].to_numpy())
        self.uplift_ = by_type.median().to_dict()
        self.overall_uplift_ = float(np.median(ratio))
        if "late" in train.columns:
            self.late_rate_ = train.groupby("project_type")["late"].mean().to_dict()
            self.overall_late_rate_ = float(train["late"].mean())
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        uplift = frame["project_type"].map(self.uplift_).fillna(self.overall_uplift_)
        return frame[QUANTITIES[self.family][0]].to_numpy(float) * uplift.to_numpy(float)

    def predict_late(self, frame: pd.DataFrame) -> np.ndarray:
        rate = frame["project_type"].map(self.late_rate_).fillna(self.overall_late_rate_)
        return rate.to_numpy(float)


def evm_forecasts(family: str, frame: pd.DataFrame) -> pd.DataFrame:
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
    planned_col = QUANTITIES[family][0]
    planned = frame[planned_col].to_numpy(float)
    base = {"delay": frame["planned_duration_days"], "overrun": frame["budget_at_completion"],
            "resource": frame["budget_at_completion"]}[family].to_numpy(float)
    out = {}
    for name, col in EVM_BASELINES[family].items():
        ratio = evm[col].to_numpy(dtype=float, na_value=np.nan) / base
        out[name] = planned * ratio
    return pd.DataFrame(out, index=frame.index)


def evm_late_flag(frame: pd.DataFrame, late_threshold: float) -> np.ndarray:
    """1.0 where IEAC(t) forecasts a finish beyond the late threshold, else 0.0 (NaN: undefined)."""
    ieac = evm_forecasts("delay", frame)["ieac_t"].to_numpy(float)
    planned = frame["planned_duration_days"].to_numpy(float)
    return np.where(np.isnan(ieac), np.nan, (ieac > planned * (1 + late_threshold)).astype(float))
