"""The canonical roles a profile maps columns onto, their units, and the names opm-ml keeps
for itself (a feature may not take one)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from opm_ml.contract import BUSINESS_FIELDS, BUSINESS_PREFIXES, Column
from opm_ml.forecasting.families import FAMILIES
from opm_ml.manifest import EVM_FEATURES, TIME_FEATURES

# A family's planned value may be missing (that family has no forecast then) but never 0 or
# less: the forecast is a multiple of it, so such a value is rejected like any out-of-range one.
ROLES: dict[str, Column] = {c.name: c for c in (
    Column("project_id", "str", "id", "project identifier"),
    Column("start_date", "date", "intake", "start date", "ISO date"),
    Column("planned_duration_days", "float", "intake", "baseline duration", "calendar days", 0,
           above_min=True),
    Column("budget_at_completion", "float", "intake", "baseline budget (BAC)", "currency", 0,
           above_min=True),
    Column("planned_effort_hours", "float", "intake", "baseline effort", "hours", 0,
           above_min=True),
    Column("actual_finish_date", "date", "outcome", "actual finish", "ISO date",
           nullable=True),
    Column("actual_duration_days", "float", "outcome", "actual duration", "calendar days", 0,
           nullable=True),
    Column("actual_cost", "float", "outcome", "actual cost at completion", "currency", 0,
           nullable=True),
    Column("actual_effort_hours", "float", "outcome", "actual effort", "hours", 0,
           nullable=True),
    Column("status_date", "date", "snapshot", "date of the status report", "ISO date"),
    Column("pv", "float", "snapshot", "planned value to date", "currency", 0, feature=False),
    Column("ev", "float", "snapshot", "earned value to date", "currency", 0, feature=False),
    Column("ac", "float", "snapshot", "actual cost to date", "currency", 0, feature=False),
    Column("percent_complete", "float", "snapshot", "physical progress", "percent", 0, 100,
           nullable=True),
)}
# Roles that may be given instead of the canonical one (converted when reading).
ALTERNATIVES = {"planned_finish_date": "planned_duration_days"}
UNITS = {  # unit -> factor to calendar days or hours
    "days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25,
    "hours": 1.0, "person_days": 8.0, "person_months": 152.0, "person_years": 1824.0,
}
DURATION_ROLES = ("planned_duration_days", "actual_duration_days")
EFFORT_ROLES = ("planned_effort_hours", "actual_effort_hours")
TYPES = {"number": "float", "integer": "int", "category": "category", "boolean": "bool",
         "date": "date", "text": "str"}
STAGES = ("intake", "snapshot", "outcome")
# The role a family's target needs beyond its planned value (either of a pair will do).
FAMILY_ACTUALS = {"delay": ("actual_duration_days", "actual_finish_date"),
                  "overrun": ("actual_cost",), "resource": ("actual_effort_hours",)}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # of profiles, features, derived features, roles
# Names opm-ml gives columns of its own: a feature or derived feature called so would take
# the place of a role, a training target (`late`, `log_cost_ratio` ...), an in-flight feature,
# the in-flight sample's `progress_point`, the request's `status`, an answer's `stage` or
# `warnings`, an attribute of the generated request model, or a field an intake candidate
# adds to the profile's own (its business case: `name`, `discount_rate` ...).
RESERVED = frozenset({
    *ROLES, *ALTERNATIVES, "actual_effort_by_role", *TIME_FEATURES, *EVM_FEATURES,
    *(name for f in FAMILIES.values() for name in (f.target, f.actual)),
    "late", "progress_point", "status", "stage", "warnings", *BUSINESS_FIELDS,
    *(a for a in dir(BaseModel) if not a.startswith("_")),
})
# Targets and columns by role; an intake candidate's columns by year and by objective.
RESERVED_PREFIXES = ("actual_share_", "actual_effort_", *BUSINESS_PREFIXES)


def reserved(name: str) -> bool:
    """Whether opm-ml uses `name` itself (see RESERVED)."""
    return name in RESERVED or name.startswith(RESERVED_PREFIXES)
