"""The built-in profile: opm-ml's own data contract (`opm_ml.contract`), as a manifest.

What the synthetic generator writes and `make run` trains on. Its categories are closed lists
(an unknown project type is an error, not an unseen level) and its derived features are the
ones the contract's models have always used.
"""

from __future__ import annotations

from dataclasses import replace

from opm_ml.contract import (
    PROJECT_COLUMNS,
    ROLE_SHARE_COLUMNS,
    ROLES,
    SNAPSHOT_COLUMNS,
)
from opm_ml.manifest import FeatureManifest

NAME = "contract"
VERSION = "1"
# Planned hours a full-time person works per calendar day: 40 h / 7 days.
DERIVED = (
    ("log_budget", "log(budget_at_completion)"),
    ("log_effort_hours", "log(planned_effort_hours)"),
    ("log_duration_days", "log(planned_duration_days)"),
    ("hours_per_day", "planned_effort_hours / planned_duration_days"),
    # > 1 means the plan needs more hours than the planned team can work in the time.
    ("team_utilisation", "planned_effort_hours / (planned_team_size * planned_duration_days "
                         "* (40 / 7))"),
    ("cost_per_hour", "budget_at_completion / planned_effort_hours"),
    ("risk_exposure", "num_identified_risks * mean_risk_severity"),
    ("start_month", "month(start_date)"),
)
RULES = (
    {"kind": "sum_to", "columns": list(ROLE_SHARE_COLUMNS), "total": 1.0, "tolerance": 0.01,
     "label": "role_share_*", "name": "role shares", "type": "role_shares_sum"},
    {"kind": "zero_together", "columns": ["num_identified_risks", "mean_risk_severity"],
     "type": "risk_severity"},
)
STATUS_REQUIRED = ("status_date", "pv", "ev", "ac")


def _manifest() -> FeatureManifest:
    known = [c for c in PROJECT_COLUMNS if c.stage in ("id", "intake")]
    # A status report may leave out percent complete; the other snapshot values define it.
    snapshot = [replace(c, nullable=c.name not in STATUS_REQUIRED)
                for c in SNAPSHOT_COLUMNS if c.stage == "snapshot"]
    columns = tuple(known + snapshot)
    closed = frozenset(c.name for c in columns if c.kind == "category")
    return FeatureManifest(
        profile=NAME, profile_version=VERSION, profile_digest="builtin", columns=columns,
        closed=closed, derived=DERIVED, status_required=STATUS_REQUIRED, rules=RULES,
        roles=ROLES, reference_class="project_type",
    )


CONTRACT_MANIFEST = _manifest()
