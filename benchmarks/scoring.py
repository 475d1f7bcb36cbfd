"""Benchmark: batch scoring with SHAP explanations, one process vs a Dask LocalCluster.

    python benchmarks/scoring.py [--projects 1000000] [--parts 8] [--registry sqlite:///mlflow.db]

Trains default-spec models on a few thousand generated projects into a throw-away registry
(unless `--registry` names one with champions), builds N projects to score (half of them with
a status snapshot) and writes them as partitioned Parquet. The N rows are `--sample` generated
projects resampled with replacement under new ids: generating a million-project history would
take longer than scoring it, and scoring cost does not depend on rows being distinct. Each
mode then scores the same parts with explanations in a fresh process (so its peak RSS is its
own): `score_files` in one process (the baseline), and `score_dask` on a LocalCluster of 1 and
of 2 worker processes, the code paths `opm-ml score` and `opm-ml score --dask` run. Seconds
cover scoring only (reading, validation, models, writing), not model loading or cluster start.
LightGBM (~85 % of the time, TreeSHAP most of it) uses OpenMP on every core in the single
process, while Dask starts its workers with OMP_NUM_THREADS=1, so on 2 cores the gain of 2
workers is what the Python parts (validation, features, output) gain from a second process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import registry_settings, train_champions, write_history  # noqa: E402

from opm_ml.contract import INTAKE_COLUMNS  # noqa: E402
from opm_ml.features import STATUS_INPUT_COLUMNS  # noqa: E402
from opm_ml.settings import Settings  # noqa: E402

console = Console()
MODES = {"single process": 0, "Dask, 1 worker": 1, "Dask, 2 workers": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1_000_000, help="rows to score")
    parser.add_argument("--parts", type=int, default=8, help="Parquet part files")
    parser.add_argument("--sample", type=int, default=20_000,
                        help="generated projects the rows are resampled from")
    parser.add_argument("--train-projects", type=int, default=3000,
                        help="history size when training fresh models (default spec)")
    parser.add_argument("--registry", help="MLflow tracking URI with champion models")
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one mode, JSON out
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_mode(**json.loads(args.run))))
        return

    with tempfile.TemporaryDirectory(prefix="opm-score-bench-") as tmp:
        tmp = Path(tmp)
        uri = args.registry or train_registry(tmp, args.train_projects)
        started = time.perf_counter()
        files = write_parts(build_rows(args.projects, args.sample), tmp / "input", args.parts)
        console.print(f"{args.projects:,} rows in {len(files)} Parquet parts "
                      f"({time.perf_counter() - started:.1f} s to build)")
        results = {}
        for mode, workers in MODES.items():
            with console.status(f"scoring: {mode}"):
                results[mode] = run_child(dict(
                    uri=uri, artifacts=str(tmp / "artifacts"), source=str(tmp / "input"),
                    out=str(tmp / f"out-{workers}"), workers=workers,
                    chunk_rows=args.chunk_rows))
            console.print(f"{mode}: {results[mode]['rows']:,} rows in "
                          f"{results[mode]['seconds']:.1f} s")
        console.print(results_table(results, args.chunk_rows))


def train_registry(tmp: Path, n_projects: int) -> str:
    """A throw-away registry with champion models of the default specs; returns its URI."""
    settings = registry_settings(tmp)
    with console.status(f"training the three families on {n_projects:,} projects"):
        train_champions(settings, write_history(settings, n_projects, seed=7), seed=3)
    return settings.mlflow_tracking_uri


def build_rows(n: int, sample: int) -> pd.DataFrame:
    """`n` scoring rows resampled from `sample` generated projects; about half in flight.

    In-flight rows carry one of their project's snapshots picked at random; the sample is
    validated first, so every resampled row is valid and all `n` are scored.
    """
    from opm_ml.batch_scoring import validate_rows
    from opm_ml.synthetic import generate_history

    history = generate_history(min(n, sample), seed=21)
    rng = np.random.default_rng(5)
    snaps = history.snapshots.sample(frac=1.0, random_state=5).drop_duplicates("project_id")
    frame = history.projects[["project_id", *INTAKE_COLUMNS]].merge(
        snaps[["project_id", *STATUS_INPUT_COLUMNS]], on="project_id", how="left")
    frame.loc[rng.random(len(frame)) < 0.5, list(STATUS_INPUT_COLUMNS)] = np.nan
    valid, _ = validate_rows(frame, "sample")
    frame = frame.iloc[valid.index - 1].reset_index(drop=True)
    rows = frame.iloc[rng.integers(0, len(frame), n)].reset_index(drop=True)
    rows["project_id"] = np.char.add("S", np.char.zfill(np.arange(n).astype(str), 7))
    return rows


def write_parts(rows: pd.DataFrame, folder: Path, parts: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, chunk in enumerate(np.array_split(np.arange(len(rows)), parts)):
        paths.append(folder / f"part.{i}.parquet")
        rows.iloc[chunk].to_parquet(paths[-1], index=False)
    return paths


def run_child(config: dict) -> dict:
    """One mode in a fresh interpreter, so each peak RSS is that mode's own."""
    done = subprocess.run([sys.executable, __file__, "--run", json.dumps(config)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"scoring failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_mode(uri: str, artifacts: str, source: str, out: str, workers: int,
             chunk_rows: int) -> dict:
    """Score `source` in this process (workers=0) or on a LocalCluster; time and memory."""
    import logging

    from opm_ml.batch_scoring import load_models, score_dask, score_files
    from opm_ml.batch_scoring.inputs import input_files
    from opm_ml.dask_cluster import dask_client

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    models = load_models(_settings(uri, Path(artifacts)), ["delay", "overrun", "resource"])
    files = input_files(Path(source))
    if workers == 0:
        started = time.perf_counter()
        outcome = score_files(files, Path(out + ".parquet"), models, chunk_rows=chunk_rows)
        seconds, worker_mb = time.perf_counter() - started, None
    else:
        with dask_client("local", workers) as client:
            started = time.perf_counter()
            outcome = score_dask(client, files, Path(out), models, chunk_rows=chunk_rows)
            seconds = time.perf_counter() - started
            worker_mb = max(client.run(_peak_rss_mb).values())
    if outcome.scored != outcome.rows:
        raise SystemExit(f"{outcome.rows - outcome.scored} rows were rejected")
    return {"rows": outcome.scored, "seconds": seconds, "driver_mb": _peak_rss_mb(),
            "worker_mb": worker_mb}


def results_table(results: dict, chunk_rows: int) -> Table:
    table = Table(title=f"Batch scoring with SHAP explanations, {os.cpu_count()} cores, "
                        f"chunks of {chunk_rows:,} rows")
    for name in ("mode", "rows", "seconds", "rows/s", "speed-up", "peak RSS, MB"):
        table.add_column(name, justify="left" if name == "mode" else "right")
    base = results["single process"]["rows"] / results["single process"]["seconds"]
    for mode, r in results.items():
        rate = r["rows"] / r["seconds"]
        memory = (f"{r['driver_mb']:,.0f}" if r["worker_mb"] is None
                  else f"{r['driver_mb']:,.0f} driver, {r['worker_mb']:,.0f} per worker")
        table.add_row(mode, f"{r['rows']:,}", f"{r['seconds']:.1f}", f"{rate:,.0f}",
                      f"{rate / base:.2f}x", memory)
    return table


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _settings(uri: str, artifacts: Path) -> Settings:
    return Settings(_env_file=None, mlflow_tracking_uri=uri, mlflow_artifact_root=artifacts,
                    registry_poll_seconds=0)


if __name__ == "__main__":
    main()
