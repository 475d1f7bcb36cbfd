"""What several test modules share: where the real data lives, a wide CLI terminal, and
settings on a throwaway model registry."""

from pathlib import Path

import pytest

# ../shared/ beside the project root (see the developers' guide); CI has it too.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} is absent")
WIDE = {"COLUMNS": "200"}  # rich tables wrap long column names at the default 80 columns
# A small valid profile: the resource family of an export with columns Id, Est, Act, Team.
MINIMAL = {
    "name": "acme",
    "roles": {"project_id": "Id", "planned_effort_hours": "Est", "actual_effort_hours": "Act"},
    "features": {"team": {"column": "Team", "type": "category"}},
}


def profile_raw(**changes) -> dict:
    """MINIMAL with changes: `section=value` replaces a section, `section__key=value` sets
    one key of it."""
    profile = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MINIMAL.items()}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            profile.setdefault(section, {})[field] = value
        else:
            profile[section] = value
    return profile


def registry_settings(root: Path, **overrides):
    """Settings on an empty SQLite registry in `root` (artifacts beside it), no poller and no
    .env file: what tests that train or serve their own models start from."""
    from opm_ml.settings import Settings

    return Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                    mlflow_artifact_root=root / "artifacts", registry_poll_seconds=0,
                    **overrides)
