"""All configuration in one object, read from `OPM_ML_*` environment variables (or `.env`).

Defaults give the embedded set-up: data and an SQLite MLflow store inside the project folder.
Point `OPM_ML_MLFLOW_TRACKING_URI` at a tracking server to share runs and the registry, and
`OPM_ML_DATABASE_URL` at PostgreSQL to share the service's own tables (`opm_ml.database`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime settings; every field can be overridden with `OPM_ML_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="OPM_ML_", env_file=".env", extra="ignore")

    data_dir: Path = Field(PROJECT_ROOT / "var" / "history", description="generated history")
    default_projects: int = Field(5000, ge=10, description="projects `make run` generates")
    default_seed: int = 42
    mlflow_tracking_uri: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}", description="embedded SQLite store by default"
    )
    mlflow_artifact_root: Path = Field(PROJECT_ROOT / "mlartifacts")
    mlflow_experiment: str = "opm-ml"
    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'var' / 'opm-ml.db'}",
        description="the service's own database (intake pipeline; migrated at first use)",
    )
    model_delay: str = "opm-delay"
    model_overrun: str = "opm-overrun"
    model_resource: str = "opm-resource-demand"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # serving
    api_key: SecretStr | None = Field(
        None, description="key for /v1/admin/* (header X-API-Key); admin endpoints off when unset"
    )
    max_batch: int = Field(10_000, ge=1, description="most projects in one batch request")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest request body")
    registry_poll_seconds: float = Field(
        60.0, ge=0, description="how often to check the registry for a new alias; 0 = never"
    )
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS")
    serve_alias: str = Field("champion", description="registry alias of the models to serve")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own `Settings(...)`)."""
    return Settings()
