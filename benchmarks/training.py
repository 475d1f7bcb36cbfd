"""Benchmark: train all three model families on generated projects; time and peak memory.

    python benchmarks/training.py [--projects 100000] [--seed 42] [--runs 2]
    python benchmarks/training.py --dask [--workers 1,2] [--projects 5000]

Runs the real pipeline (`training.pipeline.train_models`: fit, evaluate against baselines,
MLflow logging and the registry gate) into a throw-away MLflow store, and compares it in the
same process with two references on the same data: the intake baselines (log-linear and
reference-class, what a PMO spreadsheet does) and LightGBM with its default parameters (one
L2 model per family and stage, OpenMP threads, no intervals). Target: <= 5 minutes on 2 cores
for 100,000 projects. Peak RSS is the process high-water mark after each phase.
With --dask it compares the backends instead: the same training locally (joblib threads) and
on a Dask LocalCluster of each --workers size (lightgbm.dask, one model at a time), each into a
fresh store; peak RSS is then this process's only (the workers are their own processes).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opm_ml.settings import Settings  # noqa: E402
from opm_ml.synthetic import generate_history  # noqa: E402
from opm_ml.validation import History  # noqa: E402

console = Console()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def default_lightgbm_seconds(history: History) -> float:
    """Fit time of one default-parameter LightGBM per family and stage (the naive reference)."""
    from lightgbm import LGBMRegressor

    from opm_ml.features import build_features
    from training.datasets import build_training_data
    from training.specs import FAMILIES, load_spec

    started = time.perf_counter()
    for family in FAMILIES:
        spec = load_spec(family)
        data = build_training_data(history.projects, history.snapshots, spec)
        for stage, part in (("intake", data.intake), ("inflight", data.inflight)):
            X = build_features(part.train, stage)
            LGBMRegressor(verbose=-1).fit(X, part.train[spec.target])
    return time.perf_counter() - started


def baseline_seconds(history: History) -> float:
    """Fit time of the log-linear and reference-class intake baselines for all families."""
    from training.baselines import LogLinearBaseline, ReferenceClassBaseline
    from training.datasets import build_training_data
    from training.specs import FAMILIES, load_spec

    started = time.perf_counter()
    for family in FAMILIES:
        data = build_training_data(history.projects, history.snapshots, load_spec(family))
        LogLinearBaseline(family).fit(data.intake.train)
        ReferenceClassBaseline(family).fit(data.intake.train)
    return time.perf_counter() - started


def backend_rows(history: History, seed: int, worker_counts: list[int], root: Path) -> list:
    """Local training vs Dask LocalClusters of each size: wall time and held-out MAPE."""
    from opm_ml.dask_cluster import dask_client, describe
    from training.pipeline import train_models

    rows = []

    def train(label: str, client=None) -> None:
        store = root / f"store{len(rows)}"
        settings = Settings(mlflow_tracking_uri=f"sqlite:///{store}/mlflow.db",
                            mlflow_artifact_root=store / "artifacts")
        started = time.perf_counter()
        result = train_models(history, seed=seed, settings=settings, client=client)
        mape = ", ".join(f"{r.family} {r.metrics['heldout/mape']:.2f}" for r in result.results)
        rows.append((label, time.perf_counter() - started, peak_rss_mb(),
                     f"held-out MAPE %: {mape}"))

    train("opm-ml train (local: joblib threads)")
    for n in worker_counts:
        started = time.perf_counter()
        with dask_client(n_workers=n) as client:
            rows.append((f"  start a LocalCluster of {n}", time.perf_counter() - started, None,
                         describe(client)))
            train(f"opm-ml train --dask --workers {n}", client)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=2,
                        help="training runs into the same store (the 2nd must beat a champion)")
    parser.add_argument("--dask", action="store_true",
                        help="compare local training with Dask LocalClusters instead")
    parser.add_argument("--workers", default="1,2",
                        help="with --dask: LocalCluster sizes to try, comma-separated")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from training.pipeline import train_models

    rows = []
    started = time.perf_counter()
    generated = generate_history(args.projects, seed=args.seed)
    history = History(generated.projects, generated.snapshots, generated.resource_usage,
                      pd.DataFrame(columns=["table", "row", "column", "value", "reason"]))
    rows.append(("generate history", time.perf_counter() - started, peak_rss_mb(), ""))
    console.print(f"{len(history.projects):,} projects, {len(history.snapshots):,} snapshots, "
                  f"{len(history.resource_usage):,} usage rows; {os.cpu_count()} cores")

    if args.dask:
        with tempfile.TemporaryDirectory() as tmp:
            rows += backend_rows(history, args.seed,
                                 [int(n) for n in args.workers.split(",")], Path(tmp))
        print_table(f"Training backends: {args.projects:,} generated projects", rows)
        return
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                            mlflow_artifact_root=Path(tmp) / "artifacts")
        for run in range(1, args.runs + 1):
            label = "first run" if run == 1 else "rerun: gate scores the champion"
            started = time.perf_counter()
            result = train_models(history, seed=args.seed, settings=settings,
                                  progress=lambda f, s: console.print(
                                      f"  [{time.perf_counter() - started:6.1f}s] {f}: {s}"))
            total = time.perf_counter() - started
            for r in result.results:
                rows.append((f"  {r.family}: fit + evaluate + log + gate", r.seconds, None,
                             f"held-out MAPE {r.metrics['heldout/mape']:.2f} %, "
                             f"P10-P90 cover {r.metrics['heldout/coverage_80']:.3f}; "
                             f"{r.decision.reason}"))
            rows.append((f"opm-ml train, all three families ({label})", total, peak_rss_mb(),
                         "target <= 300 s"))
    rows.append(("reference: intake baselines fit", baseline_seconds(history), peak_rss_mb(), ""))
    rows.append(("reference: default LightGBM, 1 model/stage", default_lightgbm_seconds(history),
                 peak_rss_mb(), "no intervals, classifier, roles or logging"))

    print_table(f"Training benchmark: {args.projects:,} generated projects", rows)


def print_table(title: str, rows: list) -> None:
    table = Table(title=title)
    for col in ("phase", "seconds", "peak RSS (MB)", "notes"):
        table.add_column(col, justify="right" if col in ("seconds", "peak RSS (MB)") else "left")
    for phase, seconds, rss, notes in rows:
        table.add_row(phase, f"{seconds:.1f}", "" if rss is None else f"{rss:,.0f}", notes)
    console.print(table)


if __name__ == "__main__":
    main()
