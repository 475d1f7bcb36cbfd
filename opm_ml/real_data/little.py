"""Little (2006) weekly release-date re-estimates of 121 Landmark Graphics projects: delay sets.

Target = actual / first-estimated duration, both counted from `Start Date`. Besides the
project-level set (known at start) there is one set per checkpoint: the status at 25/50/75 % of
the *planned* duration, for projects not yet released then. Checkpoints are taken on the plan,
not on the actual duration, because the elapsed fraction of the actual duration is unknown in
real time and would leak the target through the elapsed days.

The index forecast at a checkpoint is the current re-estimate: `Est EndDate` of the latest weekly
row on or before the checkpoint (Little sets it to the week's date once a target date passed),
as a ratio to the planned duration (`reestimated_ratio`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from opm_ml.real_data._io import read_csv
from opm_ml.real_data.dataset import RealDataset, categorical, finish

CHECKPOINTS = (0.25, 0.50, 0.75)
PHASES = ("Env", "Plan", "Dev", "Stab", "Mob")
SOURCE = "eseur_Little06.csv"


def _weekly(root: Path) -> pd.DataFrame:
    raw = read_csv(root / SOURCE)
    date = {c: pd.to_datetime(raw[c], format="%m/%d/%y") for c in
            ("Week End Date", "Target RelDate", "Est EndDate", "First Est", "Actual Release",
             "Start Date")}
    weekly = pd.DataFrame({
        "project": raw["Project Code"].astype("str"),
        "week": date["Week End Date"],
        "target": date["Target RelDate"],
        "est_end": date["Est EndDate"],
        "first_est": date["First Est"],
        "actual": date["Actual Release"],
        "start": date["Start Date"],
        # A blank phase status means the phase has not been reached: a level of its own.
        **{p.lower(): categorical(raw[p]).fillna("blank") for p in PHASES},
    }).sort_values(["project", "week"], kind="stable")
    for col in ("first_est", "actual", "start"):
        varying = weekly.groupby("project")[col].nunique() > 1
        if varying.any():
            raise ValueError(f"Little06: {col} varies within project {varying.idxmax()}")
    # A re-estimate is a change of the target release date from one week to the next.
    changed = weekly["target"].ne(weekly.groupby("project")["target"].shift())
    weekly["reestimates_so_far"] = changed.groupby(weekly["project"]).cumsum() - 1.0
    weekly["planned_days"] = (weekly["first_est"] - weekly["start"]).dt.days.astype(float)
    weekly["actual_days"] = (weekly["actual"] - weekly["start"]).dt.days.astype(float)
    return weekly


def _projects(weekly: pd.DataFrame) -> pd.DataFrame:
    projects = weekly.groupby("project", as_index=False).first().sort_values(
        "project", key=lambda codes: codes.astype(int), ignore_index=True)
    ok = (projects["planned_days"] > 0) & (projects["actual_days"] > 0)
    if not ok.all():
        raise ValueError(f"Little06: projects {list(projects.loc[~ok, 'project'])} have a release "
                         "date not after the start date")
    return projects


def little_delay(root: Path) -> RealDataset:
    """One row per project: delay ratio from what is known at the start."""
    projects = _projects(_weekly(root))
    X = pd.DataFrame({
        "planned_duration_days": projects["planned_days"],
        "start_year": projects["start"].dt.year.astype(float),
    })
    y = (projects["actual_days"] / projects["planned_days"]).rename("duration_ratio")
    return finish("little_delay", "delay", X, y, SOURCE,
                  "First Est - Start Date -> planned_duration_days; target = (Actual Release - "
                  "Start Date) / planned.")


def little_checkpoint(root: Path, fraction: float) -> RealDataset:
    """Status at `fraction` of the planned duration for projects still running then."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    weekly = _weekly(root)
    projects = _projects(weekly)
    checkpoint = projects["start"] + pd.to_timedelta(
        (fraction * projects["planned_days"]).round(), unit="D")
    running = projects.assign(checkpoint=checkpoint)
    running = running[running["actual"] > running["checkpoint"]].sort_values("checkpoint")
    status = pd.merge_asof(
        running[["project", "checkpoint", "planned_days", "actual_days"]],
        weekly.drop(columns=["planned_days", "actual_days"]).sort_values("week"),
        left_on="checkpoint", right_on="week", by="project", direction="backward",
    ).dropna(subset=["week"]).sort_values("project", key=lambda codes: codes.astype(int))
    X = pd.DataFrame({
        "planned_duration_days": status["planned_days"],
        "reestimated_ratio": (status["est_end"] - status["start"]).dt.days / status["planned_days"],
        "reestimates_so_far": status["reestimates_so_far"],
        **{p.lower(): status[p.lower()] for p in PHASES},
    })
    y = (status["actual_days"] / status["planned_days"]).rename("duration_ratio")
    pct = round(fraction * 100)
    return finish(
        f"little_delay_t{pct}", "delay", X, y, SOURCE,
        f"Status at {pct}% of planned duration; {len(status)} of {len(projects)} projects still "
        "running and reported then. reestimated_ratio = (Est EndDate - Start) / planned.",
        baseline_column="reestimated_ratio",
    )
