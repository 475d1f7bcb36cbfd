"""SiP (Software in Partnership) task data: effort overrun per task, grouped by project.

`Sip-task-info` has one row per task and developer (12,299 rows, 10,266 tasks); task totals
repeat on each row, so tasks are de-duplicated first. `est-act-dates` adds the date the
estimate was made. There is no planned finish date, so no delay target can be formed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opm_ml.real_data._io import read_csv
from opm_ml.real_data.dataset import RealDataset, categorical, finish, positive_ratio

# As in Jones' ESEUR analysis (SiP-task-estact.R): cancelled, template and still-open
# (CHRONICLE) tasks are not finished work; ESTIMATED/AUTHORISE tasks have not been done either.
DONE_STATUSES = ("FINISHED", "COMPLETED", "RELEASED")

SIP_DELAY_SKIP_REASON = (
    "SiP has no planned finish date (est-act-dates gives the estimate, start and completion "
    "dates only), so actual/planned duration cannot be formed"
)


def _tasks(root: Path) -> pd.DataFrame:
    info = read_csv(root / "eseur_Sip-task-info.csv", encoding="cp1252")
    dates = read_csv(root / "eseur_est-act-dates.csv")
    tasks = info.drop_duplicates("TaskNumber")
    dates = dates.drop_duplicates("TaskNumber")
    merged = tasks.merge(dates, on="TaskNumber", how="left", validate="one_to_one")
    if merged["EstimateOn"].isna().any():
        raise ValueError("SiP: some tasks have no row in eseur_est-act-dates.csv")
    return merged


def sip_overrun(root: Path) -> RealDataset:
    """Actual / estimated hours of finished SiP tasks; folds keep each project together."""
    tasks = _tasks(root)
    done = tasks[tasks["StatusCode"].isin(DONE_STATUSES)]
    ratio = positive_ratio(done["HoursActual"], done["HoursEstimate"])
    keep = ratio.notna()
    done = done[keep]
    estimated_on = pd.to_datetime(done["EstimateOn"], format="%d-%b-%y")
    X = pd.DataFrame({
        "planned_effort_hours": done["HoursEstimate"].astype(float),
        "priority": done["Priority"].astype(float),
        "category": categorical(done["Category"]),
        "subcategory": categorical(done["SubCategory"]),
        "estimate_year": estimated_on.dt.year.astype(float),
    })
    return finish("sip_overrun", "overrun", X, ratio[keep].rename("effort_ratio"),
                  "eseur_Sip-task-info.csv + eseur_est-act-dates.csv",
                  f"{len(tasks)} distinct tasks, {len(done)} finished "
                  f"({', '.join(DONE_STATUSES)}); "
                  "HoursEstimate -> planned_effort_hours; groups = ProjectCode.",
                  groups=done["ProjectCode"], reference_column="subcategory")
