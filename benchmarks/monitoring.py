"""The monitoring loop's figures: the drift scenario and the prediction log's overhead.

    python benchmarks/monitoring.py                 # about 6 minutes on 2 cores
    python benchmarks/monitoring.py --history 1000 --future 800 --seconds 5   # quicker

1. Drift scenario: champions trained (default specs) on a history up to 2022; then an
   unshifted and a shifted future (2023-24: twice the IT share, more volatile requirements,
   overruns and delays x 1.16) are each forecast through the API, finish and are ingested.
   Printed: the features the monitor flags (PSI, KS), realised vs held-out MAPE, the retrain
   decision of each, and for the shifted one the promotion gate and the MAPE of the old and
   the new champion on fresh shifted projects.
2. Logging overhead: what `record()` costs the request thread and how fast the writer
   commits; then three API servers on the same models (prediction log off, off, on) measured
   in turn in the same run: single-row requests, one client, `--seconds` each round, with
   wall-clock p50 and req/s and the server's CPU time per request. The two servers without
   the log show how much the figures move on their own on this machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import numpy as np
from harness import (
    ROOT,
    api_command,
    api_env,
    free_port,
    measure,
    registry_settings,
    server,
)

from opm_ml import validation
from opm_ml.forecasting import FAMILY_NAMES
from opm_ml.monitoring import scenario

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.ERROR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=2000, help="projects before 2023")
    parser.add_argument("--future", type=int, default=1500, help="projects of each future")
    parser.add_argument("--seconds", type=float, default=5.0, help="per overhead round")
    parser.add_argument("--rounds", type=int, default=6, help="overhead rounds per mode")
    parser.add_argument("--overhead-only", action="store_true", help="skip the scenario")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"# benchmarks/monitoring.py, {date.today()}, commit {commit}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    with tempfile.TemporaryDirectory(prefix="opm-bench-monitoring-") as tmp:
        settings, history, specs = champion(Path(tmp), args.history)
        if not args.overhead_only:
            runs = {shifted: run_future(settings, history, specs, Path(tmp), args.future,
                                        shifted) for shifted in (False, True)}
            print_drift(runs)
            print_accuracy(runs)
            print_decisions(runs)
            print_retrain(settings, runs[True])
        own = registry_copy_settings(settings, Path(tmp))
        hot_path(own)
        overhead(own, args.seconds, args.rounds)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


def champion(root: Path, n: int):
    """Champion v1 of each family from the default specs, trained on the 2012-22 history."""
    from opm_ml.synthetic import write_history
    from training.pipeline import train_models
    from training.specs import load_spec

    settings = registry_settings(root / "registry")
    history = scenario.history(n, seed=1)
    write_history(history, settings.data_dir)
    specs = {f: load_spec(f) for f in FAMILY_NAMES}
    started = time.perf_counter()
    result = train_models(validation.load_history(settings.data_dir), settings=settings,
                          specs=specs, seed=3)
    print(f"champions: {n:,} projects started 2012-2022, trained in "
          f"{time.perf_counter() - started:.0f} s; "
          + ", ".join(f"{r.family} held-out MAPE {r.metrics['heldout/mape']:.2f}"
                      for r in result.results) + "\n")
    refused = [f"{r.family}: {r.decision.reason}" for r in result.results if not r.decision.promoted]
    if refused:  # the default specs register only models that beat their baselines
        raise SystemExit("no champion, so nothing to monitor: " + "; ".join(refused)
                         + " (give more --history projects)")
    return settings, history, specs


def registry_copy_settings(settings, root: Path):
    """The overhead servers read the same registry; the log goes to its own database."""
    return settings.model_copy(update={"database_url": f"sqlite:///{root / 'overhead.db'}"})


def run_future(settings, history, specs, root: Path, n: int, shifted: bool) -> dict:
    """Serve a future through the API, ingest its outcomes, decide (and retrain if shifted)."""
    from fastapi.testclient import TestClient

    from opm_ml.monitoring.outcomes import ingest_outcomes
    from opm_ml.synthetic import write_history
    from serving.app import create_app
    from serving.model_store import ModelStore
    from training.retrain import retrain_if_needed

    name = "shifted" if shifted else "unshifted"
    own = settings.model_copy(update={"database_url": f"sqlite:///{root / name}.db"})
    future = scenario.future(n, seed=2, shifted=shifted)
    bodies = scenario.request_bodies(scenario.forecast_rows(future))
    store = ModelStore(own)
    assert store.reload(wait=True), store.last_error
    app = create_app(own, store)
    started = time.perf_counter()
    with TestClient(app) as client:
        for i in range(0, len(bodies), 500):
            client.post("/v1/projects/assess", json=bodies[i:i + 500]).raise_for_status()
        app.state.prediction_log.flush(120)
        logged = app.state.prediction_log.stats
    served = time.perf_counter() - started
    folder = root / name
    write_history(future, folder / "future")
    ingested = ingest_outcomes(folder / "future", own.database_url)
    write_history(scenario.combine(history, future), folder / "combined")
    print(f"{name} future: {len(bodies):,} forecasts of {n:,} projects served in {served:.0f} s "
          f"({logged.written:,} logged, {sum(logged.dropped.values())} dropped); "
          f"{ingested.finished:,} finished projects ingested")
    started = time.perf_counter()
    outcome = retrain_if_needed(own, folder / "combined", specs=specs, seed=3)
    return {"settings": own, "outcome": outcome, "report": outcome.report, "shifted": shifted,
            "seconds": time.perf_counter() - started}


def print_drift(runs: dict) -> None:
    """The features with the largest PSI in either future, flagged or not."""
    rows = {}
    for shifted, run in runs.items():
        for r in run["report"]["drift"]:
            if r["judged"]:
                rows.setdefault((r["stage"], r["feature"]), {})[shifted] = r
    ranked = sorted(rows.items(), key=lambda kv: -kv[1].get(True, {"psi": 0})["psi"])
    print("\n## Feature drift against the champion's training rows (PSI / KS)\n")
    print("| stage | feature | unshifted | shifted | flagged (shifted) |\n|---|---|---|---|---|")
    for (stage, feature), by in ranked[:16]:
        cells = [f"{by[s]['psi']:.3f} / {by[s]['ks']:.3f}" if by[s]["ks"] is not None
                 else f"{by[s]['psi']:.3f} / -" for s in (False, True)]
        print(f"| {stage} | {feature} | {cells[0]} | {cells[1]} | "
              f"{'yes' if by[True]['drifted'] else 'no'} |")
    for shifted, run in runs.items():
        flagged = sorted({r["feature"] for r in run["report"]["drift"] if r["drifted"]})
        print(f"\n{'shifted' if shifted else 'unshifted'}: {len(flagged)} features flagged"
              + (f": {', '.join(flagged)}" if flagged else ""))


def print_accuracy(runs: dict) -> None:
    print("\n## Realised accuracy of v1 on each future vs its held-out MAPE\n")
    print("| model | stage | held-out MAPE | unshifted MAPE | shifted MAPE | shifted P10-P90 |"
          "\n|---|---|---|---|---|---|")
    tables = {s: {(r["family"], r["group"]): r for r in run["report"]["accuracy"]
                  if r["by"] in ("all", "stage")} for s, run in runs.items()}
    for key, shifted in tables[True].items():
        calm = tables[False].get(key)
        print(f"| {key[0]} | {key[1]} | {shifted['heldout_mape']:.2f} | "
              f"{calm['mape']:.2f} ({calm['rise']:+.0%}) | {shifted['mape']:.2f} "
              f"({shifted['rise']:+.0%}) | {shifted['coverage_80']:.2f} |")


def print_decisions(runs: dict) -> None:
    print("\n## `retrain --if-needed` decision\n")
    print("| future | model | retrain | checks crossed |\n|---|---|---|---|")
    for shifted, run in runs.items():
        for family, d in run["outcome"].decisions.items():
            crossed = "; ".join(c["check"] for c in d["checks"] if c["triggered"]) or "none"
            print(f"| {'shifted' if shifted else 'unshifted'} | {family} | "
                  f"{'yes' if d['retrain'] else 'no'} | {crossed} |")
    print(f"\nunshifted: decided in {runs[False]['seconds']:.0f} s; shifted: decided and "
          f"retrained in {runs[True]['seconds']:.0f} s")


def print_retrain(settings, run: dict) -> None:
    """The gate's verdicts, and old vs new champion on fresh shifted projects."""
    from opm_ml import mlflow_access
    from opm_ml.monitoring.outcomes import actual_values

    training = run["outcome"].training
    if training is None:
        print("\nshifted future: nothing retrained")
        return
    fresh = scenario.future(1500, seed=7, shifted=True)
    done = fresh.projects[fresh.projects["actual_finish_date"].notna()]
    rows = scenario.forecast_rows(fresh)
    rows = rows[rows["project_id"].isin(done["project_id"])].reset_index(drop=True)
    intake = rows["status_date"].isna().to_numpy()
    client = mlflow_access.client(settings)
    print("\n## After the retrain: promotion gate, and MAPE on 1,500 fresh shifted projects\n")
    print("| model | gate (held-out = newest projects, shifted) | old intake | new intake |"
          " old in flight | new in flight |\n|---|---|---|---|---|---|")
    for r in training.results:
        name = mlflow_access.registered_name(r.family, settings)
        versions = ["1"] + ([r.decision.version] if r.decision.registered else [])
        truth = actual_values(done)[r.model.spec.actual].set_axis(done["project_id"])
        actual = truth.loc[rows["project_id"]].to_numpy()
        cells = []
        for version in versions:
            model = mlflow_access.load_family_model(client, name, version,
                                                    settings.mlflow_tracking_uri)
            error = np.abs(model.predict(rows, shap=False).quantiles[:, 1] - actual) / actual
            cells.append((100 * error[intake].mean(), 100 * error[~intake].mean()))
        new = cells[-1]
        print(f"| {r.family} | {r.decision.reason} | {cells[0][0]:.2f} | {new[0]:.2f} | "
              f"{cells[0][1]:.2f} | {new[1]:.2f} |")


