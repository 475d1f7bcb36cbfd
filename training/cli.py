"""`opm-ml train` and `opm-ml models`: Typer-annotated functions the main app registers.

`train` loads and validates a history folder, trains the chosen families with rich progress
bars and prints one table: held-out accuracy, the baselines', interval coverage and the
promotion decision; `--dask` (a LocalCluster) or `--scheduler ADDRESS` fits the models on
a Dask cluster. `models` lists registered versions and aliases.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from opm_ml.dask_cluster import (
    LOCAL,
    DaskClusterError,
    TimeoutOption,
    WorkersOption,
    cluster_address,
)
from opm_ml.forecasting.families import FAMILY_NAMES
from opm_ml.settings import get_settings

console = Console()
ALL_MODELS = ",".join(FAMILY_NAMES)
_STEPS = ("fitting", "evaluating", "logging", "promotion gate")


def train(
    data: Annotated[Optional[Path], typer.Option(
        help="history folder (projects, snapshots, resource_usage as .parquet or .csv); "
             "default: settings data_dir")] = None,
    models: Annotated[str, typer.Option(
        help="comma-separated model families to train")] = ALL_MODELS,
    seed: Annotated[Optional[int], typer.Option(help="random seed of the models")] = None,
    allow_rejects: Annotated[bool, typer.Option(
        "--allow-rejects/--no-allow-rejects",
        help="train on the valid rows and report rejected ones, or (default) stop with the "
             "row report when any row is rejected")] = False,
    dask: Annotated[bool, typer.Option(
        "--dask", help="fit the LightGBM models on a Dask LocalCluster")] = False,
    scheduler: Annotated[Optional[str], typer.Option(
        help="fit them on the Dask cluster at this address instead, e.g. tcp://host:8786 "
             "(implies --dask; its workers need opm-ml installed)")] = None,
    workers: WorkersOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Train, evaluate and register the delay, overrun and resource-demand models."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from opm_ml.forecasting.families import parse_families
    from opm_ml.validation import ContractError, load_history, rejection_report_table
    from training.pipeline import train_models

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # the rich table says what matters

    settings = get_settings()
    try:
        families = parse_families(models)
        address = cluster_address(dask, scheduler, workers)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    folder = data or settings.data_dir
    try:
        with console.status(f"validating {folder}"):
            history = load_history(folder)
    except ContractError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        if data is None:
            console.print("generate data first: [bold]opm-ml data generate[/]")
        raise typer.Exit(2) from None
    rejected = history.rejections
    if len(rejected):
        counts = rejected.groupby("table")["row"].nunique().to_dict()
        console.print(f"[yellow]{len(rejected):,} problem(s) in rejected rows:[/] {counts}")
        if not allow_rejects:
            console.print(rejection_report_table(rejected))
            console.print("[bold red]error:[/] rejected rows found; fix them, or pass "
                          "--allow-rejects to train on the valid rows only")
            raise typer.Exit(1)
    if history.projects.empty:
        console.print(f"[bold red]error:[/] no valid projects to train on in {folder} "
                      f"({len(rejected):,} problem(s) in rejected rows)")
        raise typer.Exit(1)
    console.print(f"{len(history.projects):,} projects, {len(history.snapshots):,} snapshots, "
                  f"{len(history.resource_usage):,} resource-usage rows from {folder}")

    with ExitStack() as cluster:
        client = _connect(cluster, address, workers, timeout) if address else None
        with Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(),
                      TextColumn("{task.fields[step]}"), TimeElapsedColumn(),
                      console=console) as bar:
            tasks = {f: bar.add_task(f, total=len(_STEPS) + 1, step="waiting") for f in families}

            def progress(family: str, step: str) -> None:
                bar.update(tasks[family], completed=_STEPS.index(step), step=step)

            try:
                result = train_models(history, families,
                                      seed=settings.default_seed if seed is None else seed,
                                      settings=settings, data_source=str(Path(folder).resolve()),
                                      progress=progress, client=client)
            except (ValueError, DaskClusterError) as exc:  # nothing was registered
                bar.stop()
                console.print(f"[bold red]error:[/] training stopped: {exc}")
                raise typer.Exit(1) from None
            for family in families:
                bar.update(tasks[family], completed=len(_STEPS) + 1, step="done")
    console.print(results_table(result))
    for r in result.results:
        d = r.decision
        style = "green" if d.promoted else ("yellow" if d.registered else "red")
        console.print(f"[{style}]{r.family}[/]: {d.reason}")
    console.print(f"MLflow parent run {result.parent_run_id} in {settings.mlflow_tracking_uri}")


def _connect(stack: ExitStack, address: str, workers: int | None, timeout: float):
    """A Dask client kept open by `stack`; an unreachable scheduler is a one-line error."""
    from opm_ml.dask_cluster import dask_client, describe

    try:
        with console.status("starting a Dask LocalCluster" if address == LOCAL
                            else f"connecting to the Dask scheduler at {address}"):
            client = stack.enter_context(dask_client(address, workers, timeout))
    except DaskClusterError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console.print(f"training on Dask: {describe(client)}")
    return client


def models() -> None:
    """List registered model versions with their aliases and promotion decisions."""
    from opm_ml import mlflow_access
    from training.registry import registry_listing

    settings = get_settings()
    names = mlflow_access.registered_names(settings).values()
    rows = registry_listing(mlflow_access.client(settings), list(names))
    if not rows:
        console.print("no registered models yet: run [bold]opm-ml train[/]")
        return
    table = Table(title=f"Registered models ({settings.mlflow_tracking_uri})")
    for col in ("model", "version", "aliases", "created (UTC)", "run", "decision"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], str(r["version"]), ", ".join(r["aliases"]) or "-",
                      r["created"].strftime("%Y-%m-%d %H:%M"), r["run_id"][:8], r["reason"])
    console.print(table)


def results_table(result) -> Table:
    """Held-out metrics vs the best baseline and the promotion decision, per family and stage."""
    table = Table(title="Held-out results (newest projects)")
    for col, justify in (("model", "left"), ("stage", "left"), ("MAPE %", "right"),
                         ("best baseline", "right"), ("P10-P90", "right"),
                         ("AUC/Brier", "right"), ("beats", "left"), ("registry", "left")):
        table.add_column(col, justify=justify)
    for r in result.results:
        m, first = r.metrics, True
        for stage, label, check_prefix in _rows(r):
            baselines = {k.split("/")[1][len("baseline_"):]: v for k, v in m.items()
                         if k.startswith(f"{stage}/baseline_") and k.endswith("/mape")}
            best = min(baselines, key=baselines.get)
            checks = [c for c in r.checks if c.name.startswith(check_prefix)]
            late = f"{m[f'{stage}/auc']:.2f}/{m[f'{stage}/brier']:.3f}" if f"{stage}/auc" in m else ""
            table.add_row(
                r.family if first else "", label, f"{m[f'{stage}/mape']:.2f}",
                f"{best} {baselines[best]:.2f}", f"{m[f'{stage}/coverage_80']:.2f}", late,
                "yes" if all(c.passed for c in checks) else "[red]no[/]",
                _decision(r.decision) if first else "",
            )
            first = False
    return table


def _rows(r):
    """(metric prefix, row label, check-name prefix) per table row of a family."""
    points = sorted({k.split("/")[0] for k in r.metrics if k.startswith("inflight_p")},
                    key=lambda t: float(t[len("inflight_p"):]))
    return [("intake", "intake", "intake")] + [
        (t, f"{t[len('inflight_p'):]}% done", f"in flight {t[len('inflight_p'):]}%")
        for t in points]


def _decision(d) -> str:
    if not d.registered:
        return "[red]not registered[/]"
    return f"v{d.version} {'[green]champion[/]' if d.promoted else 'challenger'}"
