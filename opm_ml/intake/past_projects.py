"""The past projects a dataset profile's percentile scales compare with: its own history.

The scorecard's `[reference]` is the contract's population (`opm-ml intake reference`), pinned
by its sha256. Models trained on a profile learned from another organisation's history, so
training gives the profile's resource model that history's finished projects and their actual
effort (`PastProjects`, in the model file and logged as `intake_reference.csv`). Intake scoring
compares a profile's candidates with it, and the answer's `reference_digest` names it; models
without one (trained before it was kept, or no resource model) leave the criterion neutral, and
the answer says so: a profile's candidates are never ranked against the contract's projects.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from opm_ml.contract_manifest import NAME as CONTRACT
from opm_ml.forecasting.families import FAMILIES
from opm_ml.intake import scales
from opm_ml.intake.risk import NEUTRAL_SCORE
from opm_ml.intake.scorecard import ScorecardConfig

ARTIFACT = "intake_reference.csv"
EFFORT = "actual_effort_hours"  # the outcome the percentile scales compare effort with
# The family trained on that outcome: its models carry the past projects (the registry says
# which, so no family name is spelled out here or in training).
FAMILY = next(name for name, f in FAMILIES.items() if f.actual == EFFORT)


@dataclass(frozen=True)
class PastProjects:
    """Finished projects and their actual effort, as the CSV `scales.write_reference` writes
    (so the digest is the one `opm-ml intake reference` would give the same population)."""

    csv: str  # project_id,effort_hours

    @classmethod
    def of(cls, projects: pd.DataFrame) -> PastProjects | None:
        """The projects with an actual effort above 0; None when there are none."""
        if EFFORT not in projects.columns:
            return None
        effort = projects[EFFORT].to_numpy(dtype=float, na_value=np.nan)
        done = np.isfinite(effort) & (effort > 0)
        if not done.any():
            return None
        frame = pd.DataFrame({"project_id": projects["project_id"].astype(str)[done],
                              "effort_hours": effort[done].round(1)})
        frame = frame.sort_values("project_id", kind="stable")
        return cls(frame.to_csv(index=False, float_format="%.1f", lineterminator="\n"))

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.csv.encode()).hexdigest()

    def frame(self) -> pd.DataFrame:
        return pd.read_csv(io.StringIO(self.csv), dtype={"project_id": str})


def carried(models: Mapping) -> PastProjects | None:
    """The past projects the served resource model carries (None: none, or no such model)."""
    return getattr(models.get(FAMILY), "intake_reference", None)


def for_profile(config: ScorecardConfig, profile: str, past: PastProjects | None,
                neutral: list[str]) -> tuple[ScorecardConfig, list[str], list[str]]:
    """(the scorecard as `profile`'s candidates are scored with it, the criteria it cannot
    measure, notes). The contract keeps the scorecard's reference; a profile's percentile
    scales compare with its own past projects, or score neutrally when there are none, and
    `reference_digest` names the population compared with (None: none was).
    `neutral`: criteria no served model measures anyway (their note is given already)."""
    if profile == CONTRACT:
        return config, [], []
    percentiles = {c: s for c, s in config.scales.items()
                   if isinstance(s, scales.Percentile) and c not in neutral}
    reference = past.frame() if past is not None else pd.DataFrame()
    unmeasured = [c for c, s in percentiles.items() if s.column not in reference.columns]
    own = {c: scales.percentile_scale(reference, s.column, s.better,
                                      f"profile {profile}'s past projects")
           for c, s in percentiles.items() if c not in unmeasured}
    notes = [f"the models of profile {profile} carry no past projects with {percentiles[c].column}"
             f" to compare with: {c} scores a neutral {NEUTRAL_SCORE} (the scorecard's "
             "reference holds other projects; retrain to keep the history's own)"
             for c in unmeasured]
    digest = past.digest if own else None
    return replace(config, scales={**config.scales, **own}, reference_digest=digest), \
        unmeasured, notes
