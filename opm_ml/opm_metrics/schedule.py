"""Earned schedule: how far along the time-phased PV baseline does the value earned so far reach?

Projects are handled together: their baseline points are sorted once and searched with a
vectorised binary search, O(n log n) with no Python loop over projects or snapshots.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from opm_ml.opm_metrics.consistency import REL_TOL


def earned_schedule_days(
    ev: np.ndarray,
    project: np.ndarray,
    bac: np.ndarray,
    duration_days: np.ndarray,
    points: tuple[np.ndarray, np.ndarray, np.ndarray],
    describe: Callable[[int, float, float], str] = lambda g, t, v: f"project {g}, day {t:g}",
) -> np.ndarray:
    """Earned schedule (days since start) of each snapshot, Lipke's ES with linear interpolation.

    `ev` and `project` (codes 0..P-1) have one element per snapshot; `bac` and
    `duration_days` one per project; `points` = (project codes, days since start, PV) are the
    known baseline points. Project p's baseline runs through (0, 0), its points and
    (duration_days[p], bac[p]), joined by straight lines. As in Lipke, C is the LAST knot with
    PV_C <= EV and ES = t_C + (EV - PV_C) / (PV_C+1 - PV_C) * (t_C+1 - t_C), in days instead
    of periods: where PV is flat at EV (a pause, or a PV = 0 mobilisation) ES is the end of the
    flat stretch, and ES never passes the planned finish (EV = BAC gives ES = duration_days).
    Raises ValueError (via `describe(project, day, pv)`) for a baseline that decreases, two
    different PVs on one day, or a PV below BAC on the planned finish day.
    """
    n_projects = len(bac)
    ids = np.arange(n_projects)
    pg = np.concatenate([ids, points[0], ids])
    pt = np.concatenate([np.zeros(n_projects), points[1], duration_days])
    ppv = np.concatenate([np.zeros(n_projects), points[2], bac])
    order = np.lexsort((ppv, pt, pg))  # within a project: by day, ties by PV
    pg, pt, ppv = pg[order], pt[order], ppv[order]
    _check_baseline(pg, pt, ppv, bac, duration_days, lambda i: describe(pg[i], pt[i], ppv[i]))
    if ((pg[1:] == pg[:-1]) & (ppv[1:] < ppv[:-1])).any():
        # Dips within REL_TOL only: make each curve exactly non-decreasing for the search.
        ppv = pd.Series(ppv).groupby(pg).cummax().to_numpy()

    counts = np.bincount(pg, minlength=n_projects)
    first = np.cumsum(counts) - counts
    target = np.minimum(ev, bac[project])  # EV can only exceed BAC by rounding noise
    # Binary search for k, the first knot with PV_k > EV (end if none); C = k - 1 is the last
    # knot with PV_C <= EV, which exists because every curve starts at (0, 0) and EV >= 0.
    lo, hi = first[project], first[project] + counts[project]
    for _ in range(int(counts.max(initial=1)).bit_length()):
        mid = (lo + hi) >> 1
        right = ppv[np.minimum(mid, len(ppv) - 1)] <= target
        lo, hi = np.where(right & (lo < hi), mid + 1, lo), np.where(right, hi, mid)
    c = lo - 1
    past_end = lo == first[project] + counts[project]  # EV reaches the curve's top (BAC)
    k = np.where(past_end, c, lo)
    with np.errstate(divide="ignore", invalid="ignore"):  # used only where PV_C <= EV < PV_k
        between = pt[c] + (target - ppv[c]) / (ppv[k] - ppv[c]) * (pt[k] - pt[c])
    es = np.where(past_end, pt[c], between)
    # Snapshots after the planned finish repeat PV = BAC: the baseline itself ends there.
    return np.minimum(es, duration_days[project])


def _check_baseline(pg, pt, ppv, bac, duration_days, where: Callable[[int], str]) -> None:
    """Sorted baseline points must form one non-decreasing curve per project."""
    same = pg[1:] == pg[:-1]
    tol = REL_TOL * bac[pg[1:]]
    dip = same & (ppv[1:] < ppv[:-1] - tol)
    if dip.any():
        i = int(np.flatnonzero(dip)[0])
        raise ValueError(f"pv must not decrease over time: {where(i)}, then {where(i + 1)}")
    # Only the start may jump (front-loaded cost); on the planned finish day PV is BAC.
    clash = same & (pt[1:] == pt[:-1]) & (pt[1:] > 0) & (ppv[1:] - ppv[:-1] > tol)
    on_finish = clash & (pt[1:] == duration_days[pg[1:]])
    if on_finish.any():
        i = int(np.flatnonzero(on_finish)[0])
        raise ValueError(f"pv must equal bac from the planned finish on: {where(i)}")
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise ValueError(f"pv differs on one status date: {where(i)} and {where(i + 1)}")
