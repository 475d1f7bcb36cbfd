"""Benchmark the synthetic history generator; optionally print the data/README.md tables.

    .venv/bin/python benchmarks/generate.py                # timing table, 10k/50k/100k
    .venv/bin/python benchmarks/generate.py --report       # plus distribution and floor tables

Each size runs in a fresh process so its peak RSS is its own. Two baselines put the times in
context: (1) writing the same history to Parquet, the unavoidable cost of producing the data at
all; (2) the same timeline code called once per project (a per-project loop) on 1,000 projects,
extrapolated linearly, which is what the ragged monthly expansion costs without vectorisation.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opm_ml.synthetic import floor_metrics, generate_history, write_history  # noqa: E402
from opm_ml.synthetic import params as P  # noqa: E402
from opm_ml.synthetic.intake import sample_intake  # noqa: E402
from opm_ml.synthetic.outcomes import (  # noqa: E402
    late_cpi_drift_logit, late_cpi_drift_size, linear_predictor, outcome_drivers,
    sample_outcomes, trouble_loading,
)
from opm_ml.synthetic.oracle import swan_log_tail_mean, expected_log_overrun  # noqa: E402
from opm_ml.synthetic.timeline import Plan, resource_usage, snapshots  # noqa: E402
from scipy.special import expit  # noqa: E402

AS_OF = np.datetime64("2025-12-31")


def markdown(table: pd.DataFrame | pd.Series, digits: int = 3) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs tabulate, which we do not install)."""
    frame = table.to_frame("value") if isinstance(table, pd.Series) else table
    cells = frame.map(lambda v: f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}")
    head = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([str(i), *row]) + " |" for i, row in zip(frame.index,
                                                                          cells.to_numpy())]
    return "\n".join(lines)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _one_size(n: int, queue) -> None:
    """Runs in a fresh process: generate n projects, then write them to Parquet."""
    before = _peak_rss_mb()
    start = time.perf_counter()
    history = generate_history(n, seed=42)
    seconds = time.perf_counter() - start
    peak = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_history(history, Path(tmp))
        write_seconds = time.perf_counter() - start
    rows = len(history.projects) + len(history.snapshots) + len(history.resource_usage)
    queue.put(dict(projects=n, snapshots=len(history.snapshots),
                   usage_rows=len(history.resource_usage), seconds=seconds,
                   rows_per_s=rows / seconds, peak_rss_mb=peak, rss_after_imports_mb=before,
                   parquet_write_s=write_seconds))


def timing_table(sizes: list[int]) -> pd.DataFrame:
    ctx = mp.get_context("spawn")
    results = []
    for n in sizes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_one_size, args=(n, queue))
        proc.start()
        results.append(queue.get())
        proc.join()
    return pd.DataFrame(results).set_index("projects")


def _plan(n: int) -> Plan:
    rng = np.random.default_rng(0)
    columns, trouble = sample_intake(n, rng, AS_OF)
    o = sample_outcomes(columns, trouble, rng)
    return Plan(columns["start_date"].astype(np.int64), columns["planned_duration_days"],
                o.actual_days, columns["budget_at_completion"], o.actual_cost, o.role_effort,
                o.late_cpi_drift)


def loop_baseline(n: int = 1000) -> dict[str, float]:
    """Timeline (snapshots + usage) for n projects: one vectorised call vs one call per project."""
    plan, as_of = _plan(n), int(AS_OF.astype(np.int64))
    start = time.perf_counter()
    snapshots(plan, as_of, np.random.default_rng(1))
    resource_usage(plan, as_of, np.random.default_rng(2))
    vectorised = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(n):
        one = Plan(*(getattr(plan, f)[i:i + 1] for f in Plan.__dataclass_fields__))
        snapshots(one, as_of, np.random.default_rng(i))
        resource_usage(one, as_of, np.random.default_rng(i))
    looped = time.perf_counter() - start
    return {"projects": n, "vectorised_s": vectorised, "per_project_loop_s": looped,
            "loop_extrapolated_to_100k_s": looped * 100_000 / n, "speed-up": looped / vectorised}


