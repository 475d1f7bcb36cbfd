"""The `opm-ml` command line: data, metrics, training and serving in one tool.

Commands are thin: they parse options, call the library and print with rich. Heavy imports
(MLflow, LightGBM) happen inside the commands that need them so `--help` stays instant.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from opm_ml.arrow_memory import use_system_pool
from opm_ml.batch_scoring.cli import ALL_MODELS
from opm_ml.batch_scoring.cli import score as score_command
from opm_ml.cli_options import ProfileOption, with_profile
from opm_ml.intake.cli import (
    intake_close,
    intake_pipeline,
    intake_reference,
    intake_score,
    portfolio_optimize,
)
from opm_ml.monitoring.cli import ingest as ingest_command
from opm_ml.profiles.cli import infer as infer_command
from opm_ml.schedule.cli import check as schedule_check
from opm_ml.schedule.cli import risk as schedule_risk
from opm_ml.settings import SettingsError, get_settings
from serving.dashboard.cli import report as report_command
from serving.dashboard.monitor import monitor as monitor_command
from training.cli import models as models_command
from training.cli import schedule_train
from training.cli import train as train_command
from training.retrain_cli import retrain as retrain_command


class Commands(TyperGroup):
    """The top-level group: invalid OPM_ML_* settings (e.g. a short OPM_ML_API_KEY) end any
    command that reads them with one `error:` line, never a stack trace; `--help` still works.
    Every command runs with Arrow on the system allocator (`opm_ml.arrow_memory`)."""

    def invoke(self, ctx):
        use_system_pool()
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise fail(str(exc)) from None


app = typer.Typer(cls=Commands, help="Forecasts and OPM metrics for project portfolios.",
                  no_args_is_help=True)
data_app = typer.Typer(help="Generate, validate and summarise project history.", no_args_is_help=True)
intake_app = typer.Typer(help="Score candidate projects for intake.", no_args_is_help=True)
portfolio_app = typer.Typer(help="Select a portfolio under budget and capacity.",
                            no_args_is_help=True)
app.add_typer(data_app, name="data")
profile_app = typer.Typer(help="Draft a dataset profile for an organisation's export.",
                          no_args_is_help=True)
data_app.add_typer(profile_app, name="profile")
app.add_typer(intake_app, name="intake")
schedule_app = typer.Typer(help="Schedule risk from P6 and MS Project files: CPM, DCMA, Monte "
                                "Carlo with learned activity-duration uncertainty.",
                           no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
schedule_app.command("check")(schedule_check)
schedule_app.command("risk")(schedule_risk)
schedule_app.command("train")(schedule_train)
app.add_typer(portfolio_app, name="portfolio")
intake_app.command("score")(intake_score)
profile_app.command("infer")(infer_command)
intake_app.command("pipeline")(intake_pipeline)
intake_app.command("close")(intake_close)
intake_app.command("reference")(intake_reference)
portfolio_app.command("optimize")(portfolio_optimize)
app.command("train")(train_command)
app.command("models")(models_command)
app.command("report")(report_command)
app.command("score")(score_command)
app.command("monitor")(monitor_command)
app.command("retrain")(retrain_command)
data_app.command("ingest")(ingest_command)
console = Console()


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error (no stack trace) and return the Exit to raise."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # one line, for grep and logs
    return typer.Exit(code)


@data_app.command("generate")
def data_generate(
    projects: Annotated[Optional[int], typer.Option(min=10, help="number of projects")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed (same seed, same data)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write a realistic synthetic project history (projects, snapshots, resource usage)."""
    from opm_ml.synthetic import generate_history, write_history

    settings = get_settings()
    if fmt not in ("parquet", "csv"):
        raise fail(f"--format must be parquet or csv, got {fmt!r}")
    out = out or settings.data_dir
    n = projects or settings.default_projects
    with console.status(f"generating {n:,} projects"):
        history = generate_history(n, seed=settings.default_seed if seed is None else seed)
        paths = write_history(history, out, fmt=fmt)
    for path in paths:
        console.print(f"wrote {path}")
    console.print(
        f"{len(history.projects):,} projects, {len(history.snapshots):,} snapshots, "
        f"{len(history.resource_usage):,} resource-usage rows"
    )


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="a history folder, or one CSV/Parquet table")],
    table: Annotated[
        Optional[str], typer.Option(help="projects, snapshots or resource_usage (for a file)")
    ] = None,
    report_out: Annotated[
        Optional[Path], typer.Option(help="write the rejected-rows report (CSV or Parquet)")
    ] = None,
    profile: Annotated[Optional[str], typer.Option(
        help="read PATH (an organisation's export) through this dataset profile")] = None,
    snapshots: Annotated[Optional[Path], typer.Option(
        help="with --profile: a file of status snapshots")] = None,
) -> None:
    """Validate data against the contract or a profile; print every rejected row and why."""
    from opm_ml import validation
    from opm_ml.profiles import ProfileError
    from opm_ml.profiles.cli import validate_with_profile

    try:
        rejections, counts = (validate_with_profile(path, profile, snapshots) if profile
                              else _validate(path, table))
        for name, (n_rows, n_bad) in counts.items():
            console.print(f"{name}: {n_rows:,} rows, {n_rows - n_bad:,} valid, {n_bad:,} rejected")
        if len(rejections):
            console.print(validation.rejection_report_table(rejections))
        if report_out is not None:
            validation.write_rejections(rejections, report_out)
            console.print(f"rejection report written to {report_out}")
    except (validation.ContractError, ProfileError) as exc:
        raise fail(str(exc)) from None
    if len(rejections):
        raise typer.Exit(1)


