"""`opm-ml data ingest`: finished projects' outcomes into the service database.

Registered on the main app by `opm_ml.cli`. Exit codes: 0 stored, 1 some rows rejected (the
valid ones are stored, each bad one is printed with row, column, value and reason), 2 an
unreadable file or an unreachable database (one `error:` line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from opm_ml.settings import get_settings

console = Console()


def ingest(
    path: Annotated[Path, typer.Argument(
        help="a projects table (.csv or .parquet) or a history folder with one")],
    report_out: Annotated[Optional[Path], typer.Option(
        help="write the rejected-rows report (CSV or Parquet)")] = None,
) -> None:
    """Store finished projects' outcomes, so their forecasts can be judged (opm-ml monitor)."""
    from opm_ml import validation
    from opm_ml.database import DatabaseUnavailable
    from opm_ml.monitoring.outcomes import ingest_outcomes

    settings = get_settings()
    try:
        result = ingest_outcomes(path, settings.database_url)
    except (validation.ContractError, DatabaseUnavailable) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(f"{path}: {result.rows:,} rows: {result.finished:,} finished projects stored "
                  f"({result.stored:,} outcomes, one per model family), {result.running:,} "
                  f"still running, {result.rejected_rows:,} rejected")
    if result.rejected_rows:
        console.print(validation.rejection_report_table(result.rejections))
        if report_out is not None:
            validation.write_rejections(result.rejections, report_out)
            console.print(f"rejection report written to {report_out}")
        raise typer.Exit(1)
