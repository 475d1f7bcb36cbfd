"""Features of each activity of a schedule, as the learned duration model sees them.

The same columns the synthetic generator publishes (`opm_ml.synthetic.schedules.FEATURES`):
the activity's type and WBS area, log planned hours, total float in working days and resource
load from the planned CPM, plus project-level fields the caller supplies (intake data).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_ml.schedule.cpm import CPMResult, run_cpm
from opm_ml.schedule.model import Schedule

ACTIVITY_COLUMNS = ("activity_type", "wbs_area", "log_planned_hours", "total_float_days",
                    "resource_load")


def resource_load(start, finish, resource) -> np.ndarray:
    """How many activities of the same resource overlap each activity (itself included)."""
    s = np.asarray(start).astype("datetime64[m]").astype(np.int64)
    f = np.asarray(finish).astype("datetime64[m]").astype(np.int64)
    resource = np.asarray(resource, dtype=object)
    same = (resource[:, None] == resource[None, :]) & (resource[:, None] != None)  # noqa: E711
    overlap = (s[:, None] < f[None, :]) & (s[None, :] < f[:, None])
    return (same & overlap).sum(axis=1).clip(min=1).astype(float)


def activity_features(schedule: Schedule, project: dict | None = None,
                      cpm: CPMResult | None = None) -> pd.DataFrame:
    """One row per incomplete, non-milestone activity (index: activity id).

    `wbs_area` is the name of the activity's WBS node; resource load counts overlapping
    activities sharing the first assigned resource. `project` adds constant columns.
    """
    cpm = cpm if cpm is not None else run_cpm(schedule)
    frame = cpm.frame
    names = {w.id: w.name for w in schedule.wbs}
    first_resource = {}
    for s in schedule.assignments:
        first_resource.setdefault(s.activity_id, s.resource_id)
    keep = [a for a in schedule.activities if a.status != "complete" and not a.is_milestone
            and a.remaining > 0]
    ids = [a.id for a in keep]
    out = pd.DataFrame(index=pd.Index(ids, name="activity_id"))
    out["activity_type"] = [a.activity_type or "unknown" for a in keep]
    out["wbs_area"] = [names.get(a.wbs_id, "unknown") for a in keep]
    out["log_planned_hours"] = np.log([a.remaining for a in keep])
    hours_per_day = {c.id: c.hours_per_day for c in schedule.calendars.values()}
    out["total_float_days"] = np.maximum(frame.loc[ids, "total_float_hours"].to_numpy(float), 0) \
        / np.array([hours_per_day[a.calendar_id] for a in keep])
    out["resource_load"] = resource_load(frame.loc[ids, "early_start"].to_numpy(),
                                         frame.loc[ids, "early_finish"].to_numpy(),
                                         [first_resource.get(i) for i in ids])
    for key, value in (project or {}).items():
        out[key] = value
    return out