def _validate(path: Path, table: str | None):
    """Validate a folder (all tables, cross-checked) or one file; returns report and counts."""
    from opm_ml import validation

    if path.is_dir():
        history = validation.load_history(path)
        counts = {}
        for name in ("projects", "snapshots", "resource_usage"):
            n_bad = _rejected_rows(history.rejections, name)
            counts[name] = (len(getattr(history, name)) + n_bad, n_bad)
        return history.rejections, counts
    table = table or _table_from_name(path)
    result = validation.load_table(path, table)
    return result.rejections, {table: (result.n_rows, result.n_rejected_rows)}


def _table_from_name(path: Path) -> str:
    """Guess the table from a file name such as `bad_projects.csv`; `--table` overrides."""
    from opm_ml.contract import TABLES

    matches = [name for name in TABLES if path.stem.endswith(name)]
    if not matches:
        raise fail(f"cannot tell the table from {path.name!r}: pass --table ({', '.join(TABLES)})")
    return max(matches, key=len)


def _rejected_rows(rejections, table: str) -> int:
    return int(rejections.loc[rejections["table"] == table, "row"].nunique())


@data_app.command("summary")
def data_summary(
    path: Annotated[Optional[Path], typer.Argument(help="history folder")] = None,
) -> None:
    """Print projects by type and the cost/schedule overrun distribution percentiles."""
    from opm_ml import validation
    from opm_ml.summary import portfolio_summary

    try:
        history = validation.load_history(path or get_settings().data_dir)
    except validation.ContractError as exc:
        raise fail(str(exc)) from None
    for table in summary_tables(portfolio_summary(history.projects)):
        console.print(table)


def summary_tables(summary) -> list[Table]:
    """Render `portfolio_summary` as two narrow tables: cost and schedule overrun by type."""
    tables = []
    for name, label in (("cost", "Cost overrun"), ("schedule", "Schedule overrun")):
        table = Table(title=f"{label}, % of plan (completed projects)")
        for header in ("type", "projects", "done", "P10", "P50", "P90", "mean"):
            table.add_column(header, justify="left" if header == "type" else "right")
        if name == "schedule":
            table.add_column(">10% late", justify="right")
        for kind, row in summary.iterrows():
            cells = [str(kind), f"{row['projects']:,.0f}", f"{row['completed']:,.0f}"]
            cells += [f"{row[f'{name}_overrun_{q}_pct']:.1f}" for q in ("p10", "p50", "p90", "mean")]
            if name == "schedule":
                cells.append(f"{row['late_share']:.0%}")
            table.add_row(*cells)
        tables.append(table)
    return tables


@data_app.command("schema")
def data_schema() -> None:
    """Print the data contract as Markdown (the table published in data/README.md)."""
    from opm_ml.contract import schema_markdown

    print(schema_markdown())


