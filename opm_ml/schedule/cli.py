"""Typer commands `schedule check FILE` and `schedule risk FILE` (registered by `opm_ml.cli`).

Both read P6 XER, P6 XML or MS Project XML. Bad input prints one `error:` line on stderr and
exits with code 2, never a stack trace. Uncertainty for `risk` comes from, in order of
precedence: the planner's three-point estimates (`--estimates` CSV), the activity-duration
model (`--model`, a pickle written by `joblib.dump`; else the registry's champion that
`opm-ml schedule train` registered, unless `--no-registry`), else the default template for
every remaining activity. The output says which was used. The computing is in `analysis`.
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
    from opm_ml.schedule.analysis import check_schedule
    from opm_ml.schedule.files import read_schedule

    try:
        report = check_schedule(read_schedule(file))
    except (ScheduleError, OSError) as err:
        raise _fail(str(err)) from None
    schedule, cpm = report.schedule, report.cpm
    if cpm is None:
        console.print(f"{file.name}: {len(schedule.calendars)} calendars, "
                      f"{len(schedule.resources)} resources and no activities to schedule")
        return
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
    checks = report.checks
    shown = checks.assign(passed=checks["passed"].map({True: "pass", False: "FAIL"}).fillna("n/a"))
    console.print(_table("DCMA 14-point assessment", shown))
    agree = report.agreement
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
    model: Annotated[Path | None, typer.Option(
        help="pickled ActivityDurationModel, overriding the registry's champion")] = None,
    registry: Annotated[bool, typer.Option(
        "--registry/--no-registry",
        help="use the registered activity-duration champion (opm-ml schedule train) when "
             "there is one")] = True,
    project: Annotated[list[str] | None, typer.Option(
        help="project field for a model trained with project fields, KEY=VALUE "
             "(repeatable)")] = None,
) -> None:
    """Monte Carlo schedule risk analysis: P10-P90 finish, milestones, criticality, tornado."""
    from opm_ml.schedule.analysis import analyse_risk
    from opm_ml.schedule.files import read_schedule
    from opm_ml.schedule.montecarlo import PERCENTILES

    try:
        schedule = read_schedule(file)
        fitted, ref, note = _activity_model(model, registry)
        uncertainty, source = build_uncertainty(schedule, correlation, group_by, estimates,
                                                risks, fitted, _project_fields(project or []),
                                                ref, note)
        result = analyse_risk(schedule, uncertainty, source, iterations, seed, group_by).result
    except (ScheduleError, OSError) as err:
        raise _fail(str(err)) from None
    console.print(f"uncertainty: {source.description}"
                  + (f" [dim]({source.note})[/]" if source.note else ""), highlight=False)
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
                      risks: Path | None, model=None, project: dict | None = None,
                      model_ref: dict | None = None, note: str = ""):
    """(`Uncertainty`, `UncertaintySource`) of the risk command: the CSV files read into
    planner estimates and risk events, then `analysis.build_uncertainty`."""
    from opm_ml.schedule import analysis

    planner = risk_events = None
    if estimates is not None:
        planner = analysis.planner_estimates(
            _csv(estimates, ["activity_id", "low", "likely", "high"]), estimates.name)
    if risks is not None:
        risk_events = analysis.risk_events(
            _csv(risks, ["name", "probability", "activities", "low", "likely", "high"]),
            risks.name)
    return analysis.build_uncertainty(schedule, correlation, group_by, planner,
                                      risk_events or (), model, model_ref, project, note)


def _csv(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise ScheduleError(f"{path.name}: cannot read as CSV ({err})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ScheduleError(f"{path.name}: missing columns {', '.join(missing)}")
    return frame


def _activity_model(path: Path | None, registry: bool):
    """(model or None, its ref, why no model): `--model`, else the registry's champion."""
    if path is not None:
        return _pickled_model(path), {"file": path.name}, ""
    if not registry:
        return None, None, "--no-registry"
    from opm_ml.schedule.served import load_activity_model
    from opm_ml.settings import get_settings

    served, reason = load_activity_model(get_settings())
    if served is None:
        return None, None, reason
    return served.model, served.ref(), ""


def _pickled_model(path: Path):
    import joblib

    from opm_ml.schedule.uncertainty import ActivityDurationModel

    try:
        fitted = joblib.load(path)
    except Exception as err:  # a pickle can fail in many ways; all mean "not a model file"
        raise ScheduleError(f"{path.name}: not a readable model pickle ({err})") from None
    if not isinstance(fitted, ActivityDurationModel):
        raise ScheduleError(f"{path.name}: holds a {type(fitted).__name__}, "
                            "not an ActivityDurationModel")
    return fitted
