"""All configuration in one object, read from `OPM_ML_*` environment variables (or `.env`).

Defaults give the embedded set-up: data and an SQLite MLflow store inside the project folder.
Point `OPM_ML_MLFLOW_TRACKING_URI` at a tracking server to share runs and the registry, and
`OPM_ML_DATABASE_URL` at PostgreSQL to share the service's own tables (`opm_ml.database`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An admin key anyone can guess is no key: 16 characters at least (a compose file that leaves
# OPM_ML_API_KEY empty must not open /v1/admin/* to an empty X-API-Key).
MIN_API_KEY_LENGTH = 16
# The HMAC key that signs registered models: as long as the digest it keys (256 bits in hex).
MIN_SIGNING_KEY_LENGTH = 32


class SettingsError(Exception):
    """The OPM_ML_* settings are invalid; the message names each variable, never its value."""


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
    model_prefix: str = Field("opm", description="registered model names: <prefix>-delay, ...")
    model_names: dict[str, str] = Field(
        default_factory=dict, description="family -> registered name, overriding the prefix")
    profile: str = Field("contract", description="dataset profile whose models are trained "
                         "and served: the built-in contract or a profile name")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=64, description="worker processes of `opm-ml serve`, "
                             "each loading the models")
    shutdown_grace_seconds: float = Field(
        30.0, gt=0, description="on SIGTERM, how long requests in flight may take to finish")
    # serving
    api_key: SecretStr | None = Field(
        None, description=f"key for /v1/admin/* (header X-API-Key), at least {MIN_API_KEY_LENGTH} "
                          "characters; admin endpoints off when unset (an empty value is an error)"
    )
    max_batch: int = Field(10_000, ge=1, description="most projects in one batch request")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="largest request body")
    max_schedule_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest schedule file POST /v1/schedules/* reads")
    max_schedule_activities: int = Field(
        5000, ge=1, description="most activities in an uploaded schedule (counted before parsing)")
    max_schedule_iterations: int = Field(
        10_000, ge=1, description="most Monte Carlo iterations one API request may ask for")
    max_schedule_samples: int = Field(
        20_000_000, ge=1000, description="most activities x iterations one API risk analysis "
                                         "samples (its memory: 4 bytes each, held twice)")
    batch_threads: int = Field(
        0, ge=0, description="LightGBM threads a large batch request may use; 0 = every core "
                             "while no single-project request waits, one fewer while one does")
    freeze_models: bool = Field(
        True, description="after loading models, keep the process's long-lived objects out of "
                          "the garbage collector's full passes (gc.freeze): ~0.3 s less per "
                          "large batch, no such pause on single requests")
    registry_poll_seconds: float = Field(
        60.0, ge=0, description="how often to check the registry for a new alias; 0 = never"
    )
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS")
    serve_alias: str = Field("champion", description="registry alias of the models to serve")
    # monitoring
    prediction_log: bool = Field(True, description="log every served forecast to database_url")
    prediction_log_capacity: int = Field(
        20_000, ge=1, description="forecast records the log may hold unwritten; more are dropped")
    # model integrity
    model_signing_key: SecretStr | None = Field(
        None, description=f"HMAC key, at least {MIN_SIGNING_KEY_LENGTH} characters: training "
        "signs each registered model's artifact with it, and a service or scoring run with the "
        "key set loads only versions signed with it")
    # work bounds: a burst of scoring requests waits or gets a 503, never the OOM killer
    scoring_concurrency: int = Field(4, ge=1, description="scoring requests run at once")
    scoring_queue: int = Field(32, ge=0, description="scoring requests that may wait for a turn")
    scoring_queue_seconds: float = Field(30.0, gt=0, description="longest wait for a turn")
    max_portfolio_cells: int = Field(
        2_000_000, ge=1, description="largest portfolio problem: candidates x (budget years + "
        "roles x months + dependencies + exclusions)")
    max_solver_seconds: float = Field(
        60.0, gt=0, description="solver time one portfolio call may use in total (the "
        "optimisation and its frontier re-solves)")

    @field_validator("api_key")
    @classmethod
    def _api_key_is_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        """Unset turns admin off; set, the key must resist guessing (empty is not "off")."""
        return _long_enough(key, MIN_API_KEY_LENGTH, "a key", "token_urlsafe(24)",
                            "to turn the admin endpoints off")

    @field_validator("model_signing_key")
    @classmethod
    def _signing_key_is_long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        """Unset: models are not signed or checked; set, it must resist guessing."""
        return _long_enough(key, MIN_SIGNING_KEY_LENGTH, "a signing key", "token_hex(32)",
                            "to load unsigned models")

    def signing_key(self) -> str | None:
        """The model signing key's value (`opm_ml.signing`), None when models are unsigned."""
        key = self.model_signing_key
        return None if key is None else key.get_secret_value()


def _long_enough(key: SecretStr | None, minimum: int, noun: str, maker: str,
                 unset_means: str) -> SecretStr | None:
    """`key` unless set to fewer than `minimum` characters (the message never shows it)."""
    if key is None:
        return None
    length = len(key.get_secret_value())
    if length < minimum:
        problem = "is empty" if length == 0 else f"is too short ({length} characters)"
        raise ValueError(f"{problem}: {noun} needs at least {minimum} characters (make one with "
                         f"python -c 'import secrets; print(secrets.{maker})'), or leave it "
                         f"unset {unset_means}")
    return key


def settings_error(exc: ValidationError) -> SettingsError:
    """One line naming each bad OPM_ML_* variable and its problem (values are not echoed)."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = "OPM_ML_" + "_".join(str(part) for part in error["loc"]).upper()
        if error["type"] == "value_error":  # our validators: "is empty: ..."
            problems.append(f"{name} {error['msg'].removeprefix('Value error, ')}")
        else:  # pydantic's own: "Input should be a valid integer, ..."
            problems.append(f"{name}: {error['msg']}")
    return SettingsError("; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own `Settings(...)`).

    Raises SettingsError (one line per the CLI's rule, no stack trace) for invalid OPM_ML_*.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise settings_error(exc) from None
