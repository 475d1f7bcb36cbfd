"""Serving speed, side by side, printed as one Markdown table (run by hand, not a test).

    python benchmarks/serving.py                      # trains default-spec models in a temp dir
    python benchmarks/serving.py --registry sqlite:///mlflow.db   # the models `make run` made

Rows: (1) the floor, raw LightGBM predict + TreeSHAP of one project in-process; (2) our
in-process explained assessment of one project (three models + SHAP + OPM metrics); (3) our
HTTP service vs `mlflow models serve` on the same delay model, single-row requests at
concurrency 1 and 16 over loopback for a fixed duration; (4) 10,000 projects assessed with
explanations in one call, in-process and over HTTP. Load generator and servers share the
machine's cores, as they would on one small host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from harness import (
    ROOT,
    api_command,
    api_env,
    free_port,
    project_bodies,
    registry_settings,
    server,
    train_champions,
    write_history,
)

from opm_ml.settings import Settings

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", help="MLflow tracking URI with champion models")
    parser.add_argument("--train-projects", type=int, default=5000,
                        help="history size when training fresh models (default spec)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration per HTTP run")
    parser.add_argument("--repeats", type=int, default=2000, help="in-process repetitions")
    parser.add_argument("--batch", type=int, default=10_000, help="projects in the batch rows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opm-bench-") as tmp:
        settings = _settings(args, Path(tmp))
        rows = project_bodies(args.batch, seed=5)
        table = Table()
        _machine(table, settings)
        from serving.loading import load_model_set

        model_set = load_model_set(settings)
        _floor(table, model_set, rows, args.repeats)
        _in_process(table, model_set, rows, args.repeats)
        _http(table, settings, rows, args.seconds)
        _batch(table, settings, model_set, rows)
        print(table.markdown())


class Table:
    """Rows of (measurement, setting, result) plus notes, printed as Markdown."""

    def __init__(self):
        self.rows: list[tuple[str, str, str]] = []
        self.notes: list[str] = []

    def add(self, what: str, setting: str, result: str) -> None:
        self.rows.append((what, setting, result))
        print(f"  {what} | {setting} | {result}", file=sys.stderr, flush=True)

    def markdown(self) -> str:
        lines = ["| measurement | setting | result |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(lines + [""] + [f"- {n}" for n in self.notes])


def _settings(args, tmp: Path) -> Settings:
    """The registry to benchmark: given, or default-spec models trained into `tmp`."""
    if args.registry:
        return Settings(_env_file=None, mlflow_tracking_uri=args.registry,
                        registry_poll_seconds=0)
    settings = registry_settings(tmp)
    print(f"training default-spec models on {args.train_projects:,} projects ...",
          file=sys.stderr, flush=True)
    train_champions(settings, write_history(settings, args.train_projects))
    return settings


def _machine(table: Table, settings: Settings) -> None:
    import lightgbm

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    table.notes.append(
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, LightGBM {lightgbm.__version__}"
    )


def _percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms"


def _timed(fn, repeats: int) -> list[float]:
    for _ in range(min(100, repeats)):  # warm-up: caches, allocator, branch predictors
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _floor(table: Table, model_set, rows: list[dict], repeats: int) -> None:
    """Raw LightGBM P50 predict + TreeSHAP of one in-flight project (delay model)."""
    import shap

    from opm_ml.features import feature_matrix
    from serving.rows import ProjectRows
    from serving.schemas import ProjectRequest

    predictor = model_set.models["delay"].predictor
    parsed = ProjectRows.from_requests([ProjectRequest.model_validate(rows[1])])
    X = feature_matrix(parsed.features["inflight"], predictor.features["inflight"])
    booster = _median_booster(predictor, "inflight")
    trees = booster.num_trees()

    def raw():
        booster.predict(X, num_threads=1)
        booster.predict(X, pred_contrib=True, num_threads=1)

    table.add("1. floor: LightGBM predict + TreeSHAP (pred_contrib), 1 project",
              f"delay P50 model, {trees} trees, {X.shape[1]} features",
              _percentiles(_timed(raw, repeats)))
    explainer = shap.TreeExplainer(booster)  # cached: built once

    def with_shap_library():
        booster.predict(X, num_threads=1)
        explainer.shap_values(X)

    table.add("1b. same with shap.TreeExplainer (cached)", "delay P50 model",
              _percentiles(_timed(with_shap_library, max(200, repeats // 4))))


def _median_booster(predictor, stage: str):
    """The LightGBM booster of a served family's P50 model at `stage`."""
    return predictor.model.stages[stage].named_steps["model"].regressor_.models_[1].booster_


def _in_process(table: Table, model_set, rows: list[dict], repeats: int) -> None:
    """Our explained assessment of one project: parse, 3 models + SHAP + OPM metrics, JSON."""
    from serving import service
    from serving.schemas import ProjectRequest

    for label, body in (("intake", rows[0]), ("in flight, with OPM metrics", rows[1])):
        item = ProjectRequest.model_validate(body)
        table.add("2. in-process assessment, 1 project (3 models + SHAP)", label,
                  _percentiles(_timed(lambda: service.assess(model_set, [item], None), repeats)))

        def end_to_end():
            parsed = ProjectRequest.model_validate(body)
            json.dumps(service.assess(model_set, [parsed], None))

        table.add("2b. same incl. request validation and JSON encoding", label,
                  _percentiles(_timed(end_to_end, repeats)))


