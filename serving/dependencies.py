"""FastAPI dependencies: settings, model store and metrics come from `app.state`, not globals.

`create_app` puts them there, so tests and benchmarks build apps with their own settings and
model store side by side.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from opm_ml.settings import MIN_API_KEY_LENGTH, Settings
from serving.model_store import ModelStore
from serving.observability import Metrics


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> ModelStore:
    return request.app.state.model_store


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    api_key: Annotated[str | None, Header(alias="X-API-Key", description="admin key")] = None,
) -> None:
    """Admin guard: off unless `OPM_ML_API_KEY` is set; constant-time key comparison."""
    expected = "" if settings.api_key is None else settings.api_key.get_secret_value()
    # Settings refuse a short key; this also holds for settings built without validation
    # (model_copy), so an empty key can never match an empty header.
    if len(expected) < MIN_API_KEY_LENGTH:
        raise HTTPException(403, "admin endpoints are disabled: set OPM_ML_API_KEY (at least "
                                 f"{MIN_API_KEY_LENGTH} characters) to enable them")
    if api_key is None or not hmac.compare_digest(api_key.encode(), expected.encode()):
        raise HTTPException(401, "missing or wrong X-API-Key header",
                            headers={"WWW-Authenticate": "X-API-Key"})


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
