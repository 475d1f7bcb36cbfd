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
from opm_ml.synthetic.intake import CATEGORY_LISTS, sample_intake  # noqa: E402
from opm_ml.synthetic.outcomes import (  # noqa: E402
    linear_predictor, outcome_drivers, sample_outcomes, trouble_loading,
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
    for name, categories in CATEGORY_LISTS.items():
        columns[name] = np.asarray(categories)[columns[name]]
    o = sample_outcomes(columns, trouble, rng)
    return Plan(columns["start_date"].astype(np.int64), columns["planned_duration_days"],
                o.actual_days, columns["budget_at_completion"], o.actual_cost, o.role_effort)


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
    for name, categories in CATEGORY_LISTS.items():
        columns[name] = np.asarray(categories)[columns[name]]
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
    for name, categories in CATEGORY_LISTS.items():
        columns[name] = np.asarray(categories)[columns[name]]
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
        print("\n## variance split of log ratios (100k projects)")
        print(markdown(variance_split()))
        print("\n## achievable floor on completed projects (100k history, seed 42)")
        start = time.perf_counter()
        floor = floor_metrics(generate_history(100_000, seed=42))
        print(markdown(floor.astype(float)))
        print(f"(oracle evaluated in {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
