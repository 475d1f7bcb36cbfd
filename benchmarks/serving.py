"""Serving speed, side by side, printed as one Markdown table (run by hand, not a test).

    python benchmarks/serving.py                      # trains default-spec models in a temp dir
    python benchmarks/serving.py --registry sqlite:///mlflow.db   # the models `make run` made
    python benchmarks/serving.py --compare 7bfd8e4    # also that commit's own benchmark, then
                                                      # both side by side (issue 11)

Rows: (1) the floor, raw LightGBM predict + TreeSHAP of one project in-process (1c: the three
P50 models); (2) our in-process explained assessment of one project (three models + SHAP + OPM
metrics; 2c: its ratio to 1c, timed interleaved; 2d: the ratio of its estimators alone, every
LightGBM call it makes, to 1c); (3) our HTTP service vs `mlflow models serve`
on the same delay model, single-row requests at concurrency 1 and 16 over loopback for a fixed
duration, the two servers loaded in alternating rounds (3b: the median ratio of a round's
pair); (4) 10,000 projects assessed with explanations in one call, in-process and over HTTP
in each answer format, against 4a, the TreeSHAP floor of the three P50 models; (5) single
requests while a large batch is being scored. Load generator and servers share the machine's
cores, as they would on one small host. Labels 1-4b are the pre-refactor benchmark's, so
`--compare` can line them up.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import threading
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

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

from opm_ml.arrow_memory import use_system_pool
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
    parser.add_argument("--compare", metavar="REF",
                        help="also run the benchmark of commit REF (its own code, package and "
                             "models) first, and print both side by side")
    parser.add_argument("--compare-registry", metavar="URI",
                        help="REF's champion models (trained by REF's code) to reuse")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --compare: old and new alternately this many times each; "
                             "the side-by-side table gives each figure's range")
    args = parser.parse_args()
    use_system_pool()  # as `opm-ml serve` starts the server: the in-process rows use its allocator
    with tempfile.TemporaryDirectory(prefix="opm-bench-") as tmp:
        settings = _settings(args, Path(tmp))
        rows = project_bodies(args.batch, seed=5)
        from opm_ml.model_set import load_model_set

        model_set = load_model_set(settings)
        olds, tables = [], []
        for _ in range(args.rounds if args.compare else 1):
            if args.compare:
                olds.append(_old_run(args, Path(tmp)))
            tables.append(_measure(args, settings, model_set, rows))
            print(tables[-1].markdown(), flush=True)
        if args.compare:
            from compare import parse_markdown, side_by_side

            print(f"\n### {args.compare} (before) and this tree, same machine, same run\n")
            print(side_by_side([parse_markdown(o) for o in olds], [t.rows for t in tables],
                               args.compare))


def _measure(args, settings: Settings, model_set, rows: list[dict]) -> Table:
    """Every row of the table, once."""
    table = Table()
    _machine(table, settings)
    _floor(table, model_set, rows, args.repeats)
    _in_process(table, model_set, rows, args.repeats)
    _http(table, settings, rows, args.seconds)
    _batch(table, settings, model_set, rows)
    return table


def _old_run(args, tmp: Path) -> str:
    """The old commit's benchmark on its own models, same options; its Markdown output."""
    from compare import checkout, old_python, train_old

    root = checkout(args.compare)
    print(f"running {args.compare}'s benchmark from {root} ...", file=sys.stderr, flush=True)
    if not args.compare_registry:
        args.compare_registry = train_old(root, tmp / "old", args.train_projects)
    return old_python(root, ["benchmarks/serving.py", "--registry", args.compare_registry,
                             "--seconds", str(args.seconds),
                             "--repeats", str(args.repeats), "--batch", str(args.batch)])


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
                        database_url=f"sqlite:///{tmp / 'opm-ml.db'}", registry_poll_seconds=0)
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


def _interleaved(fns: list, repeats: int) -> list[list[float]]:
    """Times of each function, called in turn, so a busy moment of the machine hits all."""
    for fn in fns:
        _timed(fn, min(100, repeats))
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


def _inputs(model_set, bodies: list[dict]):
    """Request bodies as the API reads them: parsed, checked, as `ProjectInputs`."""
    from serving.requests import project_inputs

    return project_inputs(bodies, model_set.manifest, 10**9)


def _median_booster(model, stage: str):
    """The LightGBM booster of a served family's P50 model at `stage`."""
    return model.stages[stage].regressor_.models_[1].booster_


