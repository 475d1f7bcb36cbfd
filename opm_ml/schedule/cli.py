"""Typer commands `schedule check FILE` and `schedule risk FILE` (registered by `opm_ml.cli`).

Both read P6 XER, P6 XML or MS Project XML. Bad input prints one `error:` line on stderr and
exits with code 2, never a stack trace. Uncertainty for `risk` comes from, in order of
precedence: the planner's three-point estimates (`--estimates` CSV), a fitted
`ActivityDurationModel` (`--model`, a pickle written by `joblib.dump`), else the default
template below for every remaining activity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from opm_ml.schedule.model import ScheduleError

# The default uncertainty when nothing better is given: PERT(90 %, 100 %, 130 %) of the
# remaining duration, a common starting template in schedule risk workshops.
DEFAULT_TEMPLATE = (0.9, 1.0, 1.3)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True,
                      highlight=False)
    return typer.Exit(2)


def _table(title: str, frame: pd.DataFrame) -> Table:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    return table


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:,.2f}"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, list):
        return ", ".join(map(str, value[:6])) + (f" (+{len(value) - 6})" if len(value) > 6
                                                 else "")
    return "" if value is None else str(value)


def check(file: Annotated[Path, typer.Argument(help="schedule file (.xer or .xml)")]) -> None:
    """Read a schedule, run CPM and the DCMA 14-point assessment."""
    from opm_ml.schedule.cpm import agreement, run_cpm
    from opm_ml.schedule.dcma import assess
    from opm_ml.schedule.files import read_schedule

    try:
        schedule = read_schedule(file)
        if not schedule.activities:
            console.print(f"{file.name}: {len(schedule.calendars)} calendars, "
                          f"{len(schedule.resources)} resources and no activities to schedule")
            return
        cpm = run_cpm(schedule)
        checks = assess(schedule, cpm)
        agree = agreement(cpm)
    except (ScheduleError, OSError) as err:
        raise _fail(str(err)) from None
    summary = pd.DataFrame([{
        "format": schedule.source_format, "activities": len(schedule.activities),
        "relationships": len(schedule.relationships), "calendars": len(schedule.calendars),
        "data date": pd.Timestamp(schedule.data_date), "finish": pd.Timestamp(cpm.project_finish),
        "critical": int(cpm.frame["critical"].sum())}])
    console.print(_table(f"{file.name}: {schedule.name}", summary))
    for warning in schedule.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print("critical path: " + " -> ".join(cpm.critical_path[:20])
                  + (" ..." if len(cpm.critical_path) > 20 else ""), highlight=False)
    shown = checks.assign(passed=checks["passed"].map({True: "pass", False: "FAIL"}).fillna("n/a"))
    console.print(_table("DCMA 14-point assessment", shown))
    if len(agree):
        console.print(f"dates stored by the writing tool: {int(agree['agree'].sum())} of "
                      f"{len(agree)} agree with ours")


def risk(
    file: Annotated[Path, typer.Argument(help="schedule file (.xer or .xml)")],
    iterations: Annotated[int, typer.Option(help="Monte Carlo iterations")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    correlation: Annotated[float, typer.Option(help="copula correlation within a group")] = 0.3,
    group_by: Annotated[str, typer.Option(help="correlation groups: wbs, type or none")] = "wbs",
    estimates: Annotated[Path | None, typer.Option(
        help="CSV activity_id,low,likely,high[,distribution] in hours")] = None,
    risks: Annotated[Path | None, typer.Option(
        help="CSV name,probability,activities (;-separated),low,likely,high hours")] = None,
    model: Annotated[Path | None, typer.Option(help="pickled ActivityDurationModel")] = None,
    project: Annotated[list[str] | None, typer.Option(
        help="project field for --model, KEY=VALUE (repeatable)")] = None,
) -> None:
    """Monte Carlo schedule risk analysis: P10-P90 finish, milestones, criticality, tornado."""
    from opm_ml.schedule.files import read_schedule
    from opm_ml.schedule.montecarlo import PERCENTILES, run_monte_carlo

    try:
        schedule = read_schedule(file)
        uncertainty = build_uncertainty(schedule, correlation, group_by, estimates, risks, model,
                                        _project_fields(project or []))
        result = run_monte_carlo(schedule, uncertainty, iterations, seed)
    except (ScheduleError, OSError) as err:
        raise _fail(str(err)) from None
    finish = result.finish_percentiles()
    console.print(_table(f"{file.name}: finish after {iterations:,} iterations", pd.DataFrame([{
        "deterministic": _minutes_to_stamp(result.deterministic_finish),
        **{f"P{p}": finish[p] for p in PERCENTILES},
        "P50 / deterministic duration": result.duration_ratio(50)}])))
    if len(result.milestones):
        console.print(_table("milestones", result.milestones.head(15)))
    top = result.activities.sort_values("criticality_index", ascending=False).head(10)
    console.print(_table("most critical activities", top.reset_index()))
    console.print(_table("tornado: swing of the P80 finish", result.tornado))
    curve = result.s_curve(11)
    console.print(_table("S-curve", curve.assign(finish=pd.to_datetime(curve["finish"]))))


def _minutes_to_stamp(minutes: float) -> pd.Timestamp:
    from opm_ml.schedule.calendars import from_minutes

    return pd.Timestamp(from_minutes(minutes))


def _project_fields(pairs: list[str]) -> dict:
    """KEY=VALUE strings to a dict; numbers become floats."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ScheduleError(f"--project expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def build_uncertainty(schedule, correlation: float, group_by: str, estimates: Path | None,
                      risks: Path | None, model: Path | None, project: dict | None = None):
    """The `Uncertainty` the risk command runs: template, model, planner estimates, risks."""
    from opm_ml.schedule.distributions import Estimate, RiskEvent, Uncertainty

    if group_by not in ("wbs", "type", "none"):
        raise ScheduleError(f"--group-by must be wbs, type or none, got {group_by!r}")
    todo = [a for a in schedule.activities if a.status != "complete" and a.remaining > 0]
    low, likely, high = DEFAULT_TEMPLATE
    found = {a.id: Estimate("pert", a.remaining * low, a.remaining * likely, a.remaining * high)
             for a in todo}
    if model is not None:
        found.update(_model_estimates(schedule, model, project or {}))
    if estimates is not None:
        frame = _csv(estimates, ["activity_id", "low", "likely", "high"])
        for row in frame.itertuples(index=False):
            kind = getattr(row, "distribution", "pert") or "pert"
            found[str(row.activity_id)] = Estimate(str(kind), float(row.low), float(row.likely),
                                                   float(row.high))
    events = []
    if risks is not None:
        frame = _csv(risks, ["name", "probability", "activities", "low", "likely", "high"])
        events = [RiskEvent(str(r.name), float(r.probability),
                            tuple(str(r.activities).split(";")),
                            (float(r.low), float(r.likely), float(r.high)))
                  for r in frame.itertuples(index=False)]
    groups = {} if group_by == "none" else {
        a.id: (a.wbs_id if group_by == "wbs" else a.activity_type) or "" for a in todo}
    return Uncertainty(found, groups, correlation, events)


def _csv(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ScheduleError(f"{path.name}: cannot read as CSV ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ScheduleError(f"{path.name}: missing columns {', '.join(missing)}")
    return frame


def _model_estimates(schedule, path: Path, project: dict) -> dict:
    import joblib

    from opm_ml.schedule.activity_features import activity_features
    from opm_ml.schedule.uncertainty import ActivityDurationModel

    try:
        fitted = joblib.load(path)
    except Exception as err:  # a pickle can fail in many ways; all mean "not a model file"
        raise ScheduleError(f"{path.name}: not a readable model pickle ({err})") from None
    if not isinstance(fitted, ActivityDurationModel):
        raise ScheduleError(f"{path.name}: holds a {type(fitted).__name__}, "
                            "not an ActivityDurationModel")
    features = activity_features(schedule, project)
    return fitted.estimates(features, np.exp(features["log_planned_hours"]))
