"""The prediction log's writer: the CPU it takes to turn a served batch into rows and store them.

    python benchmarks/prediction_log.py                  # 10,000 projects, SQLite: ~1 minute
    python benchmarks/prediction_log.py --postgres       # also a throwaway PostgreSQL cluster

Trains small champions (25 trees on 1,500 generated projects) into a throwaway registry, then
builds what the API queues for one request of `--projects` project bodies: generated intake and
in-flight bodies, shuffled, parsed into `ProjectInputs` as the API parses them, assessed chunk
by chunk as `BatchLane` runs a large batch, and one `Entry` per chunk (what `log_forecasts`
records). Then, `--rounds` times, each code in turn (which goes first alternates):

- `entry_rows`: the rows of every entry;
- `_write`: rows and inserts, one transaction per batch the writer would form (`batch_rows`),
  into a fresh SQLite file (and, with `--postgres`, emptied PostgreSQL tables).

`baseline` is the writer as it was before the columnar rows (commit 7a7a977: a dict per row,
`insert()` through SQLAlchemy), frozen in tests/frozen_log_writer.py (also the oracle of
tests/test_monitoring_rows.py); `current` is the code in the tree.
Printed: medians of CPU seconds (`time.process_time`, this process, the writer's own cost,
held under the GIL) and wall seconds, and projects per CPU second. Garbage collection stays on,
as in the writer. The writer runs this on a thread while the API serves: every CPU second here
is one the API's threads wait for on a 2-core machine.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import date, datetime, timezone
from pathlib import Path

from harness import ROOT, registry_settings, train_champions, write_history
from sqlalchemy import func, select, text

from opm_ml import database
from opm_ml.database.tables import prediction_log, prediction_log_forecast
from opm_ml.forecasting.assessment import assess
from opm_ml.model_set import load_model_set
from opm_ml.monitoring import scenario
from opm_ml.monitoring.log import PredictionLog
from opm_ml.monitoring.records import Entry, entry_rows
from serving.batches import CHUNK_ROWS, LANE_ROWS
from serving.requests import project_inputs

sys.path.insert(0, str(ROOT / "tests"))  # the writer as it was: the in-run baseline
from frozen_log_writer import reference_rows, reference_write  # noqa: E402

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)
BATCH_ROWS = PredictionLog("unused").batch_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10_000, help="projects in the request")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each code")
    parser.add_argument("--postgres", action="store_true",
                        help="also write to a throwaway PostgreSQL cluster (Debian's binaries)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"# benchmarks/prediction_log.py, {date.today()}, commit {commit}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory(prefix="opm-bench-plog-") as tmp, ExitStack() as stack:
        entries = served_entries(Path(tmp), args.projects)
        databases = {"SQLite": sqlite_databases(Path(tmp))}
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            import pg_cluster

            url = stack.enter_context(pg_cluster.postgres_cluster("opm"))
            databases["PostgreSQL"] = postgres_database(url)
        results = measure(entries, databases, args.rounds)
    print_table(results, args.projects)


def served_entries(root: Path, n: int) -> list[Entry]:
    """What the API's prediction log holds after answering one request of `n` projects."""
    settings = registry_settings(root / "registry")
    started = time.perf_counter()
    train_champions(settings, write_history(settings, 1500, seed=11), seed=3, n_estimators=25)
    model_set = load_model_set(settings)
    bodies: list[dict] = []
    projects = n // 3 + 10
    while len(bodies) < n:  # one intake and up to three in-flight bodies per project
        bodies = scenario.request_bodies(scenario.forecast_rows(
            scenario.future(projects, seed=2, shifted=False)))
        projects *= 2
    random.Random(1).shuffle(bodies)
    inputs = project_inputs(bodies[:n], model_set.manifest, n)
    refs = {f: (m.name, m.version) for f, m in model_set.models.items()}
    entries = []
    for start in range(0, n, CHUNK_ROWS if n >= LANE_ROWS else n):  # as BatchLane.run
        chunk = inputs.take(slice(start, start + CHUNK_ROWS))
        forecasts = assess(model_set.family_models(), chunk).forecasts
        entries.append(Entry("api", datetime.now(timezone.utc), chunk, forecasts, refs))
    forecasts = sum(len(entry_rows(e)[1]) for e in entries)
    print(f"{n:,} projects ({len(inputs.inflight):,} in flight), {forecasts:,} family forecasts, "
          f"{len(entries)} entries; models trained and batch assessed in "
          f"{time.perf_counter() - started:.0f} s\n")
    return entries


def sqlite_databases(root: Path):
    """A fresh, migrated SQLite file per call (connecting and migrating are not timed)."""
    count = iter(range(1_000_000))
    return lambda: database.connect(f"sqlite:///{root / f'log-{next(count)}.db'}")


def postgres_database(url: str):
    """The cluster's database with both log tables emptied per call."""
    engine = database.connect(url)

    def emptied():
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE prediction_log_forecast, prediction_log"))
        return engine

    return emptied


def measure(entries: list[Entry], databases: dict, rounds: int) -> dict:
    """(step, database, code) -> [(CPU s, wall s)] over the rounds."""
    codes = {"baseline": (reference_rows, reference_write),
             "current": (entry_rows, PredictionLog("unused")._write)}
    batches = writer_batches(entries)
    expected = None
    results: dict = {}
    for r in range(rounds):
        order = list(codes) if r % 2 == 0 else list(codes)[::-1]
        for code in order:
            rows, write = codes[code]
            results.setdefault(("entry_rows", "-", code), []).append(
                timed(lambda f: [f(e) for e in entries], rows))
            for name, fresh in databases.items():
                engine = fresh()
                results.setdefault(("_write", name, code), []).append(
                    timed(lambda f, db: [f(db, batch) for batch in batches], write, engine))
                counts = stored_counts(engine)
                expected = expected or counts
                assert counts == expected, (name, code, counts, expected)
    return results


def writer_batches(entries: list[Entry]) -> list[list[Entry]]:
    """The entries grouped as `PredictionLog._run` takes them off a full queue."""
    batches: list[list[Entry]] = []
    rows = 0
    for entry in entries:
        if not batches or rows + entry.rows > BATCH_ROWS:
            batches.append([])
            rows = 0
        batches[-1].append(entry)
        rows += entry.rows
    return batches


def timed(work, *args) -> tuple[float, float]:
    """(CPU s, wall s) of `work(*args)`, from a collected heap."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    work(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def stored_counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (prediction_log, prediction_log_forecast))


def print_table(results: dict, n: int) -> None:
    print("| step | database | code | CPU s | wall s | projects / CPU s | CPU vs baseline |\n"
          "|---|---|---|---|---|---|---|")
    for (step, name, code), runs in results.items():
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        base = statistics.median(c for c, _ in results[step, name, "baseline"])
        change = "" if code == "baseline" else f"{cpu / base - 1:+.0%}"
        print(f"| {step} | {name} | {code} | {cpu:.3f} | {wall:.3f} | {n / cpu:,.0f} | "
              f"{change} |")
    print(f"\nmedians of {len(runs)} rounds; CPU spread (min-max) per line: "
          + "; ".join(f"{step} {name} {code} {min(c for c, _ in runs):.3f}-"
                      f"{max(c for c, _ in runs):.3f}"
                      for (step, name, code), runs in results.items()))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
