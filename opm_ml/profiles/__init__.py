"""Dataset profiles: how an organisation's own project history maps onto what the models need.

* `profile`: the TOML format, parsed and checked (`load_profile`);
* `reader`: an export read through its profile into the canonical, validated history;
* `build`: the feature manifest of models trained on it;
* `infer`: a draft profile from a file, with a summary and leak warnings;
* `contract`: the built-in profile, opm-ml's own synthetic data contract.
`resolve_profile(name_or_path)` finds a profile by file or by name in `data/profiles/`.
"""

from __future__ import annotations

from pathlib import Path

from opm_ml.profiles.profile import Profile, ProfileError, load_profile
from opm_ml.settings import PROJECT_ROOT

PROFILE_DIR = PROJECT_ROOT / "data" / "profiles"
CONTRACT = "contract"


def resolve_profile(spec: str) -> Profile | None:
    """The profile a `--profile` option names: a TOML file, or a name in `data/profiles/`;
    None for the built-in contract."""
    if spec == CONTRACT:
        return None
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        return load_profile(path)
    if (PROFILE_DIR / f"{spec}.toml").is_file():
        return load_profile(PROFILE_DIR / f"{spec}.toml")
    known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
    raise ProfileError(f"no profile {spec!r}: give a .toml file, {CONTRACT}, or one of "
                       f"data/profiles/ ({known})")


__all__ = ["CONTRACT", "PROFILE_DIR", "Profile", "ProfileError", "load_profile",
           "resolve_profile"]
