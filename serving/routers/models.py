"""GET /v1/models: what is being served, from where, trained when, how well, on what data."""

from __future__ import annotations

from fastapi import APIRouter

from serving.dependencies import StoreDep
from serving.schemas.common import ErrorResponse, ModelsInfo

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsInfo, responses={503: {"model": ErrorResponse}},
            summary="The served models with version, alias, training metrics and lineage")
def list_models(store: StoreDep) -> dict:
    """Registry identity, training time, metrics, lineage and profile of each served model."""
    model_set = store.require()
    return {
        "loaded_at": model_set.loaded_at.isoformat(timespec="seconds"),
        "models": [
            {"task": m.slug, **m.ref(), "run_id": m.run_id, "trained_at": m.trained_at,
             "metrics": dict(m.metrics), "lineage_digest": m.lineage_digest,
             "datasets": list(m.datasets), "profile": m.model.manifest.profile,
             "profile_digest": m.model.manifest.profile_digest, "notes": list(m.model.notes)}
            for m in model_set.models.values()
        ],
    }
