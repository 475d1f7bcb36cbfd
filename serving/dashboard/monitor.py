"""`opm-ml monitor`: the monitoring report printed, written as HTML and logged to MLflow.

The HTML is the dashboard's own page in report mode with only the monitoring view (its Vega-Lite
charts, inlined, offline), which is why the command lives beside `opm-ml report`. Exit codes:
0 reported, 2 no champion, no database, bad thresholds or a bad --since (one `error:` line).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()


def monitor(
    since: Annotated[Optional[str], typer.Option(
        help="first day of forecasts to include, YYYY-MM-DD", show_default="30 days ago")] = None,
    out: Annotated[Path, typer.Option(help="HTML report to write")] = Path("monitoring.html"),
    alias: Annotated[str, typer.Option(help="registry alias of the models judged")] = "champion",
    mlflow: Annotated[bool, typer.Option(
        "--mlflow/--no-mlflow", help="log the run to MLflow, linked to the champions")] = True,
) -> None:
    """Drift, realised accuracy and whether each champion should be retrained."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from opm_ml import database
    from opm_ml.model_set import load_model_set
    from opm_ml.monitoring.report import build_report, parse_since, served_heldout
    from opm_ml.monitoring.text import accuracy_table, decision_table, drift_table
    from opm_ml.monitoring.thresholds import all_thresholds
    from opm_ml.monitoring.tracking import log_monitoring_run, registry_heldout
    from opm_ml.settings import get_settings
    from serving.dashboard.report import render_html

    settings = get_settings().model_copy(update={"serve_alias": alias})
    try:
        start = parse_since(since)
        models = load_model_set(settings).models
        thresholds = all_thresholds(models)
        engine = database.connect(settings.database_url)
    except (LookupError, ValueError, database.DatabaseUnavailable) as exc:
        hint = " (train them first: opm-ml train)" if isinstance(exc, LookupError) else ""
        console.print(f"[bold red]error:[/] {exc}{hint}", soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # the registry unreachable or a model unloadable: say which
        console.print(f"[bold red]error:[/] cannot load the {alias} models: {exc}",
                      soft_wrap=True)
        raise typer.Exit(2) from None
    report = build_report(engine, models, thresholds, start,
                          registry_heldout(settings, served_heldout(models)))
    for table in (decision_table(report), drift_table(report), accuracy_table(report)):
        console.print(table)
    out.write_text(render_html({"monitoring": report}))
    console.print(f"HTML report: {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if mlflow:
        run_id = log_monitoring_run(settings, report, "monitor", html=out)
        console.print(f"MLflow run {run_id} in {settings.mlflow_tracking_uri}")

