"""Benchmark: portfolio selection, 1,000 candidates x 24 months x 8 roles, exact MILP vs greedy.

Synthetic but shaped like a real intake round: projects of 3-24 months starting over the
horizon, costs spread over two budget years, lognormal sizes, value loosely tied to cost, 8 roles
(the contract's 6 plus `architecture` and `operations`), budget and capacity at ~35 % of demand,
20 must-do projects, 30 dependencies and 30 exclusions.

    .venv/bin/python benchmarks/portfolio.py [--n 1000] [--seeds 3] [--time-limit 9.5]
"""

from __future__ import annotations

import argparse

import numpy as np

from opm_ml.contract import ROLES
from opm_ml.intake.portfolio import PortfolioProblem, greedy, solve

BENCH_ROLES = [*ROLES, "architecture", "operations"]


def synthetic_problem(n: int = 1000, months: int = 24, seed: int = 0) -> PortfolioProblem:
    rng = np.random.default_rng(seed)
    roles = len(BENCH_ROLES)
    cost_total = rng.lognormal(np.log(2e6), 0.8, n)
    value = cost_total * rng.lognormal(np.log(0.4), 0.6, n) * rng.choice([-0.2, 1], n, p=[.1, .9])
    start = rng.integers(0, months - 2, n)
    length = rng.integers(3, 25, n)
    month = np.arange(months)
    active = (month >= start[:, None]) & (month < start[:, None] + length[:, None])
    share = rng.dirichlet(np.ones(roles), n)
    total_hours = cost_total / 120.0
    per_month = total_hours / length
    hours = active[:, None, :] * (share * per_month[:, None])[:, :, None]  # (n, R, M)
    year = month // 12
    cost = np.stack([(active & (year == y)).sum(1) / length * cost_total for y in (0, 1)], 1)
    budget = 0.35 * cost.sum(0)
    capacity = 0.35 * hours.sum(0)
    must = np.zeros(n, bool)
    must[rng.choice(n, 20, replace=False)] = True
    pairs = rng.choice(n, (60, 2))
    pairs = [tuple(p) for p in pairs.tolist() if p[0] != p[1]]
    return PortfolioProblem(
        ids=[f"C{i:04d}" for i in range(n)], value=value, cost=cost, budget=budget, hours=hours,
        capacity=capacity, years=["Y1", "Y2"], roles=BENCH_ROLES,
        months=[f"M{m + 1:02d}" for m in month], must=must,
        dependencies=[p for p in pairs[:30] if not must[p[0]]], exclusions=pairs[30:],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=9.5)
    args = parser.parse_args()
    print(f"{args.n} candidates x 24 months x {len(BENCH_ROLES)} roles, 2 budget years")
    print("| seed | status | solve s | MILP value | proven gap | greedy value | greedy below |")
    print("|---|---|---|---|---|---|---|")
    for seed in range(args.seeds):
        problem = synthetic_problem(args.n, seed=seed)
        res = solve(problem, time_limit=args.time_limit)
        g = greedy(problem)
        g_value = problem.value[g].sum()
        below = (res.total_value - g_value) / res.total_value
        print(f"| {seed} | {res.status} | {res.seconds:.2f} | {res.total_value:,.0f} | "
              f"{res.gap:.3%} | {g_value:,.0f} | {below:.2%} |")


if __name__ == "__main__":
    main()
