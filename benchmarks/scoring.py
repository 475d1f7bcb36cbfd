"""Benchmark: batch scoring with SHAP explanations, one process vs a Dask LocalCluster.

    python benchmarks/scoring.py [--projects 1000000] [--parts 8] [--registry sqlite:///mlflow.db]
    python benchmarks/scoring.py --projects 100000 --modes single --compare 7bfd8e4

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
The single process scores with the command's rich progress bar (on stderr). Next to them, the
floor: the three P50 models' TreeSHAP alone on the same rows (features prebuilt, all cores).
`--compare REF` also scores the same parts with commit REF's own code and models, each mode
right after this tree's, and prints both side by side.
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
from opm_ml.features import STATUS_INPUT_COLUMNS, contract_manifest  # noqa: E402
from opm_ml.settings import Settings  # noqa: E402

console = Console(width=140)
MODES = {"single process": 0, "Dask, 1 worker": 1, "Dask, 2 workers": 2}
MODE_NAMES = {"single": "single process", "dask1": "Dask, 1 worker", "dask2": "Dask, 2 workers"}


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
    parser.add_argument("--modes", default="single,dask1,dask2",
                        help="comma-separated: single, dask1, dask2")
    parser.add_argument("--compare", metavar="REF", help="also score with commit REF's code")
    parser.add_argument("--compare-registry", metavar="URI",
                        help="REF's champion models (trained by REF's code) to reuse")
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: one mode, JSON out
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_mode(**json.loads(args.run))))
        return

    with tempfile.TemporaryDirectory(prefix="opm-score-bench-") as tmp:
        tmp = Path(tmp)
        uri = args.registry or train_registry(tmp, args.train_projects)
        old = None
        if args.compare:
            from compare import checkout, train_old

            old = checkout(args.compare)
            with console.status(f"training {args.compare}'s models"):
                old_uri = args.compare_registry or train_old(old, tmp / "old",
                                                             args.train_projects)
        started = time.perf_counter()
        rows = build_rows(args.projects, args.sample)
        files = write_parts(rows, tmp / "input", args.parts)
        console.print(f"{args.projects:,} rows in {len(files)} Parquet parts "
                      f"({time.perf_counter() - started:.1f} s to build)")
        floors = [floor_rate(uri, tmp, rows)]
        console.print(f"floor: the 3 P50 models' TreeSHAP, {floors[0]:,.0f} rows/s")
        results = {}
        for mode in (MODE_NAMES[m.strip()] for m in args.modes.split(",")):
            workers = MODES[mode]
            config = dict(uri=uri, artifacts=str(tmp / "artifacts"), source=str(tmp / "input"),
                          out=str(tmp / f"out-{workers}"), workers=workers,
                          chunk_rows=args.chunk_rows)
            runs = [(mode, None)] + ([(f"{mode} ({args.compare})", old)] if old else [])
            for name, root in runs:
                if root is not None:
                    config = {**config, "uri": old_uri, "artifacts": str(tmp / "old-artifacts"),
                              "out": config["out"] + "-old"}
                with console.status(f"scoring: {name}"):
                    results[name] = run_child(config, root)
                console.print(f"{name}: {results[name]['rows']:,} rows in "
                              f"{results[name]['seconds']:.1f} s")
        floors.append(floor_rate(uri, tmp, rows))  # again: other load on the machine varies
        console.print(results_table(results, args.chunk_rows, floors))


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
    valid, _ = validate_rows(frame, "sample", contract_manifest())
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


def floor_rate(uri: str, tmp: Path, rows: pd.DataFrame) -> float:
    """Rows/s of the three P50 models' TreeSHAP alone on `rows` (features prebuilt)."""
    from opm_ml.features import feature_matrix
    from opm_ml.forecasting.inputs import ProjectInputs

    models = _models(uri, tmp / "artifacts")
    inputs = ProjectInputs.from_frame(rows, next(iter(models.values())).manifest)
    work = []
    for model in models.values():
        for stage, estimator in model.stages.items():
            X = feature_matrix(inputs.features(stage, model.manifest), estimator.feature_names_)
            work.append((estimator.regressor_.models_[1].booster_, X))
    started = time.perf_counter()
    for booster, X in work:
        booster.predict(X, pred_contrib=True)
    return len(rows) / (time.perf_counter() - started)


