"""When a champion counts as stale: the `[monitoring]` table of a model spec (`models/*.toml`).

Parsed here in the core (training's spec reader calls `parse_thresholds` too), so the API and
`opm-ml monitor` read the same thresholds as `opm-ml retrain` without importing training.
Errors name the file and the field, as the rest of the spec's do.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from opm_ml.forecasting.families import family
from opm_ml.settings import PROJECT_ROOT

SPEC_DIR = PROJECT_ROOT / "models"


@dataclass(frozen=True)
class Thresholds:
    """Drift, realised-error and new-data thresholds of one family (see models/*.toml)."""

    psi: float = 0.2  # a feature drifts at this population stability index or more ...
    ks: float = 0.2  # ... or at this Kolmogorov-Smirnov statistic (numbers) or more
    drifted_features: int = 3  # retrain when this many of the model's features drift
    prediction_psi: float = 0.4  # P50/planned of recent forecasts vs the held-out ones
    min_requests: int = 100  # logged forecasts of a stage before its drift is judged
    error_rise: float = 0.25  # realised MAPE above held-out MAPE x (1 + this): retrain
    min_outcomes: int = 50  # forecasts with an outcome before realised error is judged
    new_outcomes: int = 2000  # projects completed since the champion: retrain anyway

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FIELDS = {f.name: f.type for f in fields(Thresholds)}
# (floor, ceiling) of each value; None = unbounded.
_RANGES = {"psi": (0, None), "ks": (0, 1), "prediction_psi": (0, None), "error_rise": (0, None),
           "drifted_features": (1, None), "min_requests": (1, None), "min_outcomes": (1, None),
           "new_outcomes": (1, None)}


def parse_thresholds(raw: dict | None, source: str = "<spec>") -> Thresholds:
    """Thresholds from a spec's `[monitoring]` table (missing keys keep their defaults)."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: monitoring must be a table, got {raw!r}")
    values = {}
    for key, value in raw.items():
        where = f"{source}: monitoring.{key}"
        if key not in FIELDS:
            raise ValueError(f"{where} is not a spec field; allowed: {', '.join(FIELDS)}")
        integer = FIELDS[key] == "int"
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
            kind = "an integer" if integer else "a number"
            raise ValueError(f"{where} must be {kind}, got {value!r}")
        low, high = _RANGES[key]
        # Counts may equal their floor; ratios must exceed 0 (a 0 threshold flags everything).
        if not ((value >= low if integer else value > low) and (high is None or value < high)):
            bound = (f"at least {low}" if integer else f"greater than {low}") + (
                "" if high is None else f" and below {high}")
            raise ValueError(f"{where} must be {bound}, got {value!r}")
        values[key] = int(value) if integer else float(value)
    return Thresholds(**values)


def load_thresholds(name: str, spec_dir: Path | None = None) -> Thresholds:
    """The `[monitoring]` thresholds of a family's spec file; ValueError naming a bad field."""
    path = (spec_dir or SPEC_DIR) / family(name).spec_file
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ValueError(f"{path}: the {name} model spec is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    return parse_thresholds(raw.get("monitoring"), str(path))


def all_thresholds(families, spec_dir: Path | None = None) -> dict[str, Thresholds]:
    """Family -> thresholds for the given families."""
    return {f: load_thresholds(f, spec_dir) for f in families}
