"""`opm-ml score`: batch forecasts with explanations for a CSV/Parquet file or a Parquet folder.

Registered on the main app by `opm_ml.cli`. Exit codes: 0 scored, 1 rows rejected (without
--allow-rejects) or none valid, 2 unusable input, models or cluster (one `error:` line).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from opm_ml.cli_options import ProfileOption, with_profile
from opm_ml.dask_cluster import TimeoutOption, WorkersOption, cluster_address
from opm_ml.forecasting.families import FAMILY_NAMES
from opm_ml.settings import get_settings

ALL_MODELS = ",".join(FAMILY_NAMES)

console = Console()


def score(
    source: Annotated[Path, typer.Argument(
        metavar="INPUT", help="a .csv or .parquet file, or a folder of .parquet part files: "
                              "project_id, the intake columns, optional status columns")],
    out: Annotated[Path, typer.Option(
        help="output .parquet or .csv file; with --dask a folder of Parquet parts")],
    models: Annotated[Optional[str], typer.Option(
        help="comma-separated families to score",
        show_default="every family the served profile has")] = None,
    shap: Annotated[bool, typer.Option(
        "--shap/--no-shap", help="SHAP explanation columns (default) or forecasts only")] = True,
    late_shap: Annotated[bool, typer.Option(
        "--late-shap", help="also the late classifier's SHAP columns (delay__late_shap__*, "
                            "log-odds; a fourth TreeSHAP pass, about a quarter more time)"
    )] = False,
    rejects_out: Annotated[Optional[Path], typer.Option(
        help="rejected-rows report, .csv or .parquet",
        show_default="<OUTPUT name>.rejects.csv beside it")] = None,
    allow_rejects: Annotated[bool, typer.Option(
        "--allow-rejects/--no-allow-rejects",
        help="score the valid rows and report the rejected ones, or (default) stop with the "
             "row report when any row is rejected")] = False,
    chunk_rows: Annotated[int, typer.Option(
        min=1, help="rows read, validated and scored at a time (bounds memory)")] = 50_000,
    dask: Annotated[bool, typer.Option(
        "--dask", help="score each Parquet part as a task on a Dask LocalCluster")] = False,
    scheduler: Annotated[Optional[str], typer.Option(
        help="score on the Dask cluster at this address instead, e.g. tcp://host:8786 "
             "(implies --dask; workers must see INPUT and OUTPUT paths)")] = None,
    workers: WorkersOption = None,
    timeout: TimeoutOption = 30.0,
    alias: Annotated[Optional[str], typer.Option(
        help="registry alias of the models",
        show_default="OPM_ML_SERVE_ALIAS, champion")] = None,
    profile: ProfileOption = None,
    log: Annotated[bool, typer.Option(
        "--log/--no-log", help="record every forecast in the prediction log (database_url)",
        show_default="OPM_ML_PREDICTION_LOG, on")] = True,
) -> None:
    """Score projects in bulk: forecasts, SHAP explanations and OPM metrics per row."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from opm_ml.batch_scoring import ModelsUnavailable, ScoringInputError, load_models
    from opm_ml.dask_cluster import DaskClusterError
    from opm_ml.forecasting.families import parse_families
    from opm_ml.profiles import ProfileError

    settings = get_settings()
    if alias:
        settings = settings.model_copy(update={"serve_alias": alias})
    try:
        settings = with_profile(settings, profile)
        address = cluster_address(dask, scheduler, workers)
    except (ValueError, ProfileError) as exc:
        raise _fail(str(exc)) from None
    on_dask = address is not None
    rejects_out = rejects_out or (out.parent / f"{out.name}.rejects.csv" if on_dask
                                  else out.with_name(f"{out.stem}.rejects.csv"))
    try:
        if rejects_out.suffix.lower() not in (".csv", ".parquet"):
            raise ScoringInputError(f"--rejects-out {rejects_out}: expected a .csv or .parquet "
                                    "file name")
        with console.status(f"loading the {settings.serve_alias} models"):
            loaded = load_models(settings, parse_families(models) if models else None)
        for family, version in loaded.versions.items():
            console.print(f"{family}: {version}")
        log_url = settings.database_url if log and settings.prediction_log else None
        if loaded.manifest.source:  # an organisation's export, read through its profile
            files, total = _profiled_input(source, out, on_dask)
            outcome, seconds = _run_profiled(source, out, loaded, shap=shap, late_shap=late_shap,
                                             allow_rejects=allow_rejects, log_url=log_url)
        else:
            files, total = _inputs(source, out, on_dask, loaded.manifest)
            outcome, seconds = _run(files, total, out, loaded, address, workers, timeout,
                                    shap=shap, late_shap=late_shap,
                                    allow_rejects=allow_rejects, chunk_rows=chunk_rows,
                                    log_url=log_url)
    except (ScoringInputError, ModelsUnavailable, DaskClusterError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _finish(outcome, files, out, rejects_out, seconds, allow_rejects)


def _profiled_input(source: Path, out: Path, on_dask: bool) -> tuple[list[Path], int]:
    """An export read through a profile: one file, scored in this process."""
    from opm_ml.batch_scoring.inputs import ScoringInputError

    if on_dask:
        raise ScoringInputError("profiled exports are scored in one process: drop --dask")
    if not source.is_file():
        raise ScoringInputError(f"{source} is not a file")
    if out.suffix.lower() not in (".csv", ".parquet") or out.is_dir():
        raise ScoringInputError(f"--out {out}: expected a .csv or .parquet file name")
    return [source], 0


def _run_profiled(source: Path, out: Path, loaded, **options):
    from opm_ml.batch_scoring.runs import score_profiled

    start = time.perf_counter()
    with console.status(f"scoring {source}"):
        outcome = score_profiled(source, out, loaded, **options)
    return outcome, time.perf_counter() - start


def _inputs(source: Path, out: Path, on_dask: bool, manifest) -> tuple[list[Path], int]:
    """The input files and their row count, after checking input and output are usable."""
    from opm_ml.batch_scoring.inputs import (
        ScoringInputError,
        check_columns,
        count_rows,
        input_files,
    )

    files = input_files(source)
    if on_dask:
        if any(f.suffix.lower() != ".parquet" for f in files):
            raise ScoringInputError("--dask scores Parquet: give a .parquet file or a folder "
                                    "of .parquet parts")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ScoringInputError(f"--out {out} must be a new or empty folder with --dask")
    elif out.suffix.lower() not in (".csv", ".parquet") or out.is_dir():
        raise ScoringInputError(f"--out {out}: expected a .csv or .parquet file name")
    for path in files:
        check_columns(path, manifest)
    total = sum(count_rows(path) for path in files)
    if total == 0:
        raise ScoringInputError(f"{source} has no rows to score")
    return files, total


def _run(files, total, out, loaded, address, workers, timeout, **options):
    """Score with a rich progress bar; returns the outcome and the seconds scoring took."""
    from opm_ml.batch_scoring import score_dask, score_files
    from opm_ml.dask_cluster import dask_client, describe

    if address is None:
        with progress_bar(total) as advance:
            start = time.perf_counter()
            outcome = score_files(files, out, loaded, progress=advance, **options)
        return outcome, time.perf_counter() - start
    with dask_client(address, workers, timeout=timeout) as client:
        console.print(f"Dask: {describe(client)}")
        with progress_bar(total) as advance:
            start = time.perf_counter()
            outcome = score_dask(client, files, out, loaded, progress=advance, **options)
        return outcome, time.perf_counter() - start


@contextmanager
def progress_bar(total: int, out: Console | None = None) -> Iterator[Callable[[int], None]]:
    """A rich bar of rows done and rows/s; yields the function that advances it."""
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
                  RateColumn(), TimeElapsedColumn(), console=out or console) as bar:
        task = bar.add_task("score", total=total)
        yield lambda rows: bar.advance(task, rows)


