"""Command-line options several commands share (Typer annotations)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

ProfileOption = Annotated[Optional[str], typer.Option(
    "--profile", help="dataset profile whose models to use: a name in data/profiles/ or a "
                      ".toml file; default: settings profile (OPM_ML_PROFILE, the contract)")]


def with_profile(settings, profile: str | None):
    """Settings naming the profile's registered models (a file's profile by its `name`)."""
    if not profile:
        return settings
    from opm_ml.profiles import resolve_profile

    resolved = resolve_profile(profile)
    return settings.model_copy(update={"profile": "contract" if resolved is None
                                       else resolved.name})
