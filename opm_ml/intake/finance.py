"""Business-case arithmetic over yearly cash flows: NPV, ROI, payback period and IRR.

Convention (as spreadsheet NPV): year k = the k-th 12 months from the project's start; its net
flow (benefit - cost) is discounted as if received at the end of year k, i.e. by (1 + r)^k.
Every function takes an (n, years) array so a whole batch of candidates is one call.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

# IRR search range: -99 % .. +1,000 % a year; a rate outside it is reported as "no IRR".
IRR_BRACKET = (-0.99, 10.0)
_IRR_GRID = np.concatenate([np.linspace(-0.99, 1.0, 200), np.linspace(1.01, 10.0, 100)])


def _as_flows(flows) -> np.ndarray:
    flows = np.atleast_2d(np.asarray(flows, dtype=float))
    if np.isnan(flows).any():
        raise ValueError("cash flows contain NaN: fill every year of the cost and benefit profile")
    return flows


def npv(flows, rate, delay_years=0.0) -> np.ndarray:
    """Net present value of each row's yearly flows at its annual `rate`.

    `delay_years` (scalar or per row) shifts every flow later by that many years; used for
    benefits arriving after a predicted delay.
    """
    flows = _as_flows(flows)
    rate = np.broadcast_to(np.asarray(rate, float), flows.shape[:1])
    shift = np.broadcast_to(np.asarray(delay_years, float), flows.shape[:1])
    years = np.arange(1, flows.shape[1] + 1)
    factors = (1 + rate[:, None]) ** -(years[None, :] + shift[:, None])
    return (flows * factors).sum(axis=1)


def roi(costs, benefits) -> np.ndarray:
    """(total benefits - total cost) / total cost, undiscounted (the contract's expected_roi)."""
    cost = _as_flows(costs).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cost > 0, (_as_flows(benefits).sum(axis=1) - cost) / cost, np.nan)


def payback_years(flows) -> np.ndarray:
    """Years until cumulative (undiscounted) net flow turns non-negative; NaN if it never does.

    Within the paying-back year the flow is taken as even, so the crossing is interpolated:
    payback = (k - 1) + (-cumulative_before) / flow_k.
    """
    flows = _as_flows(flows)
    cum = np.cumsum(flows, axis=1)
    before = np.concatenate([np.zeros((len(flows), 1)), cum[:, :-1]], axis=1)
    # Crossing: cumulative was negative before year k (or nothing yet spent) and is >= 0 after.
    crosses = (cum >= 0) & ((before < 0) | (np.arange(flows.shape[1]) == 0))
    crosses &= flows > 0
    has = crosses.any(axis=1)
    k = np.argmax(crosses, axis=1)
    rows = np.arange(len(flows))
    flow_k = flows[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(flow_k > 0, -np.minimum(before[rows, k], 0) / flow_k, 0.0)
    return np.where(has, k + frac, np.nan)


def irr(flows) -> tuple[np.ndarray, list[str | None]]:
    """Internal rate of return per row, and why it is missing (None where it exists).

    NPV(r) is evaluated on a grid over IRR_BRACKET for all rows at once; each row's first sign
    change is refined with brentq. Flows that never change sign have no IRR; several NPV sign
    changes mean several IRRs, and the lowest is reported with a note.
    """
    flows = _as_flows(flows)
    years = np.arange(1, flows.shape[1] + 1)
    grid = (1 + _IRR_GRID[:, None]) ** -years[None, :]  # (G, years)
    values = flows @ grid.T  # (n, G)
    signs = np.sign(values)
    changes = (signs[:, :-1] * signs[:, 1:]) < 0
    out = np.full(len(flows), np.nan)
    reasons: list[str | None] = []
    for i in range(len(flows)):
        if not (flows[i] > 0).any() or not (flows[i] < 0).any():
            reasons.append("no IRR: the net cash flow never changes sign")
            continue
        where = np.flatnonzero(changes[i])
        exact = np.flatnonzero(values[i] == 0)
        if not len(where) and not len(exact):
            reasons.append(f"no IRR between {IRR_BRACKET[0]:.0%} and {IRR_BRACKET[1]:.0%} a year")
            continue
        if len(exact) and (not len(where) or exact[0] <= where[0]):
            out[i] = _IRR_GRID[exact[0]]
        else:
            g = where[0]
            out[i] = brentq(lambda r, f=flows[i]: float(f @ (1 + r) ** -years),
                            _IRR_GRID[g], _IRR_GRID[g + 1], xtol=1e-12)
        reasons.append(None if len(where) + len(exact) == 1 else
                       "several IRRs (cash flow changes sign more than once): lowest reported")
    return out, reasons
