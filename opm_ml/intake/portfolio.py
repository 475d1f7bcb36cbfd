"""Portfolio selection as an exact 0/1 integer program (scipy.optimize.milp, HiGHS).

maximise   sum_i value_i x_i                      x_i in {0, 1}
subject to sum_i cost_iy x_i   <= budget_y          for every budget year y
           sum_i hours_irm x_i <= capacity_rm       for every role r and month m
           x_i = 1                                  for must-do projects
           x_i <= x_j                               i depends on j
           x_i + x_j <= 1                           i and j exclude each other
Binding constraints are the budget/capacity rows whose slack at the optimum is within
`binding_tolerance` of their limit; the efficient frontier re-solves with every budget scaled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp


class InfeasiblePortfolio(ValueError):
    """No portfolio satisfies the constraints; the message names the violated one."""


@dataclass
class PortfolioProblem:
    """Arrays of one selection problem; labels make the report and error messages readable.

    value (n,); cost (n, Y) per budget period; hours (n, R, M) per role and month;
    budget (Y,); capacity (R, M); must (n,) bool; dependencies / exclusions as index pairs.
    """

    ids: list[str]
    value: np.ndarray
    cost: np.ndarray
    budget: np.ndarray
    hours: np.ndarray
    capacity: np.ndarray
    years: list[str]
    roles: list[str]
    months: list[str]
    must: np.ndarray
    dependencies: list[tuple[int, int]] = field(default_factory=list)  # (i, j): i needs j
    exclusions: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self):
        n = len(self.ids)
        checks = {"value": (self.value, (n,)), "cost": (self.cost, (n, len(self.years))),
                  "budget": (self.budget, (len(self.years),)),
                  "hours": (self.hours, (n, len(self.roles), len(self.months))),
                  "capacity": (self.capacity, (len(self.roles), len(self.months))),
                  "must": (self.must, (n,))}
        for name, (array, shape) in checks.items():
            if np.shape(array) != shape:
                raise ValueError(f"{name} has shape {np.shape(array)}, expected {shape}")
        for name in ("value", "cost", "budget", "hours", "capacity"):
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{name} contains NaN or infinite numbers")
        for i, j in [*self.dependencies, *self.exclusions]:
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"dependency/exclusion pair ({i}, {j}) is not two candidates")

    def row_labels(self) -> list[tuple[str, str, str]]:
        """(kind, period, role) of each resource row: budget years, then role x month."""
        labels = [("budget", y, "") for y in self.years]
        labels += [("capacity", m, r) for r in self.roles for m in self.months]
        return labels


@dataclass
class PortfolioResult:
    """The optimum: selection, its value, constraint use and how far from proven optimal."""

    selected: np.ndarray  # bool (n,)
    total_value: float
    gap: float  # relative MIP gap; 0 = proven optimal
    status: str
    seconds: float
    usage: pd.DataFrame  # kind, period, role, used, limit, slack, binding


def build_rows(problem: PortfolioProblem) -> tuple[sparse.csr_array, np.ndarray]:
    """Budget and capacity rows as one sparse (rows, n) matrix with its upper limits."""
    n = len(problem.ids)
    a = np.concatenate([problem.cost.T, problem.hours.reshape(n, -1).T], axis=0)
    limits = np.concatenate([problem.budget, problem.capacity.reshape(-1)])
    return sparse.csr_array(a), limits


def _logic_rows(problem: PortfolioProblem) -> LinearConstraint | None:
    n = len(problem.ids)
    rows, cols, vals, upper = [], [], [], []
    for k, (i, j) in enumerate(problem.dependencies):  # x_i - x_j <= 0
        rows += [k, k]; cols += [i, j]; vals += [1.0, -1.0]; upper.append(0.0)  # noqa: E702
    base = len(problem.dependencies)
    for k, (i, j) in enumerate(problem.exclusions):  # x_i + x_j <= 1
        rows += [base + k] * 2; cols += [i, j]; vals += [1.0, 1.0]; upper.append(1.0)  # noqa: E702
    if not upper:
        return None
    a = sparse.csr_array((vals, (rows, cols)), shape=(len(upper), n))
    return LinearConstraint(a, -np.inf, np.array(upper))


def forced_in(problem: PortfolioProblem) -> np.ndarray:
    """Must-do projects plus everything they depend on, transitively."""
    forced = problem.must.astype(bool).copy()
    changed = True
    while changed:
        changed = False
        for i, j in problem.dependencies:
            if forced[i] and not forced[j]:
                forced[j] = changed = True
    return forced


def diagnose(problem: PortfolioProblem) -> str | None:
    """Why the forced-in projects alone break a constraint (first one found), or None."""
    forced = forced_in(problem)
    ids = np.asarray(problem.ids)
    for i, j in problem.exclusions:
        if forced[i] and forced[j]:
            return (f"must-do projects {ids[i]} and {ids[j]} exclude each other "
                    "(directly or through their dependencies)")
    a, limits = build_rows(problem)
    need = a @ forced.astype(float)
    over = np.flatnonzero(need > limits * (1 + 1e-9) + 1e-9)
    if not len(over):
        return None
    kind, period, role = problem.row_labels()[over[0]]
    k = over[0]
    if kind == "budget":
        return (f"must-do projects cost {need[k]:,.0f} in {period}, "
                f"the budget is {limits[k]:,.0f}")
    return (f"must-do projects need {need[k]:,.0f} h of {role} in {period}, "
            f"capacity is {limits[k]:,.0f} h")


def solve(problem: PortfolioProblem, time_limit: float = 10.0, mip_rel_gap: float = 1e-4,
          binding_tolerance: float = 0.01) -> PortfolioResult:
    """The value-maximising selection; InfeasiblePortfolio naming the constraint if none exists.

    `mip_rel_gap`: stop once the selection is proven within this fraction of the optimum
    (1e-4 = 0.01 %); `time_limit` in seconds, after which the achieved gap is reported.
    """
    reason = diagnose(problem)
    if reason:
        raise InfeasiblePortfolio(reason)
    n = len(problem.ids)
    a, limits = build_rows(problem)
    constraints = [LinearConstraint(a, -np.inf, limits)]
    logic = _logic_rows(problem)
    if logic is not None:
        constraints.append(logic)
    lower = forced_in(problem).astype(float)
    started = time.perf_counter()
    res = milp(-np.asarray(problem.value, float), integrality=np.ones(n),
               bounds=Bounds(lower, np.ones(n)), constraints=constraints,
               options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap, "disp": False})
    seconds = time.perf_counter() - started
    if res.x is None:
        if res.status == 2:
            raise InfeasiblePortfolio(
                "no selection satisfies the dependencies and exclusions together with the "
                "budget and capacity limits")
        raise RuntimeError(f"the solver stopped without a selection: {res.message}")
    selected = res.x > 0.5
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    return PortfolioResult(selected, float(problem.value[selected].sum()), max(gap, 0.0),
                           "optimal" if res.status == 0 else "time limit (gap reported)",
                           seconds, usage_table(problem, selected, binding_tolerance))


def usage_table(problem: PortfolioProblem, selected: np.ndarray,
                binding_tolerance: float = 0.01) -> pd.DataFrame:
    """Every budget and capacity row: used, limit, slack, and binding (slack <= tol x limit)."""
    a, limits = build_rows(problem)
    used = a @ selected.astype(float)
    labels = problem.row_labels()
    slack = limits - used
    return pd.DataFrame({
        "kind": [k for k, _, _ in labels], "period": [p for _, p, _ in labels],
        "role": [r for _, _, r in labels], "used": used, "limit": limits, "slack": slack,
        "binding": slack <= binding_tolerance * np.maximum(limits, 1e-9),
    })


def frontier(problem: PortfolioProblem, scales=(0.5, 0.75, 1.0, 1.25, 1.5),
             time_limit: float = 10.0, mip_rel_gap: float = 1e-4) -> pd.DataFrame:
    """Best value at each budget level (every year's budget x scale, capacity unchanged)."""
    rows = []
    for scale in scales:
        scaled = PortfolioProblem(**{**problem.__dict__, "budget": problem.budget * scale})
        try:
            res = solve(scaled, time_limit, mip_rel_gap)
        except InfeasiblePortfolio as exc:
            rows.append({"budget_scale": scale, "budget_total": float(scaled.budget.sum()),
                         "total_value": np.nan, "cost_in_horizon": np.nan, "selected": 0,
                         "gap": np.nan, "note": str(exc)})
            continue
        rows.append({"budget_scale": scale, "budget_total": float(scaled.budget.sum()),
                     "total_value": res.total_value,
                     "cost_in_horizon": float(problem.cost[res.selected].sum()),
                     "selected": int(res.selected.sum()), "gap": res.gap, "note": ""})
    return pd.DataFrame(rows)


def greedy(problem: PortfolioProblem) -> np.ndarray:
    """Baseline: forced projects, then the rest by value per unit cost while everything fits."""
    a, limits = build_rows(problem)
    a = a.toarray()
    chosen = forced_in(problem).copy()
    used = a @ chosen
    cost = problem.cost.sum(axis=1)
    order = np.argsort(-problem.value / np.maximum(cost, 1e-9))
    excluded = {i: set() for i in range(len(chosen))}
    for i, j in problem.exclusions:
        excluded[i].add(j)
        excluded[j].add(i)
    needs = {}
    for i, j in problem.dependencies:
        needs.setdefault(i, set()).add(j)
    for i in order:
        if chosen[i] or problem.value[i] <= 0:
            continue
        if any(chosen[j] for j in excluded[i]) or not all(chosen[j] for j in needs.get(i, ())):
            continue
        if np.all(used + a[:, i] <= limits + 1e-9):
            chosen[i] = True
            used += a[:, i]
    return chosen
