"""Shared set-up of the HTTP benchmarks: a temporary registry, request bodies, the served API.

`serving.py` and `load.py` start the same server the same way, so their figures compare.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opm_ml.contract import INTAKE_COLUMNS  # noqa: E402
from opm_ml.settings import Settings  # noqa: E402


def registry_settings(tmp: Path) -> Settings:
    """Settings for a registry, artifacts, history and the service database (its prediction
    log) kept in `tmp` (no `.env` read): a benchmark never writes into the project's own."""
    return Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}",
                    mlflow_artifact_root=tmp / "artifacts", data_dir=tmp / "history",
                    database_url=f"sqlite:///{tmp / 'opm-ml.db'}", registry_poll_seconds=0)


def write_history(settings: Settings, projects: int, seed: int = 42):
    """Generate `projects` into `settings.data_dir` and load them back validated (as `train`)."""
    from opm_ml import validation
    from opm_ml.synthetic import generate_history
    from opm_ml.synthetic import write_history as write

    write(generate_history(projects, seed=seed), settings.data_dir)
    return validation.load_history(settings.data_dir)


def train_champions(settings: Settings, history, seed: int = 42,
                    n_estimators: int | None = None) -> None:
    """Champion v1 of the three families in `settings`' registry, from the specs (with
    `n_estimators` trees when given), registered whatever the baseline checks say: the
    benchmarks measure speed and service behaviour, not accuracy."""
    from dataclasses import replace

    from opm_ml.forecasting import FAMILY_NAMES
    from training.pipeline import train_models
    from training.specs import load_spec

    specs = {}
    for family in FAMILY_NAMES:
        spec = load_spec(family)
        if n_estimators is not None:
            spec = spec.with_hyperparameters(n_estimators=n_estimators)
        specs[family] = replace(spec, must_beat_baselines=False)
    train_models(history, settings=settings, specs=specs, seed=seed)


def project_bodies(n: int, seed: int) -> list[dict]:
    """`n` JSON project bodies from a fresh synthetic history; every other one in flight."""
    from opm_ml.synthetic import generate_history

    history = generate_history(max(n, 50), seed=seed)
    projects = history.projects.head(n)
    last = history.snapshots.groupby("project_id").nth(1).set_index("project_id")
    intake = projects[list(INTAKE_COLUMNS)].copy()
    intake["start_date"] = intake["start_date"].dt.strftime("%Y-%m-%d")
    bodies = json.loads(intake.to_json(orient="records"))
    for i, (body, pid) in enumerate(zip(bodies, projects["project_id"])):
        body["project_id"] = pid
        if i % 2 and pid in last.index:
            s = last.loc[pid]
            body["status"] = {"status_date": s["status_date"].strftime("%Y-%m-%d"),
                              "pv": float(s["pv"]), "ev": float(s["ev"]), "ac": float(s["ac"]),
                              "percent_complete": float(s["percent_complete"])}
    return bodies


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api_command() -> list[str]:
    """Our service as `opm-ml serve` starts it (uvicorn, one process)."""
    return [sys.executable, "-c", "from serving.app import serve; serve()"]


def api_env(settings: Settings, port: int, **extra: str) -> dict[str, str]:
    """The OPM_ML_* environment serving `settings`' registry on 127.0.0.1:`port`."""
    return {"OPM_ML_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "OPM_ML_MLFLOW_ARTIFACT_ROOT": str(settings.mlflow_artifact_root),
            "OPM_ML_DATABASE_URL": settings.database_url,
            "OPM_ML_API_HOST": "127.0.0.1", "OPM_ML_API_PORT": str(port),
            "OPM_ML_REGISTRY_POLL_SECONDS": "0", "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def server(command: list[str], env: dict, ready_url: str, timeout: float = 180,
           log: Path | None = None, cwd: Path | None = None):
    """Run a server subprocess until the block ends (killed even on error); yields the Popen
    once `ready_url` answers 200. Output goes to `log` when given."""
    import httpx

    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out,
                            stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                            cwd=cwd, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited early: {' '.join(command)}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"server not ready after {timeout:.0f} s: {ready_url}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


def measure(url: str, body: dict, seconds: float, pid: int) -> tuple:
    """(p50 ms, p99 ms, requests, seconds, server CPU seconds) of one client posting `body`
    back to back."""
    import httpx
    import numpy as np

    latencies = []
    with httpx.Client(timeout=60) as client:
        for _ in range(20):  # warm-up
            client.post(url, json=body).raise_for_status()
        cpu = cpu_seconds(pid)
        started = end = time.perf_counter()
        while end - started < seconds:
            t0 = time.perf_counter()
            client.post(url, json=body).raise_for_status()
            end = time.perf_counter()
            latencies.append(end - t0)
        cpu = cpu_seconds(pid) - cpu
    ms = np.asarray(latencies) * 1e3
    return (float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(latencies),
            end - started, cpu)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
