"""`opm-ml report PROJECTS --out report.html`: the Typer command over `report.py`.

Kept apart so `opm-ml --help` does not import pandas, MLflow and the serving stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from serving.dashboard import CANDIDATES, CONSTRAINTS


def report(
    projects: Annotated[Path, typer.Argument(
        help="history folder (projects + snapshots tables) or a CSV/Parquet project table",
        exists=True)],
    out: Annotated[Path, typer.Option(help="HTML file to write")] = Path("report.html"),
    candidates: Annotated[Path, typer.Option(help="intake candidates CSV", exists=True,
                                             dir_okay=False)] = CANDIDATES,
    constraints: Annotated[Path, typer.Option(help="portfolio constraints TOML", exists=True,
                                              dir_okay=False)] = CONSTRAINTS,
    alias: Annotated[str, typer.Option(help="registry alias of the models to use")] = "champion",
) -> None:
    """Write the dashboard (portfolio, project and intake views) as one offline HTML file."""
    from opm_ml.settings import get_settings
    from serving.dashboard.report import read_projects, render_html, report_data
    from serving.model_store import ModelStore

    store = ModelStore(get_settings().model_copy(update={"serve_alias": alias}))
    if not store.reload(wait=True):
        raise typer.BadParameter(f"cannot load the {alias} models: {store.last_error} "
                                 "(train them first: opm-ml train)", param_hint="--alias")
    try:
        history = read_projects(projects, store.require())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="PROJECTS") from None
    payload = report_data(store.require(), history, candidates, constraints)
    out.write_text(render_html(payload))
    typer.echo(f"{payload['portfolio']['count']} projects and "
               f"{len(payload['intake']['candidates'])} candidates -> {out} "
               f"({out.stat().st_size / 1e6:.1f} MB)")
