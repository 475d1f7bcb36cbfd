"""A shifted portfolio: how a generated future differs from the history models learned on.

The default `Regime()` is the generator as documented (data/README.md). A shift changes the
type mix (weights on each type's share, renormalised), moves the latent requirements-
volatility score (about one point on the 1-5 scale per unit), adds a regime change to every
project's log cost and log schedule ratio (snapshots follow, as they are drawn from the
outcomes), and places starts in another window with its own id prefix, so a future can be
appended to a history. The monitoring scenario (tests, benchmarks/monitoring.py) uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from opm_ml.contract import PROJECT_TYPES


@dataclass(frozen=True)
class Regime:
    """What differs from the documented generator (every default: nothing)."""

    type_weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    volatility_shift: float = 0.0
    cost_shift: float = 0.0  # added to log(actual cost / BAC)
    schedule_shift: float = 0.0  # added to log(actual / planned duration)
    first_start: str | None = None  # default 2012-01-01
    last_start: str | None = None  # default 90 days before as_of
    id_prefix: str = "P"

    def __post_init__(self):
        unknown = sorted(set(self.type_weights) - set(PROJECT_TYPES))
        if unknown:
            raise ValueError(f"type_weights: unknown project type(s) {unknown}; allowed: "
                             f"{', '.join(PROJECT_TYPES)}")
        if any(w < 0 for w in self.type_weights.values()):
            raise ValueError("type_weights must not be negative")

    def type_shares(self, shares: np.ndarray) -> np.ndarray:
        """The base type shares (PROJECT_TYPES order) reweighted and renormalised."""
        if not self.type_weights:
            return shares  # untouched, so the default generator draws exactly as documented
        weights = np.array([self.type_weights.get(t, 1.0) for t in PROJECT_TYPES])
        shifted = shares * weights
        return shifted / shifted.sum()


DEFAULT = Regime()
