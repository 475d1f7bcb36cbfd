"""Monthly effort profile by role: the phase shape of each role, learned from `resource_usage`.

For every training project the booked hours of a role are placed on normalised time
(month midpoint / months booked) and binned; the per-project shapes are averaged per project
type. A forecast spreads a role's predicted hours over the planned duration's months by
integrating that shape, so each role's months sum exactly to its predicted total. A project
type without usage history gets the all-types shape; no usage at all gives a flat profile.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

from opm_ml.contract import PROJECT_TYPES, ROLES, USAGE_HOUR_COLUMNS

DAYS_PER_MONTH = 365.25 / 12


class RoleProfile:
    """Average share of each role's hours per normalised-time bin, per project type."""

    def __init__(self, bins: int = 10):
        self.bins = bins

    def fit(self, usage: pd.DataFrame, projects: pd.DataFrame) -> RoleProfile:
        """`usage`: contract resource_usage rows; `projects`: project_id + project_type."""
        flat = np.full((len(ROLES), self.bins), 1.0 / self.bins)
        self.shapes_ = np.broadcast_to(flat, (len(PROJECT_TYPES), *flat.shape)).copy()
        rows = usage.merge(projects[["project_id", "project_type"]], on="project_id")
        self.n_projects_ = int(rows["project_id"].nunique())
        if rows.empty:
            return self
        months = rows.groupby("project_id")["month_index"].transform("max").to_numpy() + 1
        t = (rows["month_index"].to_numpy() + 0.5) / months
        bins = np.minimum((t * self.bins).astype(int), self.bins - 1)
        codes, ids = pd.factorize(rows["project_id"])
        hours = np.zeros((len(ids), self.bins, len(ROLES)))
        np.add.at(hours, (codes, bins), rows[list(USAGE_HOUR_COLUMNS)].to_numpy(float))
        totals = hours.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.where(totals > 0, hours / totals, np.nan)  # a role with 0 h: no shape
        types = rows.groupby("project_id", sort=False)["project_type"].first().reindex(ids)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: role never booked
            overall = np.nanmean(shares, axis=0)
            by_type = {t: np.nanmean(shares[(types == t).to_numpy()], axis=0)
                       for t in PROJECT_TYPES if (types == t).any()}
        for i, ptype in enumerate(PROJECT_TYPES):
            mean = by_type.get(ptype, overall)
            mean = np.where(np.isnan(mean), overall, mean)
            mean = np.where(np.isnan(mean), 1.0 / self.bins, mean).T  # (roles, bins)
            self.shapes_[i] = mean / mean.sum(axis=1, keepdims=True)
        return self

    def monthly_fractions(self, project_type: str, months: int) -> np.ndarray:
        """(roles, months) fractions of each role's hours per planned month; rows sum to 1."""
        shape = self.shapes_[PROJECT_TYPES.index(project_type)]
        edges = np.linspace(0, 1, self.bins + 1)
        cdf = np.concatenate([np.zeros((len(ROLES), 1)), np.cumsum(shape, axis=1)], axis=1)
        month_edges = np.linspace(0, 1, months + 1)
        at = np.stack([np.interp(month_edges, edges, cdf[r]) for r in range(len(ROLES))])
        return np.diff(at, axis=1)

    def monthly_hours(self, project_types, planned_days, role_hours: np.ndarray) -> list[dict]:
        """Per row: {"months": M, "hours": {role: [h_month0, ...]}} over the planned duration."""
        months = np.maximum(1, np.ceil(np.asarray(planned_days, float) / DAYS_PER_MONTH)).astype(int)
        cache: dict[tuple[str, int], np.ndarray] = {}
        out = []
        for ptype, m, hours in zip(project_types, months, role_hours):
            key = (ptype, int(m))
            if key not in cache:
                cache[key] = self.monthly_fractions(ptype, int(m))
            spread = cache[key] * hours[:, None]
            out.append({"months": int(m),
                        "hours": {role: spread[r].tolist() for r, role in enumerate(ROLES)}})
        return out


def profiles_json(profiles: list[dict]) -> list[str]:
    """JSON text per row, for a DataFrame column a REST client can read."""
    return [json.dumps(p, separators=(",", ":")) for p in profiles]
