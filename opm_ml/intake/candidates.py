"""Candidate projects for intake: the served models' intake columns plus a business case.

One CSV row per candidate (see data/examples/candidates.csv for the contract):

* every intake column the models read (the contract's, `opm-ml data schema`, or the dataset
  profile's own), `project_id` and optionally `name`;
* `discount_rate`: annual rate as a fraction (0.08 = 8 %);
* `cost_year_1..N`, `benefit_year_1..N`: cost and benefit in the k-th 12 months from
  `start_date` (currency). Leave every cost_year empty to spread `budget_at_completion` evenly
  over the planned months; leave every benefit_year empty to take the stated business case
  (`expected_benefits`) as arriving evenly over the 3 years after the planned finish;
* `mandatory`, `regulatory`: 1/0 (or true/false), either one makes the project a must;
* `alignment_<objective>`: 0-10 alignment with each organisational objective (all of them, or
  none: then the contract's strategic_fit stands for the candidate's fit).

With a dataset profile (`manifest` of another profile) the project fields are the profile's,
and what scoring needs that the profile may not map is asked of the candidate instead
(`scoring_fields`): `strategic_fit` (0-10, the fit of a row without alignment scores) and
`expected_benefits` (the stated business case). The planned cost is the profile's
`budget_at_completion` when it maps one, else the candidate's costs by year (then required);
without `planned_duration_days` the benefits by year are required too (no finish to place the
stated benefits after).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.forecasting.inputs import ProjectInputs, model_columns
from opm_ml.manifest import FeatureManifest

STATED_BENEFIT_YEARS = 3
_DAYS_PER_MONTH = 365.25 / 12
_FLAG_VALUES = {"1": True, "0": False, "true": True, "false": False, "yes": True, "no": False,
                "": False, "nan": False, "1.0": True, "0.0": False}
# What scoring reads besides the business case: model features of the contract, asked of a
# candidate as plain intake fields when a profile does not map them.
SCORING_FIELDS = ("expected_benefits", "strategic_fit")


def scoring_fields(manifest: FeatureManifest) -> tuple[str, ...]:
    """The scoring fields `manifest`'s models do not read (a candidate states them itself)."""
    return tuple(f for f in SCORING_FIELDS if not manifest.has(f))


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
    manifest: FeatureManifest | None = None  # what the models read; None: the contract
    planned_cost: np.ndarray | None = None  # BAC if mapped, else total of the costs by year
    fit: np.ndarray | None = None  # 0-10 fit of rows without alignment (NaN: none given)

    @property
    def profile(self) -> str:
        return "contract" if self.manifest is None else self.manifest.profile

    @property
    def warnings(self) -> list[list[str]]:
        """Per candidate: category values the models never saw (treated as missing)."""
        if self.manifest is None:
            return [[] for _ in range(len(self.frame))]
        return ProjectInputs.from_frame(self.model_input, self.manifest).warnings

    @property
    def ids(self) -> list[str]:
        return self.frame["project_id"].astype(str).tolist()

    @property
    def start_month(self) -> np.ndarray:
        return pd.to_datetime(self.frame["start_date"]).to_numpy().astype("datetime64[M]")

    @property
    def planned_months(self) -> np.ndarray:
        days = _column(self.frame, self.model_input, "planned_duration_days")
        days = np.nan_to_num(days, nan=_DAYS_PER_MONTH)  # a profile without durations: 1
        return np.maximum(1, np.ceil(days / _DAYS_PER_MONTH)).astype(int)


def read_candidates(path, manifest: FeatureManifest | None = None) -> Candidates:
    """Read and check a candidates CSV (ValueError naming row and column on bad input)."""
    return parse_candidates(pd.read_csv(path, dtype={"project_id": str}), manifest)


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


