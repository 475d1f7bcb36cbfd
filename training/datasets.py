"""Training examples: outcome targets, leakage-free time-ordered splits and in-flight sampling.

* Only completed projects (an `actual_finish_date`) have targets. Targets are log ratios of the
  actual to the planned value (duration, cost/BAC, effort), which tames the right skew.
* Splits are by project and ordered in time: completed projects sorted by start date, the oldest
  `train` fraction fits the models, the next `calibration` fraction calibrates them (conformal
  offsets, probability calibration), the newest `test` fraction is held out. Every in-flight
  example inherits its project's split, so no snapshot of a test project is ever trained on.
* In-flight examples: for each progress point p (percent complete, e.g. 25/50/75) the snapshot
  whose reported `percent_complete` is nearest p, within a tolerance. Sampling by reported
  progress uses only what is known at prediction time; sampling at a fraction of the *actual*
  duration would leak the outcome (the snapshot date would reveal the finish date).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.contract import ACTUAL_EFFORT_COLUMNS, ROLES, SNAPSHOT_COLUMNS

SPLITS = ("train", "calibration", "test")
ROLE_SHARE_TARGETS = tuple(f"actual_share_{r}" for r in ROLES)
_SNAPSHOT_VALUES = [c.name for c in SNAPSHOT_COLUMNS if c.name != "project_id"]


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
    n_inflight_projects: int  # projects without outcome yet: not trained on


def completed_projects(projects: pd.DataFrame) -> pd.DataFrame:
    """Projects with an outcome; a finished project missing its cost or effort is an error."""
    done = projects[projects["actual_finish_date"].notna()]
    for col in ("actual_cost", *ACTUAL_EFFORT_COLUMNS):
        n_missing = int(done[col].isna().sum())
        if n_missing:
            first = done.loc[done[col].isna(), "project_id"].iloc[0]
            raise ValueError(f"{n_missing} finished project(s) have no {col} (first: {first})")
    return done.reset_index(drop=True)


def outcome_targets(projects: pd.DataFrame, late_threshold: float = 0.1) -> pd.DataFrame:
    """Targets of completed projects, aligned with `projects`' rows."""
    start = pd.to_datetime(projects["start_date"])
    finish = pd.to_datetime(projects["actual_finish_date"])
    duration = (finish - start).dt.days.to_numpy(dtype=float)
    planned = projects["planned_duration_days"].to_numpy(dtype=float)
    cost = projects["actual_cost"].to_numpy(dtype=float, na_value=np.nan)
    bac = projects["budget_at_completion"].to_numpy(dtype=float)
    role_hours = projects[list(ACTUAL_EFFORT_COLUMNS)].to_numpy(dtype=float, na_value=np.nan)
    effort = role_hours.sum(axis=1)
    if (duration <= 0).any() or (effort <= 0).any() or (cost <= 0).any():
        bad = projects["project_id"].iloc[int(np.flatnonzero(
            (duration <= 0) | (effort <= 0) | (cost <= 0))[0])]
        raise ValueError(f"project {bad}: actual duration, cost and effort must be positive")
    out = pd.DataFrame({
        "actual_duration_days": duration,
        "log_duration_ratio": np.log(duration / planned),
        "late": (duration > planned * (1 + late_threshold)).astype(int),
        "log_cost_ratio": np.log(cost / bac),
        "actual_effort_hours": effort,
        "log_effort_ratio": np.log(effort / projects["planned_effort_hours"].to_numpy(float)),
    }, index=projects.index)
    shares = pd.DataFrame(role_hours / effort[:, None], columns=list(ROLE_SHARE_TARGETS),
                          index=projects.index)
    return pd.concat([out, shares], axis=1)


def time_split(projects: pd.DataFrame, fractions: tuple[float, float, float]) -> dict[str, np.ndarray]:
    """Project ids per split: oldest start dates train, the next calibrate, the newest test."""
    ordered = projects.sort_values(["start_date", "project_id"], kind="stable")["project_id"]
    n = len(ordered)
    cut1 = int(round(n * fractions[0]))
    cut2 = int(round(n * (fractions[0] + fractions[1])))
    if cut1 == 0 or cut2 == cut1 or cut2 == n:
        raise ValueError(f"{n} completed projects are too few for a train/calibration/test split")
    ids = ordered.to_numpy()
    return {"train": ids[:cut1], "calibration": ids[cut1:cut2], "test": ids[cut2:]}


def inflight_examples(projects: pd.DataFrame, snapshots: pd.DataFrame,
                      points: tuple[float, ...], tolerance: float) -> pd.DataFrame:
    """One row per (project, progress point): the project's columns plus the chosen snapshot.

    The snapshot is the one whose `percent_complete` is nearest the point, if within `tolerance`;
    a snapshot is used at most once per project. Column `progress_point` records the point.
    """
    snaps = snapshots[snapshots["project_id"].isin(projects["project_id"])
                      & snapshots["percent_complete"].notna()].reset_index(drop=True)
    pct = snaps["percent_complete"].to_numpy(dtype=float)
    picks = []
    for point in points:
        dist = pd.Series(np.abs(pct - point), index=snaps.index)
        near = dist[dist <= tolerance]
        nearest = near.groupby(snaps.loc[near.index, "project_id"]).idxmin()
        picks.append(snaps.loc[nearest.to_numpy()].assign(progress_point=float(point)))
    chosen = pd.concat(picks).drop_duplicates(["project_id", "status_date"], keep="first")
    keep = chosen[["project_id", *_SNAPSHOT_VALUES, "progress_point"]]
    return projects.merge(keep, on="project_id", how="inner", validate="one_to_many")


def build_training_data(projects: pd.DataFrame, snapshots: pd.DataFrame, spec) -> TrainingData:
    """Targets, time-ordered project split and in-flight examples for one model spec."""
    done = completed_projects(projects)
    done = pd.concat([done, outcome_targets(done, spec.late_threshold or 0.1)], axis=1)
    split_ids = time_split(done, (spec.train_fraction, spec.calibration_fraction,
                                  spec.test_fraction))
    inflight = inflight_examples(done, snapshots, spec.progress_points, spec.progress_tolerance)
    stages = {}
    for name, frame in (("intake", done), ("inflight", inflight)):
        parts = {s: frame[frame["project_id"].isin(split_ids[s])].reset_index(drop=True)
                 for s in SPLITS}
        stages[name] = StageData(**parts)
    return TrainingData(stages["intake"], stages["inflight"], split_ids,
                        n_inflight_projects=int(len(projects) - len(done)))
