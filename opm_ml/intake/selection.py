"""From scored candidates and a constraints file to an optimised portfolio and its report.

Constraints (data/examples/portfolio_constraints.toml): `start_month` and `months` of the
horizon; `[budget]` calendar year -> budget; `[capacity]` role -> hours per month (one number,
or one per horizon month); `dependencies` ([project, requires] pairs); `exclusions` (pairs);
`frontier_scales`. Costs are the risk-adjusted yearly costs, spread evenly over the 12 months of
each project year and summed per calendar year; role hours are the resource model's P50
profile placed from each candidate's start month. Demand outside the horizon is not limited.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.contract import ROLES
from opm_ml.intake.portfolio import PortfolioProblem, build_rows, frontier, solve
from opm_ml.intake.scoring import ScoredCandidates


@dataclass
class Constraints:
    start_month: str
    months: int
    budget: dict[str, float]
    capacity: dict[str, list[float]]  # role -> hours per horizon month
    dependencies: list[tuple[str, str]] = field(default_factory=list)
    exclusions: list[tuple[str, str]] = field(default_factory=list)
    frontier_scales: list[float] = field(default_factory=lambda: [0.5, 0.75, 1.0, 1.25, 1.5])

    @classmethod
    def from_dict(cls, data: dict, roles: tuple[str, ...] = ROLES,
                  no_roles: str = "") -> Constraints:
        """Check a constraints mapping (the TOML file or the API body); errors name the field.

        `roles`: the roles the served resource model forecasts hours for (the contract's by
        default); none: any capacity is refused, saying why (`no_roles`).
        """
        for key in ("start_month", "months", "budget", "capacity"):
            if key not in data:
                raise ValueError(f"constraints: missing `{key}`")
        months = int(data["months"])
        if not 1 <= months <= 600:
            raise ValueError("constraints: `months` must be 1..600")
        np.datetime64(str(data["start_month"]), "M")  # ValueError names a bad month
        capacity = {}
        if data["capacity"] and not roles:
            raise ValueError(f"constraints: capacity ({', '.join(data['capacity'])}) cannot be "
                             f"checked: {no_roles or 'the models forecast no hours by role'}; "
                             "leave capacity empty ({})")
        for role, value in data["capacity"].items():
            if role not in roles:
                raise ValueError(f"constraints: capacity role {role!r} is not one of "
                                 f"{', '.join(roles)}")
            values = [float(value)] * months if np.isscalar(value) else [float(v) for v in value]
            if len(values) != months or min(values) < 0:
                raise ValueError(f"constraints: capacity.{role} needs {months} non-negative "
                                 f"monthly hours (or one number)")
            capacity[role] = values
        budget = {str(y): float(v) for y, v in data["budget"].items()}
        if any(v < 0 for v in budget.values()):
            raise ValueError("constraints: budgets must not be negative")
        pairs = {k: [tuple(map(str, p)) for p in data.get(k, [])]
                 for k in ("dependencies", "exclusions")}
        for kind, items in pairs.items():
            if any(len(p) != 2 for p in items):
                raise ValueError(f"constraints: each of `{kind}` must be a pair of project ids")
        return cls(str(data["start_month"]), months, budget, capacity, **pairs,
                   frontier_scales=[float(s) for s in data.get("frontier_scales",
                                                               [0.5, 0.75, 1.0, 1.25, 1.5])])

    @classmethod
    def read(cls, path: Path | str, roles: tuple[str, ...] = ROLES,
             no_roles: str = "") -> Constraints:
        return cls.from_dict(tomllib.loads(Path(path).read_text()), roles, no_roles)


def build_problem(scored: ScoredCandidates, constraints: Constraints) -> PortfolioProblem:
    """Align each candidate's costs and role hours to the horizon's years and months."""
    c = scored.candidates
    ids = c.ids
    index = {pid: i for i, pid in enumerate(ids)}
    for pid in {p for pair in [*constraints.dependencies, *constraints.exclusions] for p in pair}:
        if pid not in index:
            raise ValueError(f"constraints name project {pid!r}, which is not a candidate")
    horizon0 = np.datetime64(constraints.start_month, "M")
    offset = (c.start_month - horizon0).astype(int)  # candidate start, in horizon months
    n, months = len(ids), constraints.months
    roles = list(constraints.capacity)
    role_rows = [scored.roles.index(r) for r in roles]
    hours = np.zeros((n, len(roles), months))
    for i, profile in enumerate(scored.monthly_hours):
        lo, hi = max(0, offset[i]), min(months, offset[i] + profile.shape[1])
        if lo < hi:
            hours[i, :, lo:hi] = profile[role_rows, lo - offset[i]:hi - offset[i]]
    # Risk-adjusted cost by month from each start, then summed per calendar year.
    monthly_cost = np.repeat(c.costs * scored.cost_factor[:, None] / 12, 12, axis=1)
    years = list(constraints.budget)
    cost = np.zeros((n, len(years)))
    month_year = (c.start_month[:, None] + np.arange(monthly_cost.shape[1])[None, :]
                  ).astype("datetime64[Y]").astype(int) + 1970
    for y, year in enumerate(years):
        cost[:, y] = (monthly_cost * (month_year == int(year))).sum(axis=1)
    return PortfolioProblem(
        ids=ids, value=scored.table["risk_adjusted_npv"].to_numpy(float), cost=cost,
        budget=np.array([constraints.budget[y] for y in years]), hours=hours,
        capacity=np.array([constraints.capacity[r] for r in roles]).reshape(len(roles), months),
        years=years, roles=roles,
        months=[str(horizon0 + m) for m in range(months)], must=c.mandatory.copy(),
        dependencies=[(index[a], index[b]) for a, b in constraints.dependencies],
        exclusions=[(index[a], index[b]) for a, b in constraints.exclusions],
    )


def _overflow(problem: PortfolioProblem, selected: np.ndarray) -> np.ndarray:
    """(rows, n): how far each row would exceed its limit if candidate i were added."""
    a, limits = build_rows(problem)
    return (a @ selected.astype(float))[:, None] + a.toarray() - limits[:, None]


def blocked_by_row(problem: PortfolioProblem, selected: np.ndarray) -> list[str]:
    """Per budget/capacity row: rejected positive-value candidates that would overflow it."""
    over = _overflow(problem, selected) > 1e-9
    over[:, selected | (problem.value <= 0)] = False
    ids = np.asarray(problem.ids)
    return [", ".join(ids[row]) for row in over]


def decision_reasons(problem: PortfolioProblem, selected: np.ndarray) -> list[str]:
    """Why each candidate is in or out: must-do, or what adding it to the selection would break."""
    over = _overflow(problem, selected)
    labels = problem.row_labels()
    ids = problem.ids
    reasons = []
    for i in range(len(ids)):
        if selected[i]:
            reasons.append("must-do" if problem.must[i] else "selected by the optimiser")
        elif problem.value[i] <= 0:
            reasons.append("no positive risk-adjusted value")
        elif needs := [ids[j] for k, j in problem.dependencies if k == i and not selected[j]]:
            reasons.append(f"requires {', '.join(needs)}, not selected")
        elif clash := [ids[j] for p, q in problem.exclusions for k, j in ((p, q), (q, p))
                       if k == i and selected[j]]:
            reasons.append(f"excluded by {', '.join(clash)}")
        elif (broken := np.flatnonzero(over[:, i] > 1e-9)).size:
            kind, period, role = labels[broken[0]]
            what = f"the {period} budget" if kind == "budget" else f"{role} capacity in {period}"
            more = f" (and {broken.size - 1} more limits)" if broken.size > 1 else ""
            unit = "" if kind == "budget" else " h"
            reasons.append(f"would exceed {what} by {over[broken[0], i]:,.0f}{unit}{more}")
        else:
            reasons.append("fits, but the selection is only proven within the reported gap")
    return reasons


def select_portfolio(scored: ScoredCandidates, constraints: Constraints,
                     time_limit: float = 10.0, mip_rel_gap: float = 1e-4) -> dict:
    """Optimise; returns decisions, binding constraints, load vs capacity and the frontier.

    Raises `InfeasiblePortfolio` naming the violated constraint.
    """
    problem = build_problem(scored, constraints)
    result = solve(problem, time_limit, mip_rel_gap)
    t = scored.table
    decisions = pd.DataFrame({
        "project_id": problem.ids, "selected": result.selected, "moscow": t["moscow"],
        "score": t["score"], "risk_adjusted_npv": problem.value,
        "cost_in_horizon": problem.cost.sum(axis=1),
        "reason": decision_reasons(problem, result.selected),
    }).sort_values(["selected", "risk_adjusted_npv"], ascending=False).reset_index(drop=True)
    usage = result.usage
    usage["blocks"] = blocked_by_row(problem, result.selected)
    load = usage[usage["kind"] == "capacity"].rename(
        columns={"period": "month", "used": "load_hours", "limit": "capacity_hours"})
    load["utilisation"] = load["load_hours"] / load["capacity_hours"].where(
        load["capacity_hours"] > 0)
    return {
        "status": result.status, "gap": result.gap, "solve_seconds": result.seconds,
        "total_value": result.total_value, "decisions": decisions,
        "binding": usage[usage["binding"] | (usage["blocks"] != "")].reset_index(drop=True),
        "budget": usage[usage["kind"] == "budget"].drop(columns=["kind", "role", "blocks"])
                  .rename(columns={"period": "year"}).reset_index(drop=True),
        "resource_load": load.drop(columns=["kind", "slack", "blocks"]).reset_index(drop=True),
        # Each frontier point gets a share of the time limit, so the call stays ~2x the limit.
        "frontier": frontier(problem, constraints.frontier_scales,
                             time_limit / max(1, len(constraints.frontier_scales)), mip_rel_gap),
        "scorecard_version": scored.config.version,
        "scorecard_digest": scored.config.digest,
        "reference_digest": scored.config.reference_digest,
        **({"profile": scored.candidates.profile, "notes": scored.notes}
           if scored.candidates.manifest is not None else {}),
    }
