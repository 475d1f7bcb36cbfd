"""Generate, write and sample a synthetic project history in the opm-ml data contract."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from opm_ml.contract import ACTUAL_EFFORT_COLUMNS, TABLES, USAGE_HOUR_COLUMNS, History
from opm_ml.synthetic.intake import sample_intake
from opm_ml.synthetic.outcomes import sample_outcomes
from opm_ml.synthetic.regime import DEFAULT, Regime
from opm_ml.synthetic.timeline import Plan, resource_usage, snapshots

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE_PROJECTS = 300
SAMPLE_SEED = 7
_EARLIEST_AS_OF = np.datetime64("2013-01-01")


def generate_history(n_projects: int, seed: int = 42, as_of: str | date = "2025-12-31",
                     regime: Regime = DEFAULT) -> History:
    """A realistic synthetic portfolio of `n_projects`, identical for the same seed and as_of.

    Projects start between 2012-01-01 and 90 days before `as_of`; those not finished by `as_of`
    are in flight: no outcome columns, and snapshots and usage only up to `as_of`.
    The causal structure and its achievable error floor are documented in data/README.md;
    `regime` shifts it (`opm_ml.synthetic.regime`).
    """
    if isinstance(n_projects, bool) or not isinstance(n_projects, (int, np.integer)):
        raise TypeError(f"n_projects must be an integer, got {n_projects!r}")
    if n_projects < 1:
        raise ValueError(f"n_projects must be at least 1, got {n_projects}")
    try:
        cutoff = np.datetime64(pd.Timestamp(as_of).date(), "D")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"as_of must be a date (YYYY-MM-DD), got {as_of!r}") from exc
    if cutoff < _EARLIEST_AS_OF:
        raise ValueError(f"as_of must be on or after {_EARLIEST_AS_OF}, got {cutoff}")

    intake_rng, outcome_rng, snapshot_rng, usage_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    columns, trouble = sample_intake(n_projects, intake_rng, cutoff, regime)
    outcomes = sample_outcomes(columns, trouble, outcome_rng, regime)

    plan = Plan(
        start=columns["start_date"].astype(np.int64),
        planned_days=columns["planned_duration_days"],
        actual_days=outcomes.actual_days,
        bac=columns["budget_at_completion"],
        actual_cost=outcomes.actual_cost,
        role_effort=outcomes.role_effort,
        late_cpi_drift=outcomes.late_cpi_drift,
    )
    as_of_day = int(cutoff.astype(np.int64))
    finished = plan.finish <= as_of_day
    width = max(6, len(str(n_projects)))
    numbers = np.char.zfill(np.arange(1, n_projects + 1).astype(str), width)
    ids = np.char.add(regime.id_prefix, numbers)

    projects = {"project_id": ids, **columns}
    projects["actual_finish_date"] = np.where(finished, plan.finish, np.iinfo(np.int64).min)
    projects["actual_cost"] = np.where(finished, outcomes.actual_cost, np.nan)
    for j, name in enumerate(ACTUAL_EFFORT_COLUMNS):
        projects[name] = np.where(finished, outcomes.role_effort[:, j], np.nan)

    snaps = snapshots(plan, as_of_day, snapshot_rng)
    snaps["project_id"] = ids[snaps.pop("project")]
    usage = resource_usage(plan, as_of_day, usage_rng)
    usage["project_id"] = ids[usage.pop("project")]
    hours = usage.pop("hours")
    usage.update({name: hours[:, j] for j, name in enumerate(USAGE_HOUR_COLUMNS)})
    return History(
        projects=_frame(projects, "projects"),
        snapshots=_frame(snaps, "snapshots"),
        resource_usage=_frame(usage, "resource_usage"),
    )


def _frame(data: dict[str, np.ndarray], table: str) -> pd.DataFrame:
    """Arrays to a frame with the contract's column order and dtypes."""
    out = {}
    for col in TABLES[table]:
        values = np.asarray(data[col.name])
        if col.kind == "date":
            # Missing dates arrive as int64 min, which is NaT once viewed as datetime64.
            out[col.name] = pd.Series(values.astype(np.int64).astype("datetime64[D]"),
                                      dtype="datetime64[ns]")
        elif col.kind in ("str", "category"):
            out[col.name] = pd.Series(values, dtype="str")
        elif col.kind == "int":
            out[col.name] = pd.Series(values, dtype="int64")
        else:
            out[col.name] = pd.Series(values, dtype="float64")
    return pd.DataFrame(out)


def write_history(history: History, out_dir: Path | str,
                  fmt: Literal["parquet", "csv"] = "parquet") -> list[Path]:
    """Write projects, snapshots and resource_usage as `<table>.<fmt>`; returns the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in TABLES:
        frame = getattr(history, table)
        path = out_dir / f"{table}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%d", float_format="%.10g")
        paths.append(path)
    return paths


def write_sample(out_dir: Path | str = SAMPLE_DIR) -> list[Path]:
    """Regenerate the committed sample in data/sample/ (300 projects, seed 7, CSV)."""
    history = generate_history(SAMPLE_PROJECTS, seed=SAMPLE_SEED)
    return write_history(history, out_dir, fmt="csv")