def distribution_table(n: int = 100_000) -> pd.DataFrame:
    """Realised overrun distribution by type over ALL projects (in-flight ones included)."""
    rng = np.random.default_rng(2025)
    columns, trouble = sample_intake(n, rng, AS_OF)
    o = sample_outcomes(columns, trouble, rng)
    frame = pd.DataFrame({
        "type": columns["project_type"],
        "cost": o.actual_cost / columns["budget_at_completion"],
        "schedule": o.actual_days / columns["planned_duration_days"],
        "swan": o.black_swan,
    })
    g = frame.groupby("type")
    swans = frame[frame["swan"]].groupby("type")
    table = pd.DataFrame({
        "mean cost overrun": g["cost"].mean() - 1,
        "median": g["cost"].median() - 1,
        "P90": g["cost"].quantile(0.9) - 1,
        "share over budget": g["cost"].apply(lambda r: (r > 1).mean()),
        "mean schedule overrun": g["schedule"].mean() - 1,
        "median sched": g["schedule"].median() - 1,
        "share >10% late": g["schedule"].apply(lambda r: (r > 1.1).mean()),
        "black-swan share": g["swan"].mean(),
        "swan mean cost overrun": swans["cost"].mean() - 1,
        "swan mean schedule overrun": swans["schedule"].mean() - 1,
    })
    return table


def variance_split(n: int = 100_000) -> pd.DataFrame:
    """Share of variance of each log ratio: intake-explained, latent-T-only, irreducible noise."""
    rng = np.random.default_rng(2026)
    columns, trouble = sample_intake(n, rng, AS_OF)
    o = sample_outcomes(columns, trouble, rng)
    projects = pd.DataFrame(columns)
    d = outcome_drivers(projects)
    swan_p = expit(linear_predictor(d, "black_swan") + trouble_loading(d, "black_swan") * trouble)
    oracle = dict(zip(("cost", "schedule"), expected_log_overrun(projects)))
    actual = {"cost": np.log(o.actual_cost / projects["budget_at_completion"]),
              "schedule": np.log(o.actual_days / projects["planned_duration_days"])}
    rows = {}
    for t in P.TYPE_PROFILES:
        m = (projects["project_type"] == t).to_numpy()
        row = {}
        for outcome in ("cost", "schedule"):
            y = actual[outcome][m]
            knows_t = (linear_predictor(d, outcome) + trouble_loading(d, outcome) * trouble
                       + swan_p * swan_log_tail_mean(outcome)[d.type_code])[m]
            r2_intake = 1 - np.mean((y - oracle[outcome][m]) ** 2) / y.var()
            r2_with_t = 1 - np.mean((y - knows_t) ** 2) / y.var()
            row |= {f"{outcome} sd": y.std(), f"{outcome} intake": r2_intake,
                    f"{outcome} latent T": r2_with_t - r2_intake,
                    f"{outcome} noise": 1 - r2_with_t}
        rows[t] = row
    return pd.DataFrame(rows).T


def late_drift_summary(n: int = 100_000) -> pd.Series:
    """Realised late CPI drift sizes (log CPI) over ALL projects: quantiles, by volatility, type."""
    rng = np.random.default_rng(2025)
    columns, trouble = sample_intake(n, rng, AS_OF)
    drift = pd.Series(sample_outcomes(columns, trouble, rng).late_cpi_drift)
    summary = {"median": drift.median(), "mean": drift.mean(), "P90": drift.quantile(0.9),
               "P99": drift.quantile(0.99)}
    for level, mean in drift.groupby(columns["requirements_volatility"]).mean().items():
        summary[f"mean at volatility {level}"] = mean
    for kind, mean in drift.groupby(columns["project_type"]).mean().items():
        summary[f"mean for {kind}"] = mean
    return pd.Series(summary)


