"""`opm-ml retrain [--if-needed]`: the Typer command over `training/retrain.py`.

Meant for a schedule (cron, a workflow engine): it prints the decision table (every check,
whether it fired), trains only what needs it and prints the promotion gate's verdicts. Exit
codes: 0 decided (retrained or not), 1 training failed, 2 unusable data, specs, database or
registry (one `error:` line).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from opm_ml.forecasting.families import FAMILY_NAMES

console = Console()


def retrain(
    if_needed: Annotated[bool, typer.Option(
        "--if-needed/--always", help="retrain only the families whose champion the monitor "
                                     "finds stale (default), or all of them")] = True,
    data: Annotated[Optional[Path], typer.Option(
        help="history folder to train on", show_default="settings data_dir")] = None,
    models: Annotated[str, typer.Option(help="comma-separated families")] = ",".join(
        FAMILY_NAMES),
    since: Annotated[Optional[str], typer.Option(
        help="judge forecasts logged from this day, YYYY-MM-DD", show_default="30 days ago")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed of the models")] = None,
    allow_rejects: Annotated[bool, typer.Option(
        "--allow-rejects/--no-allow-rejects",
        help="train on the valid rows when some are rejected")] = False,
) -> None:
    """Retrain when drift, realised error or new outcomes cross the specs' thresholds."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from opm_ml.database import DatabaseUnavailable
    from opm_ml.forecasting.families import parse_families
    from opm_ml.monitoring.report import parse_since
    from opm_ml.monitoring.text import decision_table
    from opm_ml.settings import get_settings
    from training.retrain import retrain_if_needed

    settings = get_settings()
    try:
        families = parse_families(models)
        start = parse_since(since)
        with console.status("judging the champions"):
            outcome = retrain_if_needed(
                settings, data or settings.data_dir, families, if_needed, start,
                settings.default_seed if seed is None else seed, allow_rejects=allow_rejects,
                progress=lambda family, step: console.log(f"{family}: {step}"))
    except (ValueError, DatabaseUnavailable) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    done = {}
    if outcome.training is not None:
        done = {r.family: r.decision.reason for r in outcome.training.results}
    if outcome.report:
        console.print(decision_table(outcome.report, done or None))
    for family in families:
        decision = outcome.decisions[family]
        if not outcome.report or family not in outcome.report["families"]:
            console.print(f"{family}: {'; '.join(decision['reasons'])}")
        if family in done:
            console.print(f"{family}: retrained: {done[family]}")
        elif not decision["retrain"]:
            console.print(f"{family}: not retrained: no threshold crossed")
    if outcome.decision_run_id:
        console.print(f"decision logged: MLflow run {outcome.decision_run_id}")

