"""Portfolio summary of a project history: what `make run` prints after loading the data."""

from __future__ import annotations

import pandas as pd

PERCENTILES = (10, 50, 90)


def portfolio_summary(projects: pd.DataFrame, late_threshold: float = 0.10) -> pd.DataFrame:
    """Per project type (and `all`): counts and overrun percentiles of completed projects.

    Overrun is (actual / planned - 1) in percent; `late_share` is the share of completed projects
    more than `late_threshold` late, the event the delay model predicts.
    """
    done = projects["actual_finish_date"].notna()
    duration = (projects["actual_finish_date"] - projects["start_date"]).dt.days
    frame = pd.DataFrame(
        {
            "project_type": projects["project_type"],
            "done": done,
            "cost": (projects["actual_cost"] / projects["budget_at_completion"] - 1) * 100,
            "schedule": (duration / projects["planned_duration_days"] - 1) * 100,
        }
    )
    rows = {kind: _stats(group, late_threshold) for kind, group in frame.groupby("project_type")}
    rows["all"] = _stats(frame, late_threshold)
    return pd.DataFrame(rows).T.astype({"projects": int, "completed": int})


def _stats(frame: pd.DataFrame, late_threshold: float) -> pd.Series:
    done = frame[frame["done"]]
    stats: dict[str, float] = {"projects": len(frame), "completed": len(done)}
    for name in ("cost", "schedule"):
        for p in PERCENTILES:
            stats[f"{name}_overrun_p{p}_pct"] = done[name].quantile(p / 100)
        stats[f"{name}_overrun_mean_pct"] = done[name].mean()
    stats["late_share"] = (done["schedule"] > late_threshold * 100).mean()
    return pd.Series(stats)