def _finish(outcome, files, out: Path, rejects_out: Path, seconds: float,
            allow_rejects: bool) -> None:
    """Print the counts and the row report, write the rejects file, exit 1 on rejects."""
    from opm_ml.validation import rejection_report_table, write_rejections

    report = outcome.report(files)
    n_bad = len(report[["file", "row"]].drop_duplicates())
    console.print(f"{outcome.rows:,} rows read, {outcome.scored:,} scored, {n_bad:,} rejected "
                  f"in {seconds:.1f} s ({outcome.rows / max(seconds, 1e-9):,.0f} rows/s)")
    if outcome.logged or outcome.log_dropped:
        console.print(f"prediction log: {outcome.logged:,} forecasts recorded"
                      + (f", [yellow]{outcome.log_dropped:,} not recorded[/] (see the log "
                         "lines above)" if outcome.log_dropped else ""))
    write_rejections(report, rejects_out)
    if n_bad:
        table = rejection_report_table(report.rename(columns={"file": "table"}))
        table.columns[0].header = "file"
        console.print(table)
        console.print(f"rejected rows written to {rejects_out}")
    if outcome.failed and not allow_rejects:
        raise _fail("rejected rows found: fix them, or pass --allow-rejects to score the "
                    "valid rows only", code=1)
    if not outcome.scored:
        raise _fail("no valid rows to score", code=1)
    console.print(f"wrote {out}" if outcome.written == [out]
                  else f"wrote {len(outcome.written)} Parquet part(s) to {out}")


class RateColumn(ProgressColumn):
    """Rows per second of the running task."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)
