"""Typer-annotated commands for `opm-ml intake score` and `opm-ml portfolio optimize`.

Registered on the main app by `opm_ml.cli`. MLflow, scipy and matplotlib are imported inside
the commands so `opm-ml --help` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from opm_ml.csv_safety import write_csv
from opm_ml.intake.scorecard import DEFAULT_CONFIG
from opm_ml.settings import get_settings

_ALIAS = typer.Option(help="registry alias of the models to use")
_CONFIG = typer.Option(help="scorecard config (weights, objectives, MoSCoW thresholds)")


def intake_score(
    candidates: Annotated[Path, typer.Argument(help="candidates CSV (data/examples/candidates.csv)",
                                               exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="ranked CSV to write")] = Path("ranked.csv"),
    alias: Annotated[str, _ALIAS] = "champion",
    config: Annotated[Path, _CONFIG] = DEFAULT_CONFIG,
) -> None:
    """Score and rank intake candidates: NPV/ROI/IRR/payback, risk-adjusted value, scorecard."""
    try:
        scored = score_candidates_file(candidates, alias, config)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="candidates") from None
    ranked = scored.ranked()
    write_csv(ranked, out, index=False)
    typer.echo(f"scorecard {scored.config_version}: {len(ranked)} candidates ranked -> {out}")
    cols = ["rank", "project_id", "moscow", "score", "risk_adjusted_npv", "npv"]
    typer.echo(ranked[cols].head(10).to_string(index=False, float_format="{:,.1f}".format))


def score_candidates_file(candidates: Path, alias: str = "champion",
                          config: Path = DEFAULT_CONFIG):
    """Library form of `intake score`: read, load the registered models, score."""
    from opm_ml.intake.candidates import read_candidates
    from opm_ml.intake.risk import model_forecaster
    from opm_ml.intake.scorecard import load_config
    from opm_ml.intake.scoring import score_candidates
    from opm_ml.model_set import load_model_set
    from opm_ml.text import first_line

    settings = get_settings().model_copy(update={"serve_alias": alias})
    try:
        model_set = load_model_set(settings)
        model_set.require_all()
    except Exception as exc:  # no models, unreadable artifacts, registry outage
        raise ValueError(f"cannot load the {alias} models from {settings.mlflow_tracking_uri} "
                         f"(train them first: opm-ml train): {first_line(exc, typed=False)}"
                         ) from None
    return score_candidates(read_candidates(candidates),
                            model_forecaster(model_set.family_models()), load_config(config))


def portfolio_optimize(
    candidates: Annotated[Path, typer.Argument(help="candidates CSV", exists=True,
                                               dir_okay=False)],
    constraints: Annotated[Path, typer.Option(
        help="budget per year, capacity per role and month, dependencies, exclusions",
        exists=True, dir_okay=False)] = Path("data/examples/portfolio_constraints.toml"),
    out_dir: Annotated[Path, typer.Option(help="folder for the report CSVs")] = Path("portfolio"),
    alias: Annotated[str, _ALIAS] = "champion",
    config: Annotated[Path, _CONFIG] = DEFAULT_CONFIG,
    time_limit: Annotated[float, typer.Option(help="solver time limit, seconds")] = 10.0,
) -> None:
    """Choose the portfolio maximising risk-adjusted value under budget and role capacity."""
    from opm_ml.intake.plots import plot_frontier, plot_resource_load
    from opm_ml.intake.portfolio import InfeasiblePortfolio
    from opm_ml.intake.selection import Constraints, select_portfolio

    try:
        scored = score_candidates_file(candidates, alias, config)
        report = select_portfolio(scored, Constraints.read(constraints), time_limit)
    except InfeasiblePortfolio as exc:
        typer.echo(f"infeasible: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("decisions", "binding", "budget", "resource_load", "frontier"):
        write_csv(report[name], out_dir / f"{name}.csv", index=False)
    plot_resource_load(report["resource_load"], out_dir / "resource_load.png")
    plot_frontier(report["frontier"], out_dir / "frontier.png")
    d = report["decisions"]
    typer.echo(f"{report['status']} (gap {report['gap']:.3%}, {report['solve_seconds']:.2f} s): "
               f"{int(d['selected'].sum())} of {len(d)} selected, "
               f"risk-adjusted value {report['total_value']:,.0f}")
    typer.echo("binding: " + (", ".join(
        f"{r.kind} {r.role} {r.period}".replace("  ", " ") for r in report["binding"].itertuples())
        or "none"))
    typer.echo(f"report CSVs and charts in {out_dir}/")
