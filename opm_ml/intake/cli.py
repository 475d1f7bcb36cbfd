"""Typer-annotated commands for `opm-ml intake ...` and `opm-ml portfolio optimize`.

Registered on the main app by `opm_ml.cli`. MLflow, scipy and matplotlib are imported inside
the commands so `opm-ml --help` stays quick. Bad input ends with one `error:` line, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from opm_ml.cli_options import ProfileOption, with_profile
from opm_ml.csv_safety import write_csv
from opm_ml.intake.scorecard import DEFAULT_CONFIG
from opm_ml.settings import get_settings

_ALIAS = typer.Option(help="registry alias of the models to use")
_CONFIG = typer.Option(help="scorecard (weights, scales, reference, MoSCoW thresholds)")
_WEIGHTS = typer.Option(help="TOML overriding the scorecard's weights: [weights] or "
                             "criteria_comparisons, [objectives] or objective_comparisons")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def intake_score(
    candidates: Annotated[Path, typer.Argument(help="candidates CSV (data/examples/candidates.csv)",
                                               exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="ranked CSV to write")] = Path("ranked.csv"),
    alias: Annotated[str, _ALIAS] = "champion",
    config: Annotated[Path, _CONFIG] = DEFAULT_CONFIG,
    weights: Annotated[Optional[Path], _WEIGHTS] = None,
    keep: Annotated[bool, typer.Option(help="keep the candidates in the open pipeline (an id "
                                            "kept again replaces its entry)")] = False,
    profile: ProfileOption = None,
) -> None:
    """Score and rank intake candidates; place each among the open pipeline.

    With `--profile` the candidates carry that profile's intake columns (docs/intake-scoring.md).
    """
    from opm_ml.database import DatabaseUnavailable
    from opm_ml.intake.pipeline import Pipeline

    try:
        scored = score_candidates_file(candidates, alias, config, weights, profile)
        view = Pipeline.from_url(get_settings().database_url).view(scored, keep)
    except (ValueError, DatabaseUnavailable) as exc:
        raise _fail(str(exc)) from None
    ranked = scored.ranked().merge(view.frame, on="project_id", how="left")
    write_csv(ranked, out, index=False)
    s = view.summary()
    typer.echo(f"scorecard {scored.config.version} ({scored.config.digest[:19]}...): "
               f"{len(ranked)} candidates ranked -> {out}")
    for note in scored.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"pipeline: {len(s['kept'])} kept, {s['compared']} open compared"
               + (f", {s['not_comparable']} scored with another scorecard or reference "
                  "population" if s["not_comparable"] else ""))
    cols = ["rank", "project_id", "moscow", "score", "risk_adjusted_npv", "pipeline_rank",
            "pipeline_size", "pipeline_percentile"]
    typer.echo(ranked[cols].head(10).to_string(index=False, float_format="{:,.1f}".format))


def _model_set(settings, alias: str):
    """The registered `alias` models of the settings' profile; ValueError saying why not."""
    from opm_ml.model_set import load_model_set
    from opm_ml.text import first_line

    settings = settings.model_copy(update={"serve_alias": alias})
    try:
        model_set = load_model_set(settings)
        model_set.require_all()
    except Exception as exc:  # no models, unreadable artifacts, registry outage
        raise ValueError(f"cannot load the {alias} models from {settings.mlflow_tracking_uri} "
                         f"(train them first: opm-ml train): {first_line(exc, typed=False)}"
                         ) from None
    return model_set


def score_candidates_file(candidates: Path, alias: str = "champion",
                          config: Path = DEFAULT_CONFIG, weights: Path | None = None,
                          profile: str | None = None):
    """Library form of `intake score`: load the registered models (of `profile`, default the
    settings'), read the candidates in the fields they read, score."""
    from opm_ml.intake.candidates import read_candidates
    from opm_ml.intake.past_projects import carried
    from opm_ml.intake.risk import model_forecaster
    from opm_ml.intake.scorecard import load_config, read_weights
    from opm_ml.intake.scoring import score_candidates

    scorecard = load_config(config)
    if weights is not None:
        scorecard = scorecard.with_weights(**read_weights(weights))
    model_set = _model_set(with_profile(get_settings(), profile), alias)
    parsed = read_candidates(candidates, model_set.manifest)
    models = model_set.family_models()
    return score_candidates(parsed, model_forecaster(models), scorecard, past=carried(models))