@app.command("evm")
def evm(
    bac: Annotated[float, typer.Option(help="budget at completion")],
    pv: Annotated[float, typer.Option(help="planned value to date")],
    ev: Annotated[float, typer.Option(help="earned value to date")],
    ac: Annotated[float, typer.Option(help="actual cost to date")],
    start: Annotated[str, typer.Option(help="start date, YYYY-MM-DD")],
    duration: Annotated[int, typer.Option(help="planned duration in days")],
    status_date: Annotated[str, typer.Option(help="status date, YYYY-MM-DD")],
) -> None:
    """Earned-value and earned-schedule metrics of one project at one status date."""
    from opm_ml.opm_metrics import METRIC_COLUMNS, evm_single

    try:
        result = evm_single(
            bac=bac, pv=pv, ev=ev, ac=ac, start_date=_date(start, "--start"),
            planned_duration_days=duration, status_date=_date(status_date, "--status-date"),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    table = Table(title="OPM metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("note")
    for name in METRIC_COLUMNS:
        value = getattr(result, name)
        shown = ("—" if value is None else value if isinstance(value, date)
                 else f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}")
        table.add_row(name, str(shown), result.reasons.get(name, ""))
    console.print(table)


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} must be a date YYYY-MM-DD, got {text!r}") from None


@app.command("evaluate-real")
def evaluate_real(
    family: Annotated[
        Optional[str], typer.Option(help="effort, delay or overrun (default: all)")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="repetitions of the k-fold split")] = 10,
    seed: Annotated[int, typer.Option(help="seed of the fold assignment")] = 0,
) -> None:
    """Our model families vs published baselines on the real datasets in ../shared/data/real."""
    from training.real_data import LEGEND, family_tables
    from training.real_data import evaluate_real as run_evaluation

    if family not in (None, "effort", "delay", "overrun"):
        raise fail(f"--family must be effort, delay or overrun, got {family!r}")
    try:
        with console.status("cross-validating every estimator on every real dataset"):
            result = run_evaluation(family=family, n_repeats=repeats, seed=seed)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    for name, frame in family_tables(result).items():
        table = Table(title=f"{name}: SA % / MdAE, out of fold (SA: higher is better)")
        table.add_column("dataset")
        for column in frame.columns:
            table.add_column(column, justify="right")
        for dataset, row in frame.iterrows():
            table.add_row(dataset, *row.tolist())
        console.print(table)
    console.print(LEGEND)
    for name, reason in result.attrs["skipped"]:
        console.print(f"[dim]skipped {name}: {reason}[/]")


@app.command("serve")
def serve(
    profile: ProfileOption = None,
    host: Annotated[Optional[str], typer.Option(
        help="address to bind (default: OPM_ML_API_HOST, else 127.0.0.1)")] = None,
    port: Annotated[Optional[int], typer.Option(
        min=1, max=65535, help="port (default: OPM_ML_API_PORT, else 8000)")] = None,
    workers: Annotated[Optional[int], typer.Option(
        min=1, max=64, help="worker processes, each loading the models (default: "
                            "OPM_ML_API_WORKERS, else 1)")] = None,
) -> None:
    """Start the API serving the registry's champion models; SIGTERM finishes requests in
    flight, then exits."""
    from opm_ml.profiles import ProfileError
    from serving.app import banner
    from serving.app import serve as run_server

    given = {"api_host": host, "api_port": port, "api_workers": workers}
    try:
        settings = with_profile(get_settings(), profile).model_copy(
            update={k: v for k, v in given.items() if v is not None})
    except ProfileError as exc:
        raise fail(str(exc)) from None
    console.print(banner(settings))
    run_server(settings)


@app.command("run")
def run(
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="end with the API up (default)")
    ] = True,
) -> None:
    """The main job on the embedded default: data -> validation -> training -> registry -> API."""
    settings = get_settings()
    if not (settings.data_dir / "projects.parquet").exists():
        data_generate(projects=None, seed=None, out=settings.data_dir, fmt="parquet")
    else:
        console.print(f"using existing history in {settings.data_dir}")
    data_summary(settings.data_dir)
    train_command(data=settings.data_dir, models=ALL_MODELS, seed=None, allow_rejects=True)
    if serve_api:
        serve()


if __name__ == "__main__":
    app()
