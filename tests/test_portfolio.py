"""Portfolio MILP against brute force over all subsets, plus infeasibility messages."""

import itertools

import numpy as np
import pytest

from opm_ml.intake.portfolio import InfeasiblePortfolio, PortfolioProblem, greedy, solve


def small_problem(seed: int = 0, n: int = 12) -> PortfolioProblem:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(1, 10, (n, 2))
    hours = rng.uniform(0, 5, (n, 2, 3)) * (rng.random((n, 2, 3)) < 0.7)
    must = np.zeros(n, bool)
    must[0] = True
    return PortfolioProblem(
        ids=[f"P{i}" for i in range(n)], value=rng.uniform(-2, 10, n), cost=cost,
        budget=cost.sum(0) * 0.4, hours=hours, capacity=hours.sum(0) * 0.5,
        years=["2026", "2027"], roles=["build", "testing"], months=["m1", "m2", "m3"],
        must=must, dependencies=[(3, 4), (5, 0)], exclusions=[(6, 7), (1, 2)])


def brute_force(p: PortfolioProblem) -> float:
    """Best value over all 2^n subsets that satisfy every constraint."""
    n = len(p.ids)
    subsets = np.array(list(itertools.product([0, 1], repeat=n)), bool)
    ok = subsets[:, p.must].all(axis=1)
    ok &= (subsets.astype(float) @ p.cost <= p.budget + 1e-9).all(axis=1)
    ok &= (subsets.astype(float) @ p.hours.reshape(n, -1) <= p.capacity.reshape(-1) + 1e-9).all(1)
    for i, j in p.dependencies:
        ok &= ~subsets[:, i] | subsets[:, j]
    for i, j in p.exclusions:
        ok &= ~(subsets[:, i] & subsets[:, j])
    return float((subsets[ok].astype(float) @ p.value).max())


@pytest.mark.parametrize("seed", range(5))
def test_milp_matches_enumeration(seed):
    p = small_problem(seed)
    res = solve(p, mip_rel_gap=0)
    assert res.status == "optimal"
    assert res.total_value == pytest.approx(brute_force(p), rel=1e-9)
    x = res.selected
    assert x[0] and (not x[3] or x[4]) and not (x[6] and x[7]) and not (x[1] and x[2])
    assert (res.usage["used"] <= res.usage["limit"] + 1e-6).all()
    # Greedy baseline is feasible and never better than the proven optimum.
    assert p.value[greedy(p)].sum() <= res.total_value + 1e-9


def test_binding_rows_have_no_slack():
    p = small_problem(1)
    res = solve(p, mip_rel_gap=0, binding_tolerance=0.0)
    binding = res.usage[res.usage["binding"]]
    np.testing.assert_allclose(binding["slack"], 0, atol=1e-9)
    assert set(res.usage.columns) >= {"kind", "period", "role", "used", "limit", "slack"}


def test_infeasible_must_do_names_the_constraint():
    p = small_problem(2)
    p.must[:] = True  # everything forced in: far over budget and capacity
    p.exclusions.clear()
    with pytest.raises(InfeasiblePortfolio, match=r"must-do projects cost .* in 2026, the budget"):
        solve(p)
    p = small_problem(2)
    p.budget = p.budget * 100
    p.hours[0, 1, 2] = p.capacity[1, 2] + 7  # must-do P0 alone overloads testing in m3
    with pytest.raises(InfeasiblePortfolio, match=r"need [\d,]+ h of testing in m3, capacity is"):
        solve(p)


def test_must_do_exclusion_conflict_is_explained():
    p = small_problem(3)
    p.exclusions.append((0, 4))
    p.dependencies.append((0, 4))  # P0 needs P4 but excludes it
    with pytest.raises(InfeasiblePortfolio, match="P0 and P4 exclude each other"):
        solve(p)


def test_bad_shapes_are_refused():
    p = small_problem(0)
    with pytest.raises(ValueError, match="capacity has shape"):
        PortfolioProblem(**{**p.__dict__, "capacity": p.capacity[:, :2]})
