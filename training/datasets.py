"""Training examples: outcome targets, leakage-free time-ordered splits and in-flight sampling.

* A project is an example of a family when the family's planned value and actual outcome are
  both there and positive. Targets are log ratios of the actual to the planned value
  (duration, cost/BAC, effort), which tames the right skew. Rows a family cannot use are
  counted in the run's notes, never dropped silently.
* Splits are by project and ordered in time: completed projects sorted by start date, the oldest
  `train` fraction fits the models, the next `calibration` fraction calibrates them (conformal
  offsets, probability calibration), the newest `test` fraction is held out. Every in-flight
  example inherits its project's split, so no snapshot of a test project is ever trained on.
* In-flight examples: for each progress point p the snapshot whose progress is nearest p,
  within a tolerance. Progress is the reported `percent_complete`, or without it the share of
  the planned duration elapsed: both known at prediction time; sampling at a fraction of the
  *actual* duration would leak the outcome (the snapshot date would reveal the finish date).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from opm_ml.contract import ACTUAL_EFFORT_COLUMNS, ROLES
from opm_ml.forecasting import FAMILIES

SPLITS = ("train", "calibration", "test")
# Fewer completed projects than this cannot give a train, calibration and test slice worth
# the name (at the default 60/20/20 split: 18 to train on, 6 to calibrate, 6 to test).
MIN_PROJECTS = 30


def role_share_targets(roles) -> tuple[str, ...]:
    return tuple(f"actual_share_{r}" for r in roles)


ROLE_SHARE_TARGETS = role_share_targets(ROLES)


@dataclass
class StageData:
    """Examples of one stage (intake or in flight), by split; each frame = raw columns + targets."""

    train: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame

    def __getitem__(self, split: str) -> pd.DataFrame:
        return getattr(self, split)


@dataclass
class TrainingData:
    """Everything one family trains and evaluates on."""

    intake: StageData
    inflight: StageData
    split_ids: dict[str, np.ndarray]
    n_inflight_projects: int  # projects without this family's outcome: not trained on
    notes: list[str] = field(default_factory=list)


def completed_projects(projects: pd.DataFrame) -> pd.DataFrame:
    """Projects with an outcome; a finished project missing its cost or effort is an error."""
    done = projects[projects["actual_finish_date"].notna()]
    for col in ("actual_cost", *ACTUAL_EFFORT_COLUMNS):
        n_missing = int(done[col].isna().sum())
        if n_missing:
            first = done.loc[done[col].isna(), "project_id"].iloc[0]
            raise ValueError(f"{n_missing} finished project(s) have no {col} (first: {first})")
    return done.reset_index(drop=True)


def _number(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def actual_duration(projects: pd.DataFrame) -> np.ndarray:
    """Actual duration in days: given, or the actual finish minus the start."""
    days = _number(projects, "actual_duration_days")
    if "actual_finish_date" in projects.columns and "start_date" in projects.columns:
        finish = pd.to_datetime(projects["actual_finish_date"])
        start = pd.to_datetime(projects["start_date"])
        days = np.where(np.isnan(days), (finish - start).dt.days.to_numpy(dtype=float,
                                                                           na_value=np.nan), days)
    return days


def outcome_targets(projects: pd.DataFrame, late_threshold: float = 0.1,
                    roles=ROLES) -> pd.DataFrame:
    """Every target the rows' columns allow, aligned with `projects` (NaN where unusable):
    actual values, log ratios to plan, the late flag and, with actuals by role, role shares."""
    out: dict[str, np.ndarray] = {}
    duration = actual_duration(projects)
    planned = _number(projects, "planned_duration_days")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["actual_duration_days"] = duration
        out["log_duration_ratio"] = _log_ratio(duration, planned)
        out["late"] = np.where(np.isnan(out["log_duration_ratio"]), np.nan,
                               (duration > planned * (1 + late_threshold)).astype(float))
        cost = _number(projects, "actual_cost")
        out["actual_cost"] = cost
        out["log_cost_ratio"] = _log_ratio(cost, _number(projects, "budget_at_completion"))
        by_role = np.column_stack([_number(projects, f"actual_effort_{r}_hours") for r in roles]) \
            if roles else np.zeros((len(projects), 0))
        effort = _number(projects, "actual_effort_hours")
        if by_role.shape[1] and not np.isnan(by_role).all():
            effort = np.where(np.isnan(effort), by_role.sum(axis=1), effort)
        out["actual_effort_hours"] = effort
        out["log_effort_ratio"] = _log_ratio(effort, _number(projects, "planned_effort_hours"))
        # Each role's share of the roles' sum (the total may hold effort no role books).
        for r, role in enumerate(roles):
            out[f"actual_share_{role}"] = by_role[:, r] / by_role.sum(axis=1)
    return pd.DataFrame(out, index=projects.index)


def _log_ratio(actual: np.ndarray, planned: np.ndarray) -> np.ndarray:
    ok = (actual > 0) & (planned > 0) & np.isfinite(actual) & np.isfinite(planned)
    return np.where(ok, np.log(np.where(ok, actual, 1.0) / np.where(ok, planned, 1.0)), np.nan)


def time_split(projects: pd.DataFrame, fractions: tuple[float, float, float],
               group: str | None = None, notes: list[str] | None = None
               ) -> dict[str, np.ndarray]:
    """Project ids per split: oldest start dates train, the next calibrate, the newest test.

    `group`: a column whose groups stay whole (a by-project split of tasks): groups are ordered
    by their first start and each falls in the slice its middle project reaches. A project
    without a start date is ordered first (it trains, never tests: its age is unknown); without
    any start date the export's row order stands in for time. Both are said in `notes`.
    """
    notes = notes if notes is not None else []
    frame = projects.reset_index(drop=True)
    n = len(frame)
    start = pd.to_datetime(frame["start_date"]) if "start_date" in frame.columns else \
        pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if start.isna().all():
        notes.append("no start dates: the split follows the export's row order, not time "
                     "(map start_date for a time-ordered split)")
        # The row order stands in for time (ids sorted as text would be an arbitrary order).
        start = pd.Series(pd.Timestamp(0) + pd.to_timedelta(np.arange(n), "s"), index=frame.index)
    elif start.isna().any():
        notes.append(f"{int(start.isna().sum())} project(s) without a start date are put in "
                     "the training slice (a held-out project must be newer than training)")
    keys = (frame[group].astype(object).where(frame[group].notna(), frame["project_id"])
            if group else frame["project_id"]).astype(str)
    first = start.groupby(keys).transform("min")
    order = pd.DataFrame({"first": first, "key": keys, "start": start, "row": np.arange(n)})
    order = order.sort_values(["first", "key", "start", "row"], na_position="first",
                              kind="stable")
    sizes = order.groupby("key", sort=False).size()
    middle = (sizes.cumsum() - sizes / 2) / max(n, 1)
    cuts = np.cumsum(fractions)[:2]
    slice_of = pd.Series(np.searchsorted(cuts, middle.to_numpy()), index=sizes.index)
    counts = slice_of.value_counts().reindex(range(3), fill_value=0)
    if n < 3 or (counts == 0).any():
        what = f"{len(sizes)} groups of {group}" if group else f"{n} completed projects"
        raise ValueError(f"{what} are too few for a train/calibration/test split")
    if group:
        notes.append(f"split by {group}: {counts[0]}/{counts[1]}/{counts[2]} groups to train, "
                     "calibrate and test; no group is in two slices")
    part = order["key"].map(slice_of).to_numpy()
    ids = frame["project_id"].to_numpy()[order["row"].to_numpy()]
    return {name: ids[part == i] for i, name in enumerate(SPLITS)}


def progress(frame: pd.DataFrame) -> np.ndarray:
    """Percent complete of each snapshot row: reported, or else planned time elapsed (%)."""
    pct = _number(frame, "percent_complete")
    if np.isnan(pct).all() and {"status_date", "start_date"} <= set(frame.columns):
        elapsed = (pd.to_datetime(frame["status_date"]) - pd.to_datetime(frame["start_date"]))
        pct = 100 * elapsed.dt.days.to_numpy(dtype=float, na_value=np.nan) / _number(
            frame, "planned_duration_days")
    return pct


def inflight_examples(projects: pd.DataFrame, snapshots: pd.DataFrame,
                      points: tuple[float, ...], tolerance: float) -> pd.DataFrame:
    """One row per (project, progress point): the project's columns plus the chosen snapshot.

    The snapshot is the one whose progress is nearest the point, if within `tolerance`;
    a snapshot is used at most once per project. Column `progress_point` records the point.
    """
    values = [c for c in snapshots.columns if c != "project_id"]
    snaps = snapshots[snapshots["project_id"].isin(projects["project_id"])]
    if "percent_complete" not in snaps.columns or snaps["percent_complete"].isna().all():
        plan = projects[["project_id", "start_date", "planned_duration_days"]]
        snaps = snaps.merge(plan, on="project_id", how="left")
    snaps = snaps.assign(_progress=progress(snaps))
    snaps = snaps[np.isfinite(snaps["_progress"])].reset_index(drop=True)
    pct = snaps["_progress"].to_numpy(dtype=float)
    picks = []
    for point in points:
        dist = pd.Series(np.abs(pct - point), index=snaps.index)
        near = dist[dist <= tolerance]
        nearest = near.groupby(snaps.loc[near.index, "project_id"]).idxmin()
        picks.append(snaps.loc[nearest.to_numpy()].assign(progress_point=float(point)))
    chosen = pd.concat(picks).drop_duplicates(["project_id", "status_date"], keep="first")
    keep = chosen[["project_id", *values, "progress_point"]]
    return projects.merge(keep, on="project_id", how="inner", validate="one_to_many")


def build_training_data(projects: pd.DataFrame, snapshots: pd.DataFrame, spec,
                        roles=ROLES, group: str | None = None) -> TrainingData:
    """Targets, time-ordered project split and in-flight examples for one model spec;
    `group`: a column whose groups the split keeps whole (`time_split`).

    ValueError, with the count needed, when too few projects have the family's outcome.
    """
    family = FAMILIES[spec.family]
    targets = outcome_targets(projects, spec.late_threshold or 0.1, roles)
    usable = targets[family.target].notna().to_numpy()
    has_actual = targets[family.actual].notna().to_numpy()
    notes = []
    if (has_actual & ~usable).any():
        notes.append(f"{int((has_actual & ~usable).sum())} finished project(s) left out of "
                     f"{spec.family}: their {family.planned} or {family.actual} is 0 or "
                     "missing, so there is no ratio to learn")
    new = [c for c in targets.columns if c not in projects.columns]
    done = pd.concat([projects[usable], targets.loc[usable, new]], axis=1).reset_index(drop=True)
    if len(done) < MIN_PROJECTS:
        raise ValueError(
            f"{spec.family}: {len(done)} completed project(s) with both {family.planned} and "
            f"{family.actual}; at least {MIN_PROJECTS} are needed to train, calibrate and test")
    split_ids = time_split(done, (spec.train_fraction, spec.calibration_fraction,
                                  spec.test_fraction), group, notes)
    inflight = (inflight_examples(done, snapshots, spec.progress_points, spec.progress_tolerance)
                if len(snapshots) else done.iloc[:0])
    stages = {}
    for name, frame in (("intake", done), ("inflight", inflight)):
        parts = {s: frame[frame["project_id"].isin(split_ids[s])].reset_index(drop=True)
                 for s in SPLITS}
        stages[name] = StageData(**parts)
    return TrainingData(stages["intake"], stages["inflight"], split_ids,
                        n_inflight_projects=int(len(projects) - len(done)), notes=notes)
