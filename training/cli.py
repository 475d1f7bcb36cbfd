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
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from opm_ml.cli_options import ProfileOption, with_profile
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
        help="history folder (projects, snapshots, resource_usage as .parquet or .csv); with "
             "--profile, the organisation's export file; default: settings data_dir")] = None,
    profile: Annotated[Optional[str], typer.Option(
        help="dataset profile: a .toml file or a name in data/profiles/; default: settings "
             "profile (the built-in contract)")] = None,
    snapshots: Annotated[Optional[Path], typer.Option(
        help="with --profile: a file of status snapshots (status reports per project)")] = None,
    models: Annotated[Optional[str], typer.Option(
        help="comma-separated model families to train", show_default="every family the "
             "profile can train")] = None,
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
    from opm_ml.validation import rejection_report_table
    from training.pipeline import train_models

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # the rich table says what matters

    settings = get_settings()
    try:
        chosen = parse_families(models) if models else None
        address = cluster_address(dask, scheduler, workers)
    except ValueError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    folder = data or settings.data_dir
    history, manifest, settings = _history(folder, profile or settings.profile, snapshots,
                                           settings, default_folder=data is None)
    families = _families(history, manifest, chosen)
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
    for note in history.notes:
        console.print(f"[dim]note: {escape(note)}[/]")

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
                                      progress=progress, client=client, manifest=manifest)
            except (ValueError, DaskClusterError) as exc:  # nothing was registered
                bar.stop()
                console.print(f"[bold red]error:[/] training stopped: {escape(str(exc))}")
                raise typer.Exit(1) from None
            for family in families:
                bar.update(tasks[family], completed=len(_STEPS) + 1, step="done")
    console.print(results_table(result))
    for r in result.results:
        d = r.decision
        style = "green" if d.promoted else ("yellow" if d.registered else "red")
        console.print(f"[{style}]{r.family}[/]: {d.reason}")
        for note in r.model.notes:
            console.print(f"[dim]  {r.family}: {escape(note)}[/]")
    console.print(f"MLflow parent run {result.parent_run_id} in {settings.mlflow_tracking_uri}")