def parse_candidates(frame: pd.DataFrame, manifest: FeatureManifest | None = None) -> Candidates:
    """Check a candidates frame and build its business-case arrays (see module docstring).

    `manifest`: what the served models read; None (or the contract's) reads the contract's
    columns exactly as before profiles existed.
    """
    if manifest is not None and manifest.profile == "contract":
        manifest = None
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise ValueError("no candidates: the input has no rows")
    if "project_id" not in frame.columns:
        raise ValueError("missing column project_id")
    ids = frame["project_id"].astype(str)
    if ids.duplicated().any():
        raise ValueError(f"project_id {ids[ids.duplicated()].iloc[0]!r} appears more than once")
    model_input = model_columns(frame, manifest)
    if "discount_rate" not in frame.columns:
        raise ValueError("missing column discount_rate (annual rate, e.g. 0.08)")
    rate = _numbers(frame, ["discount_rate"])[:, 0]
    if np.isnan(rate).any() or (rate >= 1).any():
        row = int(np.flatnonzero(np.isnan(rate) | (rate >= 1))[0])
        raise ValueError(f"discount_rate must be a fraction in [0, 1) (row {row + 1})")
    cost_cols = _year_columns(frame, "cost_year_")
    benefit_cols = _year_columns(frame, "benefit_year_")
    stated_cost = _numbers(frame, cost_cols)
    stated_benefit = _numbers(frame, benefit_cols)
    has_cost = ~np.isnan(stated_cost).all(axis=1)
    has_benefit = ~np.isnan(stated_benefit).all(axis=1)
    # The defaults spread the plan: BAC over the planned months, the stated benefits after the
    # planned finish. A profile without one of those asks for the yearly figures instead.
    bac = _column(frame, model_input, "budget_at_completion")
    duration = _column(frame, model_input, "planned_duration_days")
    expected = _column(frame, model_input, "expected_benefits")
    _require_streams(has_cost, bac, duration, "cost_year_", "cost_by_year",
                     "budget_at_completion", manifest)
    _require_streams(has_benefit, expected, duration, "benefit_year_", "benefits_by_year",
                     "expected_benefits", manifest)
    days = np.nan_to_num(duration, nan=_DAYS_PER_MONTH)
    months = np.maximum(1, np.ceil(days / _DAYS_PER_MONTH)).astype(int)
    finish_year = np.ceil(months / 12).astype(int)
    years = int(max(len(cost_cols), len(benefit_cols), (finish_year + STATED_BENEFIT_YEARS).max()))
    costs, benefits = np.zeros((len(frame), years)), np.zeros((len(frame), years))
    costs[:, : len(cost_cols)] = np.nan_to_num(stated_cost)
    benefits[:, : len(benefit_cols)] = np.nan_to_num(stated_benefit)
    # No cost profile: BAC spread evenly over the planned months, summed per project year.
    month = np.arange(12 * years)
    per_month = (bac if manifest is None else np.nan_to_num(bac)) / months
    spread = (month[None, :] < months[:, None]) * per_month[:, None]
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
    stated = (expected if manifest is None else np.nan_to_num(expected)) / STATED_BENEFIT_YEARS
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
    fit = _column(frame, model_input, "strategic_fit")
    if manifest is not None:
        unscored = np.isnan(align_values).all(axis=1) & np.isnan(fit)
        if unscored.any():
            row = int(np.flatnonzero(unscored)[0])
            raise ValueError(f"strategic_fit is empty (row {row + 1}): give the candidate's "
                             "alignment with every objective (alignment_<objective>), or its "
                             "strategic_fit (0-10)")
        if (fit > 10).any():
            row = int(np.flatnonzero(fit > 10)[0])
            raise ValueError(f"strategic_fit must be a score from 0 to 10 (row {row + 1})")
    return Candidates(
        frame=frame, model_input=model_input, costs=costs, benefits=benefits,
        discount_rate=rate,
        mandatory=_flags(frame, "mandatory") | _flags(frame, "regulatory"),
        benefit_basis=np.where(has_benefit, "benefit stream",
                               f"stated benefits over {STATED_BENEFIT_YEARS} years after finish"
                               ).tolist(),
        cost_basis=np.where(has_cost, "cost profile", "BAC over planned months").tolist(),
        alignment=pd.DataFrame(align_values, columns=alignment.columns),
        manifest=manifest,
        planned_cost=bac if manifest is None or manifest.has("budget_at_completion")
        else costs.sum(axis=1),
        fit=fit,
    )


def _column(frame: pd.DataFrame, model_input: pd.DataFrame, name: str) -> np.ndarray:
    """A number column of the candidates: the models' input if they read it, else the frame's
    (a scoring field); all NaN when neither has it."""
    if name in model_input.columns:
        return pd.to_numeric(model_input[name], errors="coerce").to_numpy(float)
    if name in frame.columns:
        return _numbers(frame, [name])[:, 0]
    return np.full(len(frame), np.nan)


def _require_streams(given: np.ndarray, total: np.ndarray, duration: np.ndarray, prefix: str,
                     field: str, total_name: str, manifest: FeatureManifest | None) -> None:
    """ValueError naming the first row whose yearly figures cannot be left out: no total to
    spread (`total_name`) or no planned duration to spread it over."""
    if manifest is None:
        return  # the contract requires both columns
    lacking = ~given & (np.isnan(total) | np.isnan(duration))
    if lacking.any():
        row = int(np.flatnonzero(lacking)[0])
        if np.isnan(total[row]):
            why = f"no {total_name} to spread" + ("" if manifest.has(total_name) else
                                                  f" (profile {manifest.profile} maps none)")
        else:
            why = (f"profile {manifest.profile} has no planned_duration_days to spread "
                   f"{total_name} over")
        raise ValueError(f"{prefix}1..N ({field}) are needed (row {row + 1}): {why}")


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
