"""`opm-ml data profile infer` and the `--profile` form of `opm-ml data validate`.

Registered on the main app by `opm_ml.cli`. Bad input is one `error:` line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()


def infer(
    path: Annotated[Path, typer.Argument(help="the export: a .csv, .parquet or .arff file")],
    snapshots: Annotated[Optional[Path], typer.Option(
        help="a file of status reports per project (in-flight snapshots)")] = None,
    out: Annotated[Optional[Path], typer.Option(
        help="profile to write", show_default="data/profiles/<name>.toml")] = None,
    name: Annotated[Optional[str], typer.Option(
        help="the profile's name (it names the registered models)")] = None,
) -> None:
    """Draft a dataset profile from an export: types, levels, gaps, roles, leak warnings."""
    from opm_ml.profiles import PROFILE_DIR
    from opm_ml.profiles.infer import infer_profile

    try:
        draft = infer_profile(path, snapshots, name)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        console.print(f"[bold red]error:[/] cannot read {path}: {escape(str(exc))}")
        raise typer.Exit(2) from None
    console.print(summary_table(draft))
    for warning in draft.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    out = out or PROFILE_DIR / f"{draft.name}.toml"
    if out.exists():
        console.print(f"[bold red]error:[/] {out} exists; pass --out to write elsewhere")
        raise typer.Exit(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft.toml)
    also = f" --snapshots {snapshots}" if snapshots is not None else ""
    console.print(f"wrote {out}: check its roles and stages, then "
                  f"[bold]opm-ml data validate --profile {out} {path}{also}[/]")


def summary_table(draft) -> Table:
    """One row per column: type, missing share, distinct values, role or stage, detail."""
    table = Table(title=f"{len(draft.columns)} columns")
    for col in ("column", "type", "missing", "distinct", "role / stage", "detail"):
        table.add_column(col, justify="right" if col in ("missing", "distinct") else "left",
                         overflow="fold", max_width=48 if col == "detail" else 30)
    for c in draft.columns:
        stage = c.role or c.stage
        style = "yellow" if c.warning and not c.warning.startswith("name:") else ""
        table.add_row(c.column, c.kind, f"{c.missing_share:.0%}", f"{c.distinct:,}",
                      f"[{style}]{stage}[/]" if style else stage, c.detail)
    return table


def validate_with_profile(path: Path, profile: str, snapshots: Path | None):
    """(rejections, {table: (rows read, rows rejected)}) of an export read through a profile."""
    from opm_ml.profiles import resolve_profile
    from opm_ml.profiles.reader import read_history

    resolved = resolve_profile(profile)
    if resolved is None:
        raise typer.BadParameter("--profile contract validates a history folder: drop --profile")
    history = read_history(resolved, path, snapshots)
    counts = {}
    for table in ("projects", "snapshots"):
        bad = int(history.rejections.loc[history.rejections["table"] == table, "row"].nunique())
        counts[table] = (len(getattr(history, table)) + bad, bad)
    for note in history.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    return history.rejections, counts