def inflight_table(history, points=(25, 50, 75), tolerance=12.5) -> pd.DataFrame:
    """CPI stability and index-forecast accuracy on completed projects, per progress point.

    Snapshots are picked as in training (nearest percent complete within the tolerance). Three
    forecasts of the actual cost: BAC/CPI; BAC/CPI times the median actual/forecast ratio at that
    point (fixes the average late drift, knows no intake); and BAC/CPI corrected by the median
    late drift the generator implies for the project's intake drivers (the drift-model reference).
    "High" = volatility >= 4 and >= 3 vendors; "low" = volatility <= 2 and <= 2 vendors.
    """
    done = history.projects[history.projects["actual_finish_date"].notna()]
    drift = pd.Series(late_cpi_drift_size(late_cpi_drift_logit(outcome_drivers(done))),
                      index=done["project_id"].to_numpy())
    cols = ["project_id", "actual_cost", "budget_at_completion", "requirements_volatility",
            "num_vendors"]
    snaps = history.snapshots.merge(done[cols], on="project_id")
    cpi = snaps["ev"] / snaps["ac"]
    rel = cpi / cpi.groupby(snaps["project_id"]).transform("last") - 1
    rows = {}
    for point in points:
        gap = (snaps["percent_complete"] - point).abs()
        near = gap[gap <= tolerance]
        at = snaps.loc[near.groupby(snaps.loc[near.index, "project_id"]).idxmin().to_numpy()]
        actual = at["actual_cost"]
        eac = at["budget_at_completion"] / cpi[at.index]
        remaining = np.minimum((1 - at["ev"] / at["budget_at_completion"])
                               / (1 - P.LATE_CPI_DRIFT.onset_progress), 1)
        corrected = eac * np.exp(drift[at["project_id"]].to_numpy() * remaining)
        signed = eac / actual - 1
        high = (at["requirements_volatility"] >= 4) & (at["num_vendors"] >= 3)
        low = (at["requirements_volatility"] <= 2) & (at["num_vendors"] <= 2)
        rows[f"{point} %"] = {
            "projects": len(at),
            "CPI within 10 % of final": (rel[at.index].abs() < 0.1).mean(),
            "final CPI worse": (rel[at.index] > 0).mean(),
            "MAPE BAC/CPI %": 100 * signed.abs().mean(),
            "MAPE x median ratio %": 100 * (eac * (actual / eac).median() / actual - 1).abs().mean(),
            "MAPE drift-corrected %": 100 * (corrected / actual - 1).abs().mean(),
            "BAC/CPI bias high %": 100 * signed[high].mean(),
            "BAC/CPI bias low %": 100 * signed[low].mean(),
        }
    window = snaps["percent_complete"].between(20, 30)
    early = snaps["percent_complete"] < 5
    rows["20-30 % (all snapshots)"] = {
        "projects": int(snaps.loc[window, "project_id"].nunique()),
        "CPI within 10 % of final": (rel[window].abs() < 0.1).mean(),
        "final CPI worse": (rel[window] > 0).mean()}
    rows["< 5 % (all snapshots)"] = {
        "projects": int(snaps.loc[early, "project_id"].nunique()),
        "CPI within 10 % of final": (rel[early].abs() < 0.1).mean(),
        "final CPI worse": (rel[early] > 0).mean()}
    table = pd.DataFrame(rows).T
    table["projects"] = table["projects"].astype(int)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--report", action="store_true", help="print the data/README.md tables")
    args = parser.parse_args()
    print("## generation (seed 42, fresh process per size)")
    print(markdown(timing_table(args.sizes), 2))
    print("\n## per-project loop baseline (timeline only)")
    print(markdown(pd.Series(loop_baseline()), 2))
    if args.report:
        print("\n## overrun distribution by type (100k projects, all, incl. in flight)")
        print(markdown(distribution_table()))
        print("\n## late CPI drift size (100k projects, all)")
        print(markdown(late_drift_summary(), 4))
        print("\n## variance split of log ratios (100k projects)")
        print(markdown(variance_split()))
        print("\n## achievable floor on completed projects (100k history, seed 42)")
        history = generate_history(100_000, seed=42)
        start = time.perf_counter()
        floor = floor_metrics(history)
        print(markdown(floor.astype(float)))
        print(f"(oracle evaluated in {time.perf_counter() - start:.1f} s)")
        print("\n## in-flight CPI stability and index forecasts (same history, completed)")
        print(markdown(inflight_table(history)))


if __name__ == "__main__":
    main()
