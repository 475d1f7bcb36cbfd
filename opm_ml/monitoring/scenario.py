"""The drift scenario the monitoring tests and `benchmarks/monitoring.py` run.

A history up to the end of 2022 trains the champion; a future of projects starting in 2023-24
is then forecast (at intake and at about 25/50/75 % complete) and finishes. The shifted future
has twice the share of IT projects, more volatile requirements and a regime change that adds
`SHIFT.cost_shift` / `schedule_shift` to every log overrun; the unshifted one is the same
generator. `combine` appends a future to the history, as a history folder grows.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd

from opm_ml.contract import History
from opm_ml.synthetic import generate_history
from opm_ml.synthetic.regime import Regime

HISTORY_END = "2022-12-31"
FUTURE_STARTS = ("2023-01-01", "2024-12-31")
FUTURE_END = "2034-12-31"  # late enough for nearly every future project to finish
# IT: 30 % of projects -> 60 % (weight 3.5 on its share); volatility about +0.8 point on the
# 1-5 scale; overruns and delays x 1.16 (log + 0.15) on top of what the drivers explain.
SHIFT = Regime(type_weights={"it_software": 3.5}, volatility_shift=0.8, cost_shift=0.15,
               schedule_shift=0.15)
STATUS = ("status_date", "pv", "ev", "ac", "percent_complete")


def history(n: int, seed: int) -> History:
    """The history the champion learns from (starts 2012 to late 2022)."""
    return generate_history(n, seed=seed, as_of=HISTORY_END)


def future(n: int, seed: int, shifted: bool) -> History:
    """Projects starting in 2023-24, shifted or not, observed until they finish."""
    regime = replace(SHIFT if shifted else Regime(), first_start=FUTURE_STARTS[0],
                     last_start=FUTURE_STARTS[1], id_prefix="S" if shifted else "U")
    return generate_history(n, seed=seed, as_of=FUTURE_END, regime=regime)


def forecast_rows(h: History, points=(25.0, 50.0, 75.0), tolerance: float = 12.5) -> pd.DataFrame:
    """What a PMO asks about each project: one intake row, and one in-flight row with the
    snapshot nearest each progress point (as training picks its in-flight examples)."""
    projects = h.projects.drop(columns=[c for c in h.projects.columns
                                        if c.startswith("actual_")])
    snaps = h.snapshots.reset_index(drop=True)
    picks = []
    for point in points:
        dist = (snaps["percent_complete"] - point).abs()
        near = dist[dist <= tolerance]
        picks.append(near.groupby(snaps.loc[near.index, "project_id"]).idxmin())
    chosen = snaps.loc[np.unique(np.concatenate([p.to_numpy() for p in picks])),
                       ["project_id", *STATUS]]
    inflight = projects.merge(chosen, on="project_id", how="inner")
    return pd.concat([projects, inflight], ignore_index=True)


def request_bodies(rows: pd.DataFrame) -> list[dict]:
    """`forecast_rows` as API request bodies (intake fields, `status` when in flight)."""
    frame = rows.copy()
    for column in ("start_date", "status_date"):
        frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%d")
    bodies = []
    for record in json.loads(frame.to_json(orient="records", double_precision=15)):
        status = {k: record.pop(k) for k in STATUS if k in record}
        if status.get("status_date") is not None:
            record["status"] = status
        bodies.append(record)
    return bodies


def combine(a: History, b: History) -> History:
    """`b` appended to `a` (a history folder after new projects were added)."""
    return History(*(pd.concat([getattr(a, t), getattr(b, t)], ignore_index=True)
                     for t in ("projects", "snapshots", "resource_usage")))