def _history(folder: Path, profile_name: str, snapshots: Path | None, settings,
             default_folder: bool):
    """(history, manifest, settings for the profile's registry names), or exit 2 naming why."""
    from opm_ml.features import contract_manifest
    from opm_ml.profiles import ProfileError, resolve_profile
    from opm_ml.validation import ContractError, load_history

    try:
        profile = resolve_profile(profile_name)
        with console.status(f"reading and validating {folder}"):
            if profile is None:
                return load_history(folder), contract_manifest(), settings
            from opm_ml.profiles.build import profile_manifest
            from opm_ml.profiles.reader import read_history

            history = read_history(profile, folder, snapshots)
            return (history, profile_manifest(profile, history),
                    settings.model_copy(update={"profile": profile.name}))
    except (ContractError, ProfileError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        if default_folder and profile_name == "contract":
            console.print("generate data first: [bold]opm-ml data generate[/]")
        raise typer.Exit(2) from None


def _families(history, manifest, chosen: list[str] | None) -> list[str]:
    """The families to train: those asked for (each must be trainable) or every trainable one;
    why a family cannot train is one line each."""
    from opm_ml.forecasting import FAMILIES

    unavailable = {name: f"profile {manifest.profile} does not map both {f.planned} and "
                         f"{f.actual}" for name, f in FAMILIES.items()
                   if name not in manifest.families}
    for family, why in unavailable.items():
        if chosen is None:
            console.print(f"[dim]{family}: not trained: {why}[/]")
        elif family in chosen:
            console.print(f"[bold red]error:[/] {family} cannot be trained: {why}")
            raise typer.Exit(2)
    return [f for f in (chosen or manifest.families) if f in manifest.families]


def _connect(stack: ExitStack, address: str, workers: int | None, timeout: float):
    """A Dask client kept open by `stack`; an unreachable scheduler is a one-line error."""
    from opm_ml.dask_cluster import dask_client, describe

    try:
        with console.status("starting a Dask LocalCluster" if address == LOCAL
                            else f"connecting to the Dask scheduler at {address}"):
            client = stack.enter_context(dask_client(address, workers, timeout))
    except DaskClusterError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(f"training on Dask: {describe(client)}")
    return client


def models(profile: ProfileOption = None) -> None:
    """List registered model versions with their aliases and promotion decisions."""
    from opm_ml import mlflow_access
    from opm_ml.profiles import ProfileError
    from training.registry import registry_listing
    from training.schedule import SOURCES

    try:
        settings = with_profile(get_settings(), profile)
    except ProfileError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    names = [*mlflow_access.registered_names(settings).values(),
             *(mlflow_access.activity_model_name(settings, source)
               for source in SOURCES)]
    rows = registry_listing(mlflow_access.client(settings), names)
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
    """Held-out metrics vs the best baseline and the promotion decision, per family and stage.

    The metric is the one the baselines were held to (MAPE for the contract, MAE for an
    organisation's profile unless it says otherwise).
    """
    metric = next((c.metric for r in result.results for c in r.checks if c.metric != "brier"),
                  "mape")
    header = "MAPE %" if metric == "mape" else metric.upper()
    table = Table(title="Held-out results (newest projects)")
    for col, justify in (("model", "left"), ("stage", "left"), (header, "right"),
                         ("best baseline", "right"), ("P10-P90", "right"),
                         ("AUC/Brier", "right"), ("beats", "left"), ("registry", "left")):
        table.add_column(col, justify=justify)
    for r in result.results:
        m, first = r.metrics, True
        for stage, label, checks in _rows(r):
            baselines = {k.split("/")[1][len("baseline_"):]: v for k, v in m.items()
                         if k.startswith(f"{stage}/baseline_") and k.endswith(f"/{metric}")}
            best = min(baselines, key=baselines.get) if baselines else None
            late = f"{m[f'{stage}/auc']:.2f}/{m[f'{stage}/brier']:.3f}" if f"{stage}/auc" in m else ""
            table.add_row(
                r.family if first else "", label, _number(m[f"{stage}/{metric}"]),
                f"{best} {_number(baselines[best])}" if best else "-",
                f"{m[f'{stage}/coverage_80']:.2f}", late,
                _beats(checks) if checks else "-",
                _decision(r.decision) if first else "",
            )
            first = False
    return table


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"


def _beats(checks) -> str:
    """yes: every baseline beaten; tie: some not beaten, but within the held-out noise; no."""
    if all(c.beats for c in checks):
        return "yes"
    return "tie" if all(c.passed for c in checks) else "[red]no[/]"


def _rows(r):
    """(metric prefix, row label, its checks) per table row of a family: intake, in flight
    (all progress points: the checks the gate counts), then each progress point."""
    points = sorted({k.split("/")[0] for k in r.metrics if k.startswith("inflight_p")},
                    key=lambda t: float(t[len("inflight_p"):]))
    rows = [("intake", "intake", [c for c in r.checks if c.name.startswith("intake")])]
    if points:
        rows.append(("inflight", "in flight", [c for c in r.checks if c.gate
                                               and c.name.startswith("in flight")]))
    for t in points:
        point = t[len("inflight_p"):]
        rows.append((t, f"{point}% done",
                     [c for c in r.checks if c.name.startswith(f"in flight {point}%")]))
    return rows


def _decision(d) -> str:
    if not d.registered:
        return "[red]not registered[/]"
    return f"v{d.version} {'[green]champion[/]' if d.promoted else 'challenger'}"


def schedule_train(
    source: Annotated[str, typer.Option(
        help="activity history: synthetic (generated; registers <prefix>-activity-duration, "
             "the model schedule risk and the API use) or sip (the real SiP tasks in "
             "../shared/data/real; registers <prefix>-sip-activity-duration)")] = "synthetic",
    seed: Annotated[Optional[int], typer.Option(help="random seed of data and model")] = None,
    projects: Annotated[Optional[int], typer.Option(
        min=10, help="synthetic projects to generate", show_default="the spec's")] = None,
    data: Annotated[Optional[Path], typer.Option(
        help="with --source sip: the folder holding the SiP CSV files")] = None,
) -> None:
    """Train the activity-duration model: tracked in MLflow, registered, champion-gated."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from dataclasses import replace

    from training.schedule import SOURCES, load_activity_spec, train_activity_model

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    settings = get_settings()
    if source not in SOURCES:
        console.print(f"[bold red]error:[/] --source must be {' or '.join(SOURCES)}, "
                      f"got {source!r}")
        raise typer.Exit(2)
    try:
        spec = load_activity_spec()
        if projects is not None:
            spec = replace(spec, projects=projects)
        with console.status(f"training the activity-duration model on {source} history") as s:
            result = train_activity_model(
                source, settings, settings.default_seed if seed is None else seed, spec, data,
                progress=lambda step: s.update(f"activity-duration ({source}): {step}"))
    except (ValueError, FileNotFoundError) as exc:  # nothing was registered
        console.print(f"[bold red]error:[/] training stopped: {exc}")
        raise typer.Exit(2) from None
    console.print(f"{result.data.description}; held out: "
                  f"{int(result.metrics['heldout/n_activities']):,} activities")
    console.print(activity_table(result))
    d = result.decision
    style = "green" if d.promoted else ("yellow" if d.registered else "red")
    console.print(f"[{style}]{result.name}[/]: {d.reason}")
    console.print(f"MLflow run {result.run_id} in {settings.mlflow_tracking_uri}")


def activity_table(result) -> Table:
    """Held-out accuracy of the activity-duration model next to its two baselines."""
    from training.schedule import BASELINES, METRICS

    table = Table(title="Held-out activities (newest projects): log(actual / planned)")
    table.add_column("forecast")
    for metric in METRICS:
        table.add_column(metric.replace("_", " "), justify="right")
    rows = [("learned (LightGBM quantiles, conformal)", "heldout/")]
    rows += [(label, f"heldout/baseline_{key}/") for key, label in BASELINES.items()]
    for label, prefix in rows:
        cells = [result.metrics[prefix + m] for m in METRICS]
        table.add_row(label, *[f"{v:.1%}" if m in ("within_25pct", "p10_p90_coverage")
                               else f"{v:.4f}" for m, v in zip(METRICS, cells)])
    return table
