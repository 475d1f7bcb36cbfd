"""The FastAPI app factory and `serve`: forecasts, explanations and OPM metrics over HTTP.

`create_app(settings, model_store)` builds a self-contained app: settings, model store and
Prometheus registry live on `app.state` and reach the routes through dependencies, so tests and
benchmarks can run several apps side by side. Without a store, the app loads the registry's
models in the background at start-up (/readyz says 503 until they are in).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from opm_ml.arrow_memory import use_system_pool
from opm_ml.features import contract_manifest
from opm_ml.mlflow_access import ACTIVITY_DURATION
from opm_ml.model_set import ModelSet
from opm_ml.settings import Settings, get_settings
from serving import errors, openapi
from serving.batches import BatchLane
from serving.limits import ScoringLimitMiddleware
from serving.middleware import BodySizeLimitMiddleware, ObservabilityMiddleware
from serving.model_store import ModelStore
from serving.monitoring import install as install_monitoring
from serving.observability import Metrics
from serving.routers import (
    admin,
    assess,
    dashboard,
    evm,
    health,
    intake,
    models,
    predictions,
    schedules,
)
from serving.routers import monitoring as monitoring_router
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

log = logging.getLogger("opm_ml.serving")
DESCRIPTION = """\
Delay, cost-overrun and resource-demand forecasts for projects, each with a P10/P50/P90
interval and a SHAP explanation, next to the standard earned-value and earned-schedule metrics.
Project bodies carry the fields of the dataset profile the served models were trained on (the
opm-ml data contract by default); a bad field gets a 422 naming it.
"""


def create_app(settings: Settings | None = None, model_store: ModelStore | None = None) -> FastAPI:
    """Build the API. `model_store` defaults to one loading the registry's served alias."""
    settings = settings or get_settings()
    store = model_store or ModelStore(settings)
    metrics = Metrics()

    def record_load(model_set: ModelSet | None, error: str | None) -> None:
        metrics.reloads.labels(outcome="failed" if model_set is None else "swapped").inc()
        if model_set is not None:
            served = [(m.slug, m.name, m.version, m.alias) for m in model_set.models.values()]
            if model_set.activity is not None:
                a = model_set.activity
                served.append((ACTIVITY_DURATION, a.name, a.version, a.alias))
            metrics.set_models(served)
            app.openapi_schema = None  # the project schema follows the served manifest

    def served_manifest():
        if store.current is not None:
            return store.current.manifest
        return contract_manifest() if settings.profile == "contract" else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.start()
        if app.state.prediction_log is not None:
            app.state.prediction_log.start()
        yield
        store.stop()
        if app.state.prediction_log is not None:
            app.state.prediction_log.stop()  # writes what is queued: nothing acknowledged is lost

    app = FastAPI(
        title="opm-ml",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.model_store = store
    app.state.metrics = metrics
    store.on_load(record_load)
    install_monitoring(app, settings, metrics)
    log = app.state.prediction_log
    app.state.batch_lane = BatchLane(settings.batch_threads,
                                     nullcontext if log is None else log.held)
    openapi.install(app, served_manifest)

    errors.install(app)
    for router in (predictions.router, assess.router, evm.router, models.router,
                   health.router, admin.router, intake.router, dashboard.router,
                   monitoring_router.router, schedules.router):
        app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=dashboard.STATIC), name="dashboard")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST"], allow_headers=["*"])
    app.add_middleware(ScoringLimitMiddleware, concurrency=settings.scoring_concurrency,
                       queue=settings.scoring_queue, wait_seconds=settings.scoring_queue_seconds)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)  # outermost: sees every answer
    return app


def banner(settings: Settings | None = None) -> str:
    """The docs URL and a ready-to-paste curl example (what `make run` prints at the end)."""
    settings = settings or get_settings()
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    base = f"http://{host}:{settings.api_port}"
    if settings.profile != "contract":  # its fields and an example are on /docs once loaded
        return (f"API docs: {base}/docs (profile {settings.profile}: request fields and a "
                "real example appear there once its models are loaded)")
    body = json.dumps({**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS})
    return (f"API docs: {base}/docs\n"
            f"Try: curl -s -X POST '{base}/v1/projects/assess?top_k=3' "
            f"-H 'content-type: application/json' -d '{body}'")


def serve(settings: Settings | None = None) -> None:
    """Run the API with uvicorn on `api_host:api_port` with `api_workers` processes (blocks).

    One worker: the app in this process. Several: uvicorn starts that many processes, each
    building the app from the same OPM_ML_* settings and loading the champions itself (memory
    times workers); the registry poller moves them all to a new alias within
    `registry_poll_seconds`. SIGTERM stops accepting connections, lets requests in flight finish
    (up to `shutdown_grace_seconds`), then exits; SIGHUP restarts the workers one by one.
    """
    import uvicorn

    use_system_pool()  # before the workers start: they inherit it (opm_ml.arrow_memory)
    settings = settings or get_settings()
    workers = settings.api_workers
    if workers > 1 and settings.registry_poll_seconds <= 0:
        log.warning("%d workers without registry polling (OPM_ML_REGISTRY_POLL_SECONDS=0): an "
                    "admin reload reaches one worker only, so workers may serve different "
                    "versions until restarted", workers)
    options = {"host": settings.api_host, "port": settings.api_port, "access_log": False,
               "log_config": log_config(workers),
               "timeout_graceful_shutdown": settings.shutdown_grace_seconds}
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
    else:  # each worker process imports the factory and reads the settings from OPM_ML_*
        os.environ["OPM_ML_PROFILE"] = settings.profile  # a --profile given to `opm-ml serve`
        uvicorn.run("serving.app:create_app", factory=True, workers=workers, **options)


def log_config(workers: int) -> dict:
    """uvicorn's logging, plus everyone else's lines (model loads, swaps, crashes) in every
    worker, tagged with the worker's process id when there are several."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    tag = "[%(process)d] " if workers > 1 else ""
    config["formatters"]["opm_ml"] = {"format": f"%(levelname)s:     {tag}%(name)s: %(message)s"}
    config["handlers"]["opm_ml"] = {"class": "logging.StreamHandler", "formatter": "opm_ml",
                                    "stream": "ext://sys.stderr"}
    config["root"] = {"handlers": ["opm_ml"], "level": "INFO"}
    return config