def intake_pipeline(config: Annotated[Path, _CONFIG] = DEFAULT_CONFIG,
                    alias: Annotated[str, _ALIAS] = "champion",
                    profile: ProfileOption = None) -> None:
    """List the open pipeline, ranked by score under the scorecard's weights (times in UTC).

    Ranked: the entries scored with that scorecard against the reference population the
    profile's candidates compare with (a dataset profile's past projects: its models are
    loaded to know them); the others are counted."""
    import pandas as pd

    from opm_ml.database import DatabaseUnavailable
    from opm_ml.intake.past_projects import carried, for_profile
    from opm_ml.intake.pipeline import Pipeline
    from opm_ml.intake.scorecard import load_config

    try:
        scorecard = load_config(config)
        settings = with_profile(get_settings(), profile)
        if settings.profile != "contract":
            model_set = _model_set(settings, alias)
            scorecard = for_profile(scorecard, model_set.manifest.profile,
                                    carried(model_set.family_models()), [])[0]
        listing, stale = Pipeline.from_url(get_settings().database_url).listing(scorecard)
    except (ValueError, DatabaseUnavailable) as exc:
        raise _fail(str(exc)) from None
    reference = scorecard.reference_digest
    left_out = (f" (+{stale} scored with another scorecard or reference population, not ranked)"
                if stale else "")
    typer.echo(f"open pipeline, scorecard {scorecard.version}, reference "
               f"{reference[:19] + '...' if reference else 'none'}: {len(listing)} candidates"
               + left_out)
    if len(listing):
        listing["kept_at"] = pd.to_datetime(listing["kept_at"]).dt.strftime("%Y-%m-%d %H:%M")
        cols = ["pipeline_rank", "project_id", "name", "current_score", "moscow", "kept_at"]
        typer.echo(listing[cols].rename(columns={"current_score": "score"}).to_string(
            index=False, float_format="{:,.2f}".format))


def intake_close(
    project_id: Annotated[str, typer.Argument(help="id of the open candidate")],
    reason: Annotated[str, typer.Option(help="why: approved, rejected, withdrawn ...")] = "closed",
) -> None:
    """Close a candidate: it leaves the open pipeline and stays on record with the reason."""
    from opm_ml.database import DatabaseUnavailable
    from opm_ml.intake.pipeline import Pipeline

    try:
        closed = Pipeline.from_url(get_settings().database_url).close(project_id, reason[:200])
    except DatabaseUnavailable as exc:
        raise _fail(str(exc)) from None
    if closed is None:
        raise _fail(f"no open candidate {project_id!r} in the pipeline")
    typer.echo(f"closed {project_id} ({reason}); it was kept with score {closed['score']:.2f}")


def intake_reference(
    history: Annotated[Path, typer.Argument(help="history folder of past projects",
                                            exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option(help="reference CSV to write")] = Path(
        "intake_reference.csv"),
) -> None:
    """Build the reference population (finished projects' actual effort) for percentile scales."""
    from opm_ml.intake.scales import build_reference, write_reference
    from opm_ml.validation import load_history

    try:
        frame = build_reference(load_history(history))
    except (ValueError, OSError) as exc:
        raise _fail(str(exc)) from None
    digest = write_reference(frame, out)
    typer.echo(f"{len(frame)} past projects -> {out}")
    typer.echo(f'put in the scorecard\'s [reference] (and bump its version): sha256 = "{digest}"')


def portfolio_optimize(
    candidates: Annotated[Path, typer.Argument(help="candidates CSV", exists=True,
                                               dir_okay=False)],
    constraints: Annotated[Path, typer.Option(
        help="budget per year, capacity per role and month, dependencies, exclusions",
        exists=True, dir_okay=False)] = Path("data/examples/portfolio_constraints.toml"),
    out_dir: Annotated[Path, typer.Option(help="folder for the report CSVs")] = Path("portfolio"),
    alias: Annotated[str, _ALIAS] = "champion",
    config: Annotated[Path, _CONFIG] = DEFAULT_CONFIG,
    weights: Annotated[Optional[Path], _WEIGHTS] = None,
    time_limit: Annotated[float, typer.Option(help="solver time limit, seconds")] = 10.0,
    profile: ProfileOption = None,
) -> None:
    """Choose the portfolio maximising risk-adjusted value under budget and role capacity."""
    from opm_ml.intake.plots import plot_frontier, plot_resource_load
    from opm_ml.intake.portfolio import InfeasiblePortfolio
    from opm_ml.intake.selection import Constraints, select_portfolio

    try:
        scored = score_candidates_file(candidates, alias, config, weights, profile)
        limits = Constraints.read(constraints, scored.roles, scored.no_roles)
        report = select_portfolio(scored, limits, time_limit)
    except InfeasiblePortfolio as exc:
        typer.echo(f"infeasible: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("decisions", "binding", "budget", "resource_load", "frontier"):
        write_csv(report[name], out_dir / f"{name}.csv", index=False)
    if len(report["resource_load"]):  # no capacity by role: nothing to chart
        plot_resource_load(report["resource_load"], out_dir / "resource_load.png")
    plot_frontier(report["frontier"], out_dir / "frontier.png")
    d = report["decisions"]
    typer.echo(f"{report['status']} (gap {report['gap']:.3%}, {report['solve_seconds']:.2f} s): "
               f"{int(d['selected'].sum())} of {len(d)} selected, "
               f"risk-adjusted value {report['total_value']:,.0f}")
    typer.echo("binding: " + (", ".join(
        f"{r.kind} {r.role} {r.period}".replace("  ", " ") for r in report["binding"].itertuples())
        or "none"))
    for note in scored.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"report CSVs and charts in {out_dir}/")