def _stage_work(model_set, inputs, stage: str | None = None) -> list:
    """(family model, stage, its estimator, feature matrix) of every family and stage present
    in `inputs`."""
    from opm_ml.features import feature_matrix

    work = []
    for served in model_set.models.values():
        model = served.model
        for name, estimator in model.stages.items():
            if (stage is None or name == stage) and len(inputs.rows_of(name)):
                X = feature_matrix(inputs.features(name, model.manifest),
                                   estimator.feature_names_)
                work.append((model, name, estimator, X))
    return work


def _p50_work(work: list) -> list:
    """(P50 booster, feature matrix) of each entry of `_stage_work`."""
    return [(_median_booster(model, name), X) for model, name, _, X in work]


def _floor(table: Table, model_set, rows: list[dict], repeats: int) -> None:
    """Raw LightGBM P50 predict + TreeSHAP of one in-flight project (delay model)."""
    import shap

    inputs = _inputs(model_set, [rows[1]])
    booster, X = _p50_work(_stage_work(model_set, inputs, "inflight"))[0]
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


def _in_process(table: Table, model_set, rows: list[dict], repeats: int) -> None:
    """Our explained assessment of one project: 3 models + SHAP + OPM metrics, JSON-ready."""
    import orjson

    from opm_ml.forecasting.assessment import assess
    from opm_ml.forecasting.inputs import ProjectInputs
    from serving.requests import parse_items
    from serving.schemas.projects import project_request

    models, manifest = model_set.family_models(), model_set.manifest
    request = project_request(manifest)
    for label, body in (("intake", rows[0]), ("in flight, with OPM metrics", rows[1])):
        item = parse_items([body], request, True)

        def ours():
            assess(models, ProjectInputs.from_requests(item, manifest)).to_json(None)

        table.add("2. in-process assessment, 1 project (3 models + SHAP)", label,
                  _percentiles(_timed(ours, repeats)))

        def end_to_end():
            orjson.dumps(assess(models, _inputs(model_set, [body])).to_json(None))

        table.add("2b. same incl. request validation and JSON encoding", label,
                  _percentiles(_timed(end_to_end, repeats)))
        work = _stage_work(model_set, _inputs(model_set, [body]))
        floor = _p50_work(work)

        def three_floors():
            for booster, X in floor:
                booster.predict(X, num_threads=1)
                booster.predict(X, pred_contrib=True, num_threads=1)

        def estimators_only():
            for _, _, estimator, X in work:
                estimator.predict_arrays(X, True)

        times = _interleaved([three_floors, ours, estimators_only], repeats)
        floor_ms, ours_ms, models_ms = (np.median(t) * 1e3 for t in times)
        table.add("1c. floor: the 3 P50 models' predict + TreeSHAP, 1 project", label,
                  _percentiles(times[0]))
        table.add("2c. in-process assessment / 1c (interleaved)", label,
                  f"{ours_ms / floor_ms:.2f}x the floor ({ours_ms:.2f} ms; target <= 1.3x)")
        table.add("2d. its estimators alone / 1c: every LightGBM call of 2c (P50 TreeSHAP, "
                  "P10/P90, late classifier, role shares), features prebuilt", label,
                  f"{models_ms / floor_ms:.2f}x the floor ({models_ms:.2f} ms); what 2c "
                  f"adds to them: {ours_ms - models_ms:.2f} ms")