def hot_path(settings, n: int = 5000) -> None:
    """What `record` costs a request, and how fast the writer empties the queue behind it."""
    from opm_ml.forecasting.assessment import assess
    from opm_ml.model_set import load_model_set
    from opm_ml.monitoring.log import PredictionLog

    models = load_model_set(settings)
    rows = scenario.forecast_rows(scenario.future(20, seed=11, shifted=False)).tail(1)
    done = assess(models.family_models(), rows.reset_index(drop=True))
    refs = {f: (m.name, m.version) for f, m in models.models.items()}
    request = [0.0] * 200
    for i in range(200):  # the request itself, for scale: 3 models, SHAP, OPM metrics
        t0 = time.perf_counter()
        assess(models.family_models(), rows.reset_index(drop=True))
        request[i] = time.perf_counter() - t0
    log = PredictionLog(settings.database_url, capacity=n)
    log.start()
    costs = [0.0] * n
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        log.record("api", done.inputs, done.forecasts, refs)
        costs[i] = time.perf_counter() - t0
    log.flush(300)
    elapsed = time.perf_counter() - started
    log.stop()
    us = np.asarray(costs) * 1e6
    print("\n## Prediction log, in process\n")
    print(f"- `record()` on the request thread: p50 {np.percentile(us, 50):.1f} us, p99 "
          f"{np.percentile(us, 99):.1f} us, against {np.median(request) * 1e3:.2f} ms for the "
          "in-process assessment it logs (3 models + SHAP + OPM metrics, 1 project)")
    print(f"- writer: {log.stats.written:,} single-project records (3 families each) "
          f"committed in {elapsed:.1f} s ({log.stats.written / elapsed:,.0f} records/s, SQLite, "
          f"batched while behind); {sum(log.stats.dropped.values())} dropped")


