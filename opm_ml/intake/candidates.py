"""Candidate projects for intake: the contract's intake columns plus a business case.

One CSV row per candidate (see data/examples/candidates.csv):

* every contract intake column (`opm-ml data schema`), `project_id` and optionally `name`;
* `discount_rate`: annual rate as a fraction (0.08 = 8 %);
* `cost_year_1..N`, `benefit_year_1..N`: cost and benefit in the k-th 12 months from
  `start_date` (currency). Leave every cost_year empty to spread `budget_at_completion` evenly
  over the planned months; leave every benefit_year empty to take the stated business case
  (`expected_benefits`) as arriving evenly over the 3 years after the planned finish;
* `mandatory`, `regulatory`: 1/0 (or true/false), either one makes the project a must;
* `alignment_<objective>`: 0-10 alignment with each organisational objective (all of them, or
  none: then the contract's strategic_fit stands for the candidate's fit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.forecasting.inputs import model_columns

STATED_BENEFIT_YEARS = 3
_DAYS_PER_MONTH = 365.25 / 12
_FLAG_VALUES = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False,
                "": False, "nan": False, "1.0": True, "0.0": False}


@dataclass
class Candidates:
    """Parsed candidates: intake rows for the models plus the business case as arrays."""

    frame: pd.DataFrame  # the input rows, index 0..n-1
    model_input: pd.DataFrame  # the columns the models read (`model_columns(frame)`)
    costs: np.ndarray  # (n, Y) by project year
    benefits: np.ndarray  # (n, Y) by project year
    discount_rate: np.ndarray
    mandatory: np.ndarray  # bool: mandatory or regulatory
    benefit_basis: list[str]
    cost_basis: list[str]
    alignment: pd.DataFrame  # alignment_<objective> columns (may have none)

    @property
    def ids(self) -> list[str]:
        return self.frame["project_id"].astype(str).tolist()

    @property
    def start_month(self) -> np.ndarray:
        return pd.to_datetime(self.frame["start_date"]).to_numpy().astype("datetime64[M]")

    @property
    def planned_months(self) -> np.ndarray:
        days = self.frame["planned_duration_days"].to_numpy(float)
        return np.maximum(1, np.ceil(days / _DAYS_PER_MONTH)).astype(int)


def read_candidates(path) -> Candidates:
    """Read and check a candidates CSV (ValueError naming row and column on bad input)."""
    return parse_candidates(pd.read_csv(path, dtype={"project_id": str}))


def _year_columns(frame: pd.DataFrame, prefix: str) -> list[str]:
    found = {int(m.group(1)): c for c in frame.columns if (m := re.fullmatch(rf"{prefix}(\d+)", c))}
    if found and sorted(found) != list(range(1, max(found) + 1)):
        raise ValueError(f"{prefix}N columns must be numbered 1..N without gaps, got "
                         f"{sorted(found)}")
    return [found[k] for k in sorted(found)]


def _numbers(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if not cols:
        return np.zeros((len(frame), 0))
    out = np.empty((len(frame), len(cols)))
    for j, c in enumerate(cols):
        values = pd.to_numeric(frame[c], errors="coerce")
        bad = values.isna() & frame[c].notna() & (frame[c].astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{c} must be a number (row {row + 1}: {frame[c].iloc[row]!r})")
        out[:, j] = values.to_numpy(float)
    if (out < 0).any():
        row, j = np.argwhere(out < 0)[0]
        raise ValueError(f"{cols[j]} must not be negative (row {row + 1}: {out[row, j]:g})")
    return out


def _flags(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), bool)
    text = frame[name].astype(str).str.strip().str.lower()
    unknown = ~text.isin(list(_FLAG_VALUES))
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ValueError(f"{name} must be 1/0 or true/false (row {row + 1}: "
                         f"{frame[name].iloc[row]!r})")
    return text.map(_FLAG_VALUES).to_numpy(bool)


def parse_candidates(frame: pd.DataFrame) -> Candidates:
    """Check a candidates frame and build its business-case arrays (see module docstring)."""
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ValueError("no candidates: the input has no rows")
    if "project_id" not in frame.columns:
        raise ValueError("missing column project_id")
    ids = frame["project_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"project_id {ids[ids.duplicated()].iloc[0]!r} appears more than once")
    model_input = model_columns(frame)
    if "discount_rate" not in frame.columns:
        raise ValueError("missing column discount_rate (annual rate, e.g. 0.08)")
    rate = _numbers(frame, ["discount_rate"])[:, 0]
    if np.isnan(rate).any() or (rate >= 1).any():
        row = int(np.flatnonzero(np.isnan(rate) | (rate >= 1))[0])
        raise ValueError(f"discount_rate must be a fraction in [0, 1) (row {row + 1})")
    months = np.maximum(1, np.ceil(model_input["planned_duration_days"].to_numpy() /
                                   _DAYS_PER_MONTH)).astype(int)
    cost_cols = _year_columns(frame, "cost_year_")
    benefit_cols = _year_columns(frame, "benefit_year_")
    stated_cost = _numbers(frame, cost_cols)
    stated_benefit = _numbers(frame, benefit_cols)
    finish_year = np.ceil(months / 12).astype(int)
    years = int(max(len(cost_cols), len(benefit_cols), (finish_year + STATED_BENEFIT_YEARS).max()))
    costs, benefits = np.zeros((len(frame), years)), np.zeros((len(frame), years))
    has_cost = ~np.isnan(stated_cost).all(axis=1)
    has_benefit = ~np.isnan(stated_benefit).all(axis=1)
    costs[:, : len(cost_cols)] = np.nan_to_num(stated_cost)
    benefits[:, : len(benefit_cols)] = np.nan_to_num(stated_benefit)
    # No cost profile: BAC spread evenly over the planned months, summed per project year.
    bac = model_input["budget_at_completion"].to_numpy()
    month = np.arange(12 * years)
    spread = (month[None, :] < months[:, None]) * (bac / months)[:, None]
    by_year = spread.reshape(len(frame), years, 12).sum(axis=2)
    costs[~has_cost] = by_year[~has_cost]
    if (free := costs.sum(axis=1) <= 0).any():
        row = int(np.flatnonzero(free)[0])
        raise ValueError(f"cost_year_1..{len(cost_cols)} (cost_by_year) add up to 0 (row "
                         f"{row + 1}): give the candidate's costs, or leave them all empty to "
                         "spread budget_at_completion")
    # No benefit stream: the stated benefits, evenly over the 3 years after the planned finish.
    year = np.arange(years)
    after = (year[None, :] >= finish_year[:, None]) & (
        year[None, :] < (finish_year + STATED_BENEFIT_YEARS)[:, None])
    stated = model_input["expected_benefits"].to_numpy() / STATED_BENEFIT_YEARS
    benefits[~has_benefit] = (after * stated[:, None])[~has_benefit]
    alignment = frame[[c for c in frame.columns if c.startswith("alignment_")]]
    align_values = _numbers(frame, list(alignment.columns))
    # A row without any alignment score falls back on its strategic_fit (in any batch); a row
    # with some scores must have them all.
    partial = np.isnan(align_values) & ~np.isnan(align_values).all(axis=1, keepdims=True)
    if partial.any():
        row, j = np.argwhere(partial)[0]
        raise ValueError(f"{alignment.columns[j]} is empty (row {row + 1}): score the candidate "
                         "against every objective, or against none")
    if (align_values > 10).any():
        row, j = np.argwhere(align_values > 10)[0]
        raise ValueError(f"{alignment.columns[j]} must be a score from 0 to 10 (row {row + 1})")
    return Candidates(
        frame=frame, model_input=model_input, costs=costs, benefits=benefits,
        discount_rate=rate,
        mandatory=_flags(frame, "mandatory") | _flags(frame, "regulatory"),
        benefit_basis=np.where(has_benefit, "benefit stream",
                               f"stated benefits over {STATED_BENEFIT_YEARS} years after finish"
                               ).tolist(),
        cost_basis=np.where(has_cost, "cost profile", "BAC over planned months").tolist(),
        alignment=pd.DataFrame(align_values, columns=alignment.columns),
    )


def frame_from_records(records: list[dict]) -> pd.DataFrame:
    """API-style candidates -> the CSV layout: `cost_by_year` / `benefits_by_year` lists become
    cost_year_k / benefit_year_k columns, the `alignment` mapping alignment_<objective> columns."""
    rows = []
    for record in records:
        row = {k: v for k, v in record.items()
               if k not in ("cost_by_year", "benefits_by_year", "alignment", "status")}
        for key, prefix in (("cost_by_year", "cost_year_"), ("benefits_by_year", "benefit_year_")):
            for k, value in enumerate(record.get(key) or [], start=1):
                row[f"{prefix}{k}"] = value
        for objective, value in (record.get("alignment") or {}).items():
            row[f"alignment_{objective}"] = value
        rows.append(row)
    return pd.DataFrame(rows)