async def _load(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[float, list]:
    """Requests/s and latencies of `concurrency` clients posting `body` for `seconds`."""
    import httpx

    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        end = time.perf_counter() + seconds

        async def worker():
            nonlocal failures
            while time.perf_counter() < end:
                start = time.perf_counter()
                response = await client.post(url, content=body,
                                             headers={"content-type": "application/json"})
                if response.status_code != 200:
                    failures += 1
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} failed requests against {url}")
    return len(latencies) / elapsed, latencies


def _http(table: Table, settings: Settings, rows: list[dict], seconds: float) -> None:
    """Our service vs `mlflow models serve`, same delay model, one in-flight project/request."""
    from opm_ml.model_loading import to_model_input

    ours_port, mlflow_port = free_port(), free_port()
    frame = pd.DataFrame([{**{k: v for k, v in rows[1].items() if k != "status"},
                           **rows[1]["status"]}])
    split = json.loads(to_model_input(frame).to_json(orient="split", index=False))
    theirs = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
              f"models:/{settings.model_delay}@{settings.serve_alias}", "--env-manager", "local",
              "-p", str(mlflow_port), "-w", "1"]
    targets = [
        ("opm-ml API (forecast + interval + SHAP)", api_command(), api_env(settings, ours_port),
         f"http://127.0.0.1:{ours_port}/readyz",
         f"http://127.0.0.1:{ours_port}/v1/predictions/delay",
         json.dumps(rows[1]).encode()),
        ("mlflow models serve (pyfunc: forecast + SHAP)", theirs,
         # mlflow execs `uvicorn` by name: the venv's bin must be on PATH.
         {"MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "PYTHONPATH": str(ROOT),
          "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
         f"http://127.0.0.1:{mlflow_port}/ping", f"http://127.0.0.1:{mlflow_port}/invocations",
         json.dumps({"dataframe_split": split}).encode()),
    ]
    rates = {}
    for label, command, env, ready, url, body in targets:
        with server(command, env, ready):
            for concurrency in (1, 16):
                asyncio.run(_load(url, body, concurrency, min(2.0, seconds)))  # warm-up
                rate, latencies = asyncio.run(_load(url, body, concurrency, seconds))
                rates[label, concurrency] = rate
                table.add(f"3. HTTP single-row, {label}",
                          f"concurrency {concurrency}, {seconds:g} s, 1 worker",
                          f"{rate:,.0f} req/s; {_percentiles(latencies)}")
    for concurrency in (1, 16):
        ratio = rates[targets[0][0], concurrency] / rates[targets[1][0], concurrency]
        table.add("3b. opm-ml / mlflow models serve", f"concurrency {concurrency}",
                  f"{ratio:.1f}x the requests/s")


def _batch_floor(table: Table, model_set, items) -> None:
    """The batch's own floor: only the three P50 boosters' TreeSHAP, features prebuilt."""
    from opm_ml.features import feature_matrix
    from serving.rows import ProjectRows

    parsed = ProjectRows.from_requests(items)
    work = []
    for model in model_set.models.values():
        for stage, names in model.predictor.features.items():
            X = feature_matrix(parsed.features[stage], names)
            work.append((_median_booster(model.predictor, stage), X))
    started = time.perf_counter()
    for booster, X in work:
        booster.predict(X, pred_contrib=True)
    elapsed = time.perf_counter() - started
    table.add(f"4a. batch floor: TreeSHAP of the 3 P50 models only, {parsed.n:,} projects",
              "LightGBM pred_contrib, all cores", f"{parsed.n / elapsed:,.0f} rows/s "
              f"({elapsed:.1f} s)")


def _batch(table: Table, settings: Settings, model_set, rows: list[dict]) -> None:
    """10,000 projects with explanations in one call: in-process, then one HTTP request."""
    import httpx

    from serving import service
    from serving.schemas import ProjectBody
    from pydantic import TypeAdapter

    adapter = TypeAdapter(ProjectBody)
    payload = json.dumps(rows).encode()
    n = len(rows)
    _batch_floor(table, model_set, adapter.validate_json(payload))
    for top_k in (None, 5):
        started = time.perf_counter()
        items = adapter.validate_json(payload)
        parsed = time.perf_counter()
        result = service.assess(model_set, items, top_k)
        assessed = time.perf_counter()
        encoded = json.dumps(result)
        done = time.perf_counter()
        shown = "all features" if top_k is None else f"top_k={top_k}"
        table.add(f"4. batch in-process, {n:,} projects, 3 models + SHAP ({shown})",
                  f"validate {parsed - started:.2f} s, assess {assessed - parsed:.2f} s, "
                  f"JSON {done - assessed:.2f} s ({len(encoded) / 1e6:,.0f} MB)",
                  f"{n / (done - started):,.0f} rows/s ({n / (assessed - parsed):,.0f} rows/s "
                  "assess only)")
    port = free_port()
    with server(api_command(), api_env(settings, port), f"http://127.0.0.1:{port}/readyz"):
        for top_k in (None, 5):
            params = {} if top_k is None else {"top_k": top_k}
            started = time.perf_counter()
            response = httpx.post(f"http://127.0.0.1:{port}/v1/projects/assess", content=payload,
                                  params=params, headers={"content-type": "application/json"},
                                  timeout=600)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            shown = "all features" if top_k is None else f"top_k={top_k}"
            table.add(f"4b. batch over HTTP, {n:,} projects ({shown})",
                      f"request {len(payload) / 1e6:.1f} MB, response "
                      f"{len(response.content) / 1e6:,.0f} MB",
                      f"{n / elapsed:,.0f} rows/s ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
