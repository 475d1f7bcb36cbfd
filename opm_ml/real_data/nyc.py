"""NYC capital projects (> $25M, reports 2013-09 .. 2019-09): budget and schedule re-forecasts.

Each project (`PID`) has up to 15 status reports. The baseline is its first report, the
outcome its last one: cost overrun = last / first `Budget Forecast`; delay = (last
`Forecast Completion` - `Design Start`) / (first `Forecast Completion` - `Design Start`). Many
projects are still running in 2019, so the outcome is the latest re-forecast over the observed
window (`horizon_days`, a feature), not the final cost or date. Only reports carrying the needed
values count as first/last; features are what the first of them shows. Projects with fewer than
two such reports have no window and are dropped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opm_ml.real_data._io import read_csv
from opm_ml.real_data.dataset import RealDataset, categorical, finish

SOURCE = "NYC_capital_projects_20190901.csv"
CATEGORIES = ("Category", "Borough", "Managing Agency", "Client Agency", "Current Phase")


def _reports(root: Path) -> pd.DataFrame:
    raw = read_csv(root / SOURCE)
    reports = pd.DataFrame({
        "pid": raw["PID"].astype("str"),
        "reported": pd.to_datetime(raw["Date Reported As Of"], format="%m/%d/%Y %I:%M:%S %p"),
        "design_start": pd.to_datetime(raw["Design Start"], format="%m/%d/%Y"),
        "budget": raw["Budget Forecast"].astype(float),
        "completion": pd.to_datetime(raw["Forecast Completion"], format="%m/%d/%Y"),
        **{c.lower().replace(" ", "_"): categorical(raw[c]) for c in CATEGORIES},
    }).sort_values(["pid", "reported"], kind="stable")
    if reports.duplicated(["pid", "reported"]).any():
        raise ValueError(f"{SOURCE}: a PID has two reports with the same date")
    return reports


def _first_last(reports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """First and last of the given (usable) reports of each PID that has at least two."""
    reports = reports[reports.groupby("pid")["reported"].transform("size") > 1]
    first = reports.groupby("pid").head(1).set_index("pid")
    last = reports.groupby("pid").tail(1).set_index("pid").loc[first.index]
    return first, last


def _features(first: pd.DataFrame, last: pd.DataFrame) -> pd.DataFrame:
    planned = (first["completion"] - first["design_start"]).dt.days.astype(float)
    return pd.DataFrame({
        "category": first["category"],
        "borough": first["borough"],
        "managing_agency": first["managing_agency"],
        "client_agency": first["client_agency"],
        "phase_at_first_report": first["current_phase"],
        "budget_at_completion": first["budget"].where(first["budget"] > 0),
        "planned_duration_days": planned.where(planned > 0),
        "age_at_first_report_days": (first["reported"] - first["design_start"]).dt.days
                                    .astype(float),
        "first_report_year": first["reported"].dt.year.astype(float),
        "horizon_days": (last["reported"] - first["reported"]).dt.days.astype(float),
    })


def nyc_overrun(root: Path) -> RealDataset:
    """Budget re-forecast ratio (last / first positive Budget Forecast), one row per project."""
    reports = _reports(root)
    usable = reports[reports["budget"] > 0]
    first, last = _first_last(usable)
    y = (last["budget"] / first["budget"]).rename("budget_ratio")
    return finish("nyc_overrun", "overrun", _features(first, last), y, SOURCE,
                  f"{len(first)} of {reports['pid'].nunique()} PIDs have >= 2 reports with a "
                  "positive Budget Forecast (others dropped). First such forecast (USD) -> "
                  "budget_at_completion.", reference_column="category")


def nyc_delay(root: Path) -> RealDataset:
    """Schedule re-forecast ratio measured from Design Start, one row per project."""
    reports = _reports(root)
    usable = reports[reports["completion"] > reports["design_start"]]
    first, last = _first_last(usable)
    planned = (first["completion"] - first["design_start"]).dt.days.astype(float)
    forecast = (last["completion"] - first["design_start"]).dt.days.astype(float)
    return finish("nyc_delay", "delay", _features(first, last),
                  (forecast / planned).rename("duration_ratio"), SOURCE,
                  f"{len(first)} of {reports['pid'].nunique()} PIDs have >= 2 reports with a "
                  "Design Start and a later Forecast Completion (others dropped). First Forecast "
                  "Completion - Design Start -> planned_duration_days.",
                  reference_column="category")
