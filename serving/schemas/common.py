"""Bodies every area shares: errors, health, which model answered, what is being served."""

from __future__ import annotations

from typing import Literal

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def request_config(**options: Any) -> ConfigDict:
    """The configuration of every request body: unknown fields are errors, and no number may
    be NaN or +-Infinity (Python's JSON parser accepts both; the models and the JSON encoder
    do not, so they must never get past the 422)."""
    return ConfigDict(extra="forbid", allow_inf_nan=False, **options)


class Problem(BaseModel):
    """One thing wrong with a request."""

    field: str = Field(description="path to the field, e.g. body[3].status.ev")
    problem: str = Field(description="what is wrong with it")
    type: str = Field(description="machine-readable error type")


class ErrorResponse(BaseModel):
    """Every error the API returns: a stable code, a message and, for 422, the problems."""

    error: str = Field(description="validation_error, payload_too_large, models_not_ready, ...")
    message: str
    problems: list[Problem] = Field(default_factory=list)


class Health(BaseModel):
    """Liveness (always ok while the process serves) or readiness (models loaded)."""

    status: Literal["ok", "ready", "not_ready"]
    detail: str | None = None
    models: dict[str, str] = Field(default_factory=dict, description="task -> served version")
    missing: dict[str, str] = Field(default_factory=dict,
                                    description="task -> why its model is not served")


class ModelRef(BaseModel):
    """Which registered model answered."""

    name: str
    version: str
    alias: str


class ServedModelInfo(BaseModel):
    """A served model: registry identity, when it was trained, how well, on what data."""

    task: str
    name: str
    version: str
    alias: str
    run_id: str | None
    trained_at: str | None = Field(description="end of the training run (UTC, ISO 8601)")
    metrics: dict[str, float] = Field(description="training-run metrics (held-out evaluation)")
    lineage_digest: str | None = Field(
        description="sha256 over the run's logged input datasets (name, context, digest)"
    )
    datasets: list[dict[str, str]] = Field(default_factory=list)
    profile: str = Field(description="the dataset profile the model was trained on")
    profile_digest: str = Field(description="digest of that profile's definition")
    notes: list[str] = Field(default_factory=list,
                             description="what training decided about the data")


class ModelsInfo(BaseModel):
    loaded_at: str
    models: list[ServedModelInfo]
