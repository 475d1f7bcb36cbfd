"""The monitoring report as rich tables: what `opm-ml monitor` and `opm-ml retrain` print."""

from __future__ import annotations

from rich.table import Table

DRIFT_ROWS = 15  # drifted features always show; the rest only up to this many rows


def decision_table(report: dict, done: dict[str, str] | None = None) -> Table:
    """Per family: the champion, whether to retrain, and every check with what it measured.

    `done`: family -> what happened after (the promotion gate's verdict), when retrained.
    """
    table = Table(title=f"Retrain decision (forecasts logged since {report['since'][:10]})")
    for column in ("champion", "retrain", "checks (> = crossed)", *(["then"] if done else [])):
        table.add_column(column, overflow="fold")
    for family, item in report["families"].items():
        model, decision = item["model"], item["decision"]
        checks = "\n".join(("[red]>[/] " if c["triggered"] else "  ") + c["detail"]
                           for c in decision["checks"])
        verdict = "[bold red]yes[/]" if decision["retrain"] else "[green]no[/]"
        cells = [f"{family}\n{model['name']} v{model['version']}", verdict, checks]
        table.add_row(*cells, *([done.get(family, "-")] if done else []))
    return table


def drift_table(report: dict) -> Table:
    """Features of recent forecasts against the training rows, drifted first."""
    rows = sorted(report["drift"], key=lambda r: (not r["drifted"], -(r["psi"] or 0.0)))
    drifted = sum(r["drifted"] for r in rows)
    shown = rows[:max(DRIFT_ROWS, drifted)]
    table = Table(title="Feature drift: logged forecasts vs the champion's training rows",
                  caption=f"{drifted} drifted; {len(rows) - len(shown)} more rows within "
                          "thresholds not shown" if len(rows) > len(shown) else None)
    for column in ("stage", "feature", "n", "PSI", "KS", "drifted"):
        table.add_column(column, justify="left" if column in ("stage", "feature") else "right")
    for r in shown:
        table.add_row(r["stage"], r["feature"], f"{r['n']:,}", _num(r["psi"], 3),
                      _num(r["ks"], 3),
                      "[bold red]yes[/]" if r["drifted"] else ("no" if r["judged"] else "n/a"))
    return table


def accuracy_table(report: dict, groups=("all", "stage", "model_version", "project_type")) -> Table:
    """Realised accuracy per family and group, next to the held-out MAPE of the same stages
    (pinball loss and the by-month rows are in the JSON and the HTML report)."""
    table = Table(title=f"Realised accuracy ({report['judged_forecasts']:,} forecasts of "
                        "finished projects)")
    for column in ("model", "group", "n", "MAPE %", "held-out", "rise", "P10-P90", "bias %",
                   "Brier"):
        table.add_column(column, justify="left" if column in ("model", "group") else "right")
    last = None
    for r in report["accuracy"]:
        if r["by"] not in groups:
            continue
        group = "all" if r["by"] == "all" else f"{r['by'].replace('model_', '')} {r['group']}"
        rise = "" if r["rise"] is None else f"{r['rise']:+.0%}"
        table.add_row("" if r["family"] == last else r["family"], group, f"{r['n']:,}",
                      _num(r["mape"], 1), _num(r["heldout_mape"], 1), rise,
                      _num(r["coverage_80"], 2), _num(r["bias_pct"], 1), _num(r["brier"], 3))
        last = r["family"]
    return table


def _num(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"
