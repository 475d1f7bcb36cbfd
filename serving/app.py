"""The FastAPI app factory and `serve`: forecasts, explanations and OPM metrics over HTTP.

`create_app(settings, model_store)` builds a self-contained app: settings, model store and
Prometheus registry live on `app.state` and reach the routes through dependencies, so tests and
benchmarks can run several apps side by side. Without a store, the app loads the registry's
models in the background at start-up (/readyz says 503 until they are in).
"""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from opm_ml.features import contract_manifest
from opm_ml.mlflow_access import ACTIVITY_DURATION
from opm_ml.model_set import ModelSet
from opm_ml.settings import Settings, get_settings
from serving import errors, openapi
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
    """Run the API with uvicorn on `settings.api_host:api_port` (blocks until stopped).

    One process: the model set lives in memory once, and LightGBM uses the cores for batches.
    """
    import uvicorn

    settings = settings or get_settings()
    # Our own log lines (model loads, swaps, crashes) next to uvicorn's.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                log_level="info", access_log=False)
