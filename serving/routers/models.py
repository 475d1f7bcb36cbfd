"""GET /v1/models: what is being served, from where, trained when, how well, on what data."""

from __future__ import annotations

from fastapi import APIRouter

from serving import service
from serving.dependencies import StoreDep
from serving.schemas import ErrorResponse, ModelsInfo

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsInfo, responses={503: {"model": ErrorResponse}},
            summary="The served models with version, alias, training metrics and lineage")
def list_models(store: StoreDep) -> dict:
    return service.models_info(store.require())