def _models(uri: str, artifacts: Path) -> dict:
    from opm_ml.batch_scoring import load_models

    return load_models(_settings(uri, artifacts), ["delay", "overrun", "resource"]).models


def run_child(config: dict, root: Path | None = None) -> dict:
    """One mode in a fresh interpreter, so each peak RSS is that mode's own; with `root`, the
    old checkout's own benchmark and package."""
    script = __file__ if root is None else str(root / "benchmarks" / "scoring.py")
    env = None if root is None else {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, script, "--run", json.dumps(config)], env=env,
                          cwd=ROOT if root is None else root, stdout=subprocess.PIPE, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"scoring failed (exit {done.returncode}); see its output above")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_mode(uri: str, artifacts: str, source: str, out: str, workers: int,
             chunk_rows: int) -> dict:
    """Score `source` in this process (workers=0) or on a LocalCluster; time and memory."""
    import logging

    from opm_ml.arrow_memory import use_system_pool
    from opm_ml.batch_scoring import load_models, score_dask, score_files
    from opm_ml.batch_scoring.inputs import count_rows, input_files
    from opm_ml.dask_cluster import dask_client

    use_system_pool()  # as every `opm-ml` command starts (its Dask workers inherit it)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    models = load_models(_settings(uri, Path(artifacts)), ["delay", "overrun", "resource"])
    files = input_files(Path(source))
    if workers == 0:
        from opm_ml.batch_scoring.cli import progress_bar

        total = sum(count_rows(path) for path in files)
        with progress_bar(total, Console(stderr=True)) as advance:  # as `opm-ml score` shows it
            started = time.perf_counter()
            outcome = score_files(files, Path(out + ".parquet"), models, chunk_rows=chunk_rows,
                                  progress=advance)
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


def results_table(results: dict, chunk_rows: int, floors: list[float]) -> Table:
    """Each mode's figures; `of floor` against the mean of the floors measured before and
    after the modes ran."""
    floor = float(np.mean(floors))
    table = Table(title=f"Batch scoring with SHAP explanations, {os.cpu_count()} cores, "
                        f"chunks of {chunk_rows:,} rows; floor (3 P50 TreeSHAP) "
                        f"{' and '.join(f'{f:,.0f}' for f in floors)} rows/s")
    for name in ("mode", "rows", "seconds", "rows/s", "of floor", "speed-up", "peak RSS, MB"):
        table.add_column(name, justify="left" if name == "mode" else "right")
    first = next(iter(results.values()))
    base = first["rows"] / first["seconds"]
    for mode, r in results.items():
        rate = r["rows"] / r["seconds"]
        memory = (f"{r['driver_mb']:,.0f}" if r["worker_mb"] is None
                  else f"{r['driver_mb']:,.0f} driver, {r['worker_mb']:,.0f} per worker")
        table.add_row(mode, f"{r['rows']:,}", f"{r['seconds']:.1f}", f"{rate:,.0f}",
                      f"{rate / floor:.2f}", f"{rate / base:.2f}x", memory)
    return table


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries the parent's RSS at fork
    across exec into it, so each mode's child reported at least this benchmark's own RSS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _settings(uri: str, artifacts: Path) -> Settings:
    # The service database (prediction log) beside the artifacts, never the project's own.
    return Settings(_env_file=None, mlflow_tracking_uri=uri, mlflow_artifact_root=artifacts,
                    database_url=f"sqlite:///{artifacts.parent / 'opm-ml.db'}",
                    registry_poll_seconds=0)


if __name__ == "__main__":
    main()
