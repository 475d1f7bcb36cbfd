"""Outcomes of finished projects into the service database: what each forecast is judged by.

`ingest_outcomes(path, url)` reads a projects table (a CSV/Parquet file, or the projects table
of a history folder), validates every row against the data contract and reports each bad one
(row, column, value, reason), then stores per finished project and family the planned and the
actual value (duration in days, cost, effort hours). Running projects are counted, not stored;
ingesting a project again replaces its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert

from opm_ml import database, validation
from opm_ml.contract import ACTUAL_EFFORT_COLUMNS
from opm_ml.database.tables import project_outcomes
from opm_ml.forecasting.families import FAMILIES

# Outcome columns that are not in the contract's projects table but follow from it.
DERIVED_ACTUALS = ("actual_duration_days", "actual_effort_hours")


@dataclass
class IngestResult:
    """What an ingest read, stored and rejected (`rejections`: table, row, column, value,
    reason)."""

    source: str
    rows: int
    finished: int
    running: int
    stored: int  # outcome rows (projects x families)
    rejections: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def rejected_rows(self) -> int:
        return int(self.rejections["row"].nunique()) if len(self.rejections) else 0


def projects_file(path: Path) -> Path:
    """The projects table of `path`: the file itself, or a history folder's projects table."""
    if not path.is_dir():
        return path
    for suffix in (".parquet", ".csv"):
        if (path / f"projects{suffix}").exists():
            return path / f"projects{suffix}"
    raise validation.ContractError(f"{path} has no projects.parquet or projects.csv")


def read_outcomes(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """(outcome rows, rejections, rows read, running projects) of a projects table.

    Raises ContractError when the file cannot be read at all (missing, wrong columns).
    """
    result = validation.load_table(projects_file(Path(path)), "projects")
    good, rejections = result.good, result.rejections.assign(table="projects")
    done = good[good["actual_finish_date"].notna()]
    actuals = actual_values(done)
    bad = pd.Series(False, index=done.index)
    problems = []
    for name, values in actuals.items():
        nonpositive = ~(values > 0)
        problems += [{"table": "projects", "row": int(row), "column": name,
                      "value": f"{values[row]:g}",
                      "reason": f"{name} must be > 0 to judge a forecast by it"}
                     for row in done.index[nonpositive & ~bad]]
        bad |= nonpositive
    rejections = pd.concat([rejections, pd.DataFrame(problems, columns=rejections.columns)],
                           ignore_index=True)
    done = done[~bad]
    rows = [pd.DataFrame({
        "project_id": done["project_id"].astype(str).to_numpy(),
        "family": spec.name,
        "project_type": done["project_type"].astype(str).to_numpy(),
        "planned": done[spec.planned].to_numpy(float),
        "actual": actuals[spec.actual][~bad].to_numpy(float),
        "finished_on": pd.to_datetime(done["actual_finish_date"]).dt.date.to_numpy(),
    }) for spec in FAMILIES.values()]
    order = ["table", "row", "column", "value", "reason"]
    rejections = rejections[order].sort_values("row", kind="stable").reset_index(drop=True)
    running = int(good["actual_finish_date"].isna().sum())
    return pd.concat(rows, ignore_index=True), rejections, result.n_rows, running


def actual_values(projects: pd.DataFrame) -> dict[str, pd.Series]:
    """Each family's actual value of finished projects, in the family's unit."""
    start = pd.to_datetime(projects["start_date"])
    finish = pd.to_datetime(projects["actual_finish_date"])
    derived = {
        "actual_duration_days": (finish - start).dt.days.astype(float),
        "actual_effort_hours": projects[list(ACTUAL_EFFORT_COLUMNS)].astype(float).sum(
            axis=1, min_count=1),
    }
    return {spec.actual: (derived[spec.actual] if spec.actual in DERIVED_ACTUALS
                          else projects[spec.actual].astype(float))
            for spec in FAMILIES.values()}


def ingest_outcomes(path: Path, url: str) -> IngestResult:
    """Validate `path` and store the finished projects' outcomes in the database at `url`."""
    outcomes, rejections, n_rows, running = read_outcomes(path)
    source = str(Path(path).resolve())[:500]
    finished = outcomes["project_id"].nunique()
    if len(outcomes):
        store(outcomes, source, url)
    return IngestResult(source, n_rows, finished, running, len(outcomes), rejections)


def store(outcomes: pd.DataFrame, source: str, url: str) -> None:
    """Replace the outcomes of these projects in one transaction."""
    engine = database.connect(url)
    now = datetime.now(timezone.utc)
    records = outcomes.assign(source=source, ingested_at=now).replace({np.nan: None})
    ids = outcomes["project_id"].unique().tolist()
    with database.engine.translate_errors(engine), engine.begin() as conn:
        for start in range(0, len(ids), 500):  # bounded IN lists
            conn.execute(delete(project_outcomes).where(
                project_outcomes.c.project_id.in_(ids[start:start + 500])))
        conn.execute(insert(project_outcomes), records.to_dict("records"))