def _load(url: str, body: bytes, concurrency: int, seconds: float) -> tuple[float, list]:
    """Requests/s and latencies of `concurrency` keep-alive clients posting `body` for `seconds`.

    A thread per client on the standard library's `http.client`: the load shares the machine's
    cores with the server, and httpx's async client took more of them per request (same server,
    one client, 2026-12-02: 138 req/s under httpx, 173 under this); both servers get this one.
    """
    target = urlsplit(url)
    latencies: list[float] = []
    failures: list[int] = []
    end = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            while time.perf_counter() < end:
                start = time.perf_counter()
                connection.request("POST", target.path, body,
                                   {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                latencies.append(time.perf_counter() - start)  # list.append: thread-safe
                if response.status != 200:
                    failures.append(response.status)
        finally:
            connection.close()

    clients = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests against {url} "
                           f"(statuses {sorted(set(failures))})")
    return len(latencies) / elapsed, latencies


def _http(table: Table, settings: Settings, rows: list[dict], seconds: float) -> None:
    """Our service vs `mlflow models serve`, same delay model, one in-flight project/request;
    both servers up at once and loaded in turn, `seconds` each split into alternating rounds
    (this machine's speed drifts by a fifth within minutes: back-to-back runs measured that)."""
    from opm_ml.mlflow_access import registered_name

    ours_port, mlflow_port = free_port(), free_port()
    raw = {**{k: v for k, v in rows[1].items() if k not in ("status", "project_id")},
           **rows[1]["status"]}
    frame = pd.DataFrame([raw])
    split = json.loads(frame.to_json(orient="split", index=False))
    theirs = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
              f"models:/{registered_name('delay', settings)}@{settings.serve_alias}",
              "--env-manager", "local",
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
    rounds = 5  # alternating: both servers meet the same drift of this shared machine
    with ExitStack() as running:
        for _, command, env, ready, _, _ in targets:
            running.enter_context(server(command, env, ready))
        for concurrency in (1, 16):
            rates: dict[str, list[float]] = {label: [] for label, *_ in targets}
            latencies: dict[str, list[float]] = {label: [] for label, *_ in targets}
            for *_, url, body in targets:
                _load(url, body, concurrency, min(2.0, seconds))  # warm-up
            for _ in range(rounds):
                for label, *_, url, body in targets:
                    rate, times = _load(url, body, concurrency, seconds / rounds)
                    rates[label].append(rate)
                    latencies[label] += times
            for label, *_ in targets:
                table.add(f"3. HTTP single-row, {label}",
                          f"concurrency {concurrency}, {seconds:g} s, 1 worker",
                          f"{np.median(rates[label]):,.0f} req/s (median of {rounds} rounds); "
                          f"{_percentiles(latencies[label])}")
            ratios = np.divide(*(rates[label] for label, *_ in targets))
            table.add("3b. opm-ml / mlflow models serve", f"concurrency {concurrency}",
                      f"{np.median(ratios):.1f}x the requests/s (median of {rounds} "
                      f"alternating rounds; {ratios.min():.1f}-{ratios.max():.1f}x)")


class BatchFloor:
    """4a, the batch's own floor (only the three P50 boosters' TreeSHAP, features prebuilt),
    measured again after each batch row: a row's ratio is to the mean of the floors just
    before and just after it, since this machine's speed drifts by a fifth within minutes."""

    def __init__(self, model_set, inputs):
        self.work, self.n = _p50_work(_stage_work(model_set, inputs)), inputs.n
        self.rates = [self._measure()]

    def _measure(self) -> float:
        started = time.perf_counter()
        for booster, X in self.work:
            booster.predict(X, pred_contrib=True)
        return self.n / (time.perf_counter() - started)

    def ratio(self, rate: float) -> float:
        """`rate` (rows/s, just measured) over the floor around it."""
        self.rates.append(self._measure())
        return rate / np.mean(self.rates[-2:])

    def row(self) -> tuple[str, str, str]:
        rates = self.rates
        return (f"4a. batch floor: TreeSHAP of the 3 P50 models only, {self.n:,} projects",
                f"LightGBM pred_contrib, all cores, before and after each row 4-4d "
                f"({len(rates)} runs)",
                f"{np.median(rates):,.0f} rows/s (median; {min(rates):,.0f}-{max(rates):,.0f})")


def _batch(table: Table, settings: Settings, model_set, rows: list[dict]) -> None:
    """10,000 projects with explanations in one call: in-process, then one HTTP request."""
    import orjson

    from opm_ml.forecasting.assessment import assess
    from serving.formats import ARROW, table_bytes

    payload = json.dumps(rows).encode()
    n = len(rows)
    models = model_set.family_models()
    floor = BatchFloor(model_set, _inputs(model_set, json.loads(payload)))
    floor_at = len(table.rows)  # its row goes first, once every run is in
    for top_k in (None, 5):
        started = time.perf_counter()
        inputs = _inputs(model_set, json.loads(payload))  # as FastAPI hands the body over
        parsed = time.perf_counter()
        assessment = assess(models, inputs)
        assessed = time.perf_counter()
        encoded = orjson.dumps(assessment.to_json(top_k))
        done = time.perf_counter()
        shown = "all features" if top_k is None else f"top_k={top_k}"
        table.add(f"4. batch in-process, {n:,} projects, 3 models + SHAP ({shown})",
                  f"validate {parsed - started:.2f} s, assess {assessed - parsed:.2f} s, "
                  f"JSON {done - assessed:.2f} s ({len(encoded) / 1e6:,.0f} MB)",
                  f"{n / (done - started):,.0f} rows/s ({n / (assessed - parsed):,.0f} rows/s "
                  f"assess only; {floor.ratio(n / (done - started)):.2f} of 4a)")
    answer = assessment.to_json(None)
    seconds = {}
    for name, encode in (("json", json.dumps), ("orjson", orjson.dumps)):
        started = time.perf_counter()
        encode(answer)
        seconds[name] = time.perf_counter() - started
    table.add(f"4e. JSON encoding of the {n:,}-project answer (all features)",
              "standard library json.dumps vs orjson.dumps",
              f"{seconds['json']:.2f} s vs {seconds['orjson']:.2f} s "
              f"({seconds['json'] / seconds['orjson']:.0f}x)")
    del answer
    started = time.perf_counter()
    assessment = assess(models, _inputs(model_set, json.loads(payload)))
    body = table_bytes(assessment.to_frame(True, False), ARROW)
    elapsed = time.perf_counter() - started
    table.add(f"4c. batch in-process to Arrow IPC, {n:,} projects (all features)",
              f"validate + assess + table ({len(body) / n / 1e3:.1f} KB per project)",
              f"{n / elapsed:,.0f} rows/s ({floor.ratio(n / elapsed):.2f} of 4a; target >= 0.85)")
    port = free_port()
    with server(api_command(), api_env(settings, port), f"http://127.0.0.1:{port}/readyz"):
        url = f"http://127.0.0.1:{port}/v1/projects/assess"
        _http_batches(table, url, payload, n, floor)
        table.rows.insert(floor_at, floor.row())
        _single_during_batch(table, url, rows, payload)


def _http_batches(table: Table, url: str, payload: bytes, n: int, floor: BatchFloor) -> None:
    """One request of `n` projects per format (JSON rows keep the old labels)."""
    import httpx

    from serving.formats import ARROW, JSON, NDJSON, PARQUET

    for media, top_k in ((JSON, None), (JSON, 5), (ARROW, None), (ARROW, 5), (PARQUET, 5),
                         (NDJSON, None)):
        params = {} if top_k is None else {"top_k": top_k}
        headers = {"content-type": "application/json", "accept": media}
        started = time.perf_counter()
        first = None
        size = 0
        with httpx.stream("POST", url, content=payload, params=params, headers=headers,
                          timeout=600) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                first = first or time.perf_counter() - started
                size += len(chunk)
        elapsed = time.perf_counter() - started
        shown = "all features" if top_k is None else f"top_k={top_k}"
        rate = f"{n / elapsed:,.0f} rows/s ({elapsed:.1f} s)"
        if media == JSON:
            table.add(f"4b. batch over HTTP, {n:,} projects ({shown})",
                      f"request {len(payload) / 1e6:.1f} MB, response {size / 1e6:,.0f} MB",
                      f"{rate}; {floor.ratio(n / elapsed):.2f} of 4a")
            continue
        kind = media.rsplit("/", 1)[1]
        table.add(f"4d. batch over HTTP as {kind}, {n:,} projects ({shown})",
                  f"response {size / 1e6:,.1f} MB = {size / n / 1e3:.2f} KB per project; "
                  f"first bytes after {first:.1f} s",
                  f"{rate}; {floor.ratio(n / elapsed):.2f} of 4a (target >= 0.75)")


def _single_during_batch(table: Table, url: str, rows: list[dict], payload: bytes) -> None:
    """Single in-flight assessments, idle and while the same server scores a large batch."""
    import httpx

    body = json.dumps(rows[1]).encode()
    headers = {"content-type": "application/json"}

    def singles(stop) -> list[float]:
        times = []
        with httpx.Client(timeout=60) as client:
            while (not stop() or not times) and len(times) < 2000:
                start = time.perf_counter()
                client.post(url, content=body, headers=headers).raise_for_status()
                times.append(time.perf_counter() - start)
        return times

    deadline = time.perf_counter() + 5
    idle = singles(lambda: time.perf_counter() > deadline)
    done = threading.Event()

    def batch():
        httpx.post(url, content=payload, headers={**headers, "accept": "application/x-ndjson"},
                   timeout=600).raise_for_status()
        done.set()

    worker = threading.Thread(target=batch)
    worker.start()
    time.sleep(0.2)  # the batch has been received and is being scored
    busy = singles(done.is_set)
    worker.join()
    table.add("5. single in-flight assessments over HTTP while a batch is scored",
              f"idle: {len(idle):,} requests", _percentiles(idle))
    table.add("5. single in-flight assessments over HTTP while a batch is scored",
              f"during a {len(rows):,}-project batch: {len(busy):,} requests",
              _percentiles(busy))


if __name__ == "__main__":
    main()