def overhead(settings, seconds: float, rounds: int) -> None:
    """Single-row requests to three servers on the same models, log off, off and on, measured
    in turn (the order rotates every round): wall-clock latency and throughput, and the
    server's own CPU time per request (the log's whole cost, writer thread included, is CPU in
    that process). The two servers without the log show the measurement's own noise."""
    import httpx

    body = scenario.request_bodies(scenario.forecast_rows(
        scenario.future(20, seed=11, shifted=False)))[-1]  # an in-flight project
    paths = ("/v1/predictions/delay", "/v1/projects/assess")
    ports = {mode: free_port() for mode in ("off", "off-2", "on")}
    results = {(mode, path): [] for mode in ports for path in paths}
    with ExitStack() as servers:  # both up at once: each measured while the other idles
        pids = {}
        for mode, port in ports.items():
            env = api_env(settings, port, OPM_ML_DATABASE_URL=settings.database_url,
                          OPM_ML_PREDICTION_LOG="true" if mode == "on" else "false")
            pids[mode] = servers.enter_context(
                server(api_command(), env, f"http://127.0.0.1:{port}/readyz")).pid
        modes = list(ports)
        for r in range(rounds):
            for path in paths:
                for mode in modes[r % 3:] + modes[:r % 3]:
                    results[mode, path].append(measure(
                        f"http://127.0.0.1:{ports[mode]}{path}", body, seconds, pids[mode]))
        written = httpx.get(f"http://127.0.0.1:{ports['on']}/metrics").text
    print(f"\n## Prediction log overhead (single-row requests, 1 client, {rounds} x {seconds:g} s"
          " per mode, alternated)\n")
    print("| endpoint | log | p50 ms | p99 ms | req/s | server CPU ms / request |\n"
          "|---|---|---|---|---|---|")
    for path in paths:
        summary = {}
        for mode in ports:
            runs = results[mode, path]
            summary[mode] = (statistics.median(r[0] for r in runs),
                             statistics.median(r[1] for r in runs),
                             sum(r[2] for r in runs) / sum(r[3] for r in runs),
                             1e3 * sum(r[4] for r in runs) / sum(r[2] for r in runs))
            print(f"| {path} | {mode} | {summary[mode][0]:.2f} | {summary[mode][1]:.2f} | "
                  f"{summary[mode][2]:,.0f} | {summary[mode][3]:.2f} |")
        for a, b in (("on", "off"), ("on", "off-2"), ("off-2", "off")):
            change = [summary[a][i] / summary[b][i] - 1 for i in (0, 2, 3)]
            print(f"| {path} | {a} vs {b} | {change[0]:+.1%} | | {change[1]:+.1%} | "
                  f"{change[2]:+.1%} |")
    logged = [line for line in written.splitlines() if line.startswith("opm_prediction_log")
              and not line.startswith("# ")]
    print("\nlog server /metrics: " + "; ".join(logged))


if __name__ == "__main__":
    sys.exit(main())
