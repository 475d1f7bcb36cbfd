"""The data contract: every column opm-ml reads or writes, with type, unit, range and stage.

One source of truth: validation (`opm_ml.validation`), the generator, the features and the
schema table in `data/README.md` (`opm-ml data schema`) are all derived from these lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

Stage = Literal["id", "intake", "outcome", "snapshot", "usage"]
Kind = Literal["str", "category", "date", "int", "float", "bool"]

PROJECT_TYPES = (
    "it_software",
    "construction",
    "infrastructure",
    "manufacturing",
    "rnd",
    "business_change",
)
SECTORS = (
    "public",
    "finance",
    "energy",
    "healthcare",
    "telecom",
    "industrial",
    "retail",
    "transport",
)
REGIONS = ("north_america", "europe", "asia_pacific", "latin_america", "middle_east_africa")
METHODOLOGIES = ("agile", "waterfall", "hybrid")
# Roles are deliberately generic so one contract covers IT, construction and R&D portfolios.
ROLES = ("management", "analysis", "design", "build", "testing", "deployment")
# An intake candidate's business case, added to the models' intake fields whatever the
# profile: the API's fields (serving's IntakeCandidate) and the candidates CSV's columns by year
# and by objective (`opm_ml.intake.candidates`). A profile feature may not take one of these
# names (`opm_ml.profiles.roles.RESERVED`).
BUSINESS_FIELDS = ("project_id", "name", "status", "discount_rate", "cost_by_year",
                   "benefits_by_year", "mandatory", "regulatory", "alignment")
BUSINESS_PREFIXES = ("cost_year_", "benefit_year_", "alignment_")
# The largest amount of money any field accepts (10x the largest budget): beyond it a value is a
# typo or an attack, and sums and ratios of such values overflow to infinity.
MAX_AMOUNT = 1e12


@dataclass(frozen=True)
class Column:
    """One column of a contract table: what it holds, its unit and what values are allowed.

    `feature`: whether the models use it as a feature (ids, dates and outcomes never are;
    amounts such as pv are read by the earned-value features instead). `above_min`: `min` is a
    strict bound (a plan a forecast multiplies must be more than 0, and 0 is no plan).
    """

    name: str
    kind: Kind
    stage: Stage
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    nullable: bool = False
    feature: bool = True
    above_min: bool = False


def _role_share(role: str) -> Column:
    return Column(
        f"role_share_{role}", "float", "intake",
        f"planned share of effort for the {role} role; shares sum to 1", "fraction", 0, 1,
    )


def _actual_effort(role: str) -> Column:
    return Column(
        f"actual_effort_{role}_hours", "float", "outcome",
        f"actual effort booked by the {role} role", "hours", 0, None, nullable=True,
    )


PROJECT_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "str", "id", "unique project identifier"),
    Column("project_type", "category", "intake", "kind of project", categories=PROJECT_TYPES),
    Column("sector", "category", "intake", "industry sector of the owner", categories=SECTORS),
    Column("region", "category", "intake", "delivery region", categories=REGIONS),
    Column("methodology", "category", "intake", "delivery approach", categories=METHODOLOGIES),
    Column("start_date", "date", "intake", "planned (= actual) start date", "ISO date"),
    Column("planned_duration_days", "int", "intake", "baseline duration", "calendar days", 7, 3650),
    Column("budget_at_completion", "float", "intake", "baseline budget (BAC)", "currency", 1, 1e11),
    Column("planned_effort_hours", "float", "intake", "baseline effort, all roles", "hours", 1, 1e8),
    Column("planned_team_size", "int", "intake", "planned peak head-count", "people", 1, 5000),
    *(_role_share(r) for r in ROLES),
    Column("complexity", "int", "intake", "technical/organisational complexity", "1-5 scale", 1, 5),
    Column(
        "requirements_volatility", "int", "intake", "expected scope churn", "1-5 scale", 1, 5
    ),
    Column("num_vendors", "int", "intake", "external suppliers involved", "count", 0, 500),
    Column("num_dependencies", "int", "intake", "dependencies on other projects", "count", 0, 500),
    Column("pm_experience_years", "float", "intake", "project manager's experience", "years", 0, 50),
    Column("strategic_fit", "float", "intake", "alignment with strategy", "0-10 score", 0, 10),
    # Not a feature: an absolute amount; the models see it through expected_roi.
    Column("expected_benefits", "float", "intake", "business-case benefits", "currency", 0,
           MAX_AMOUNT, feature=False),
    Column("expected_roi", "float", "intake", "(benefits - BAC) / BAC", "ratio", -1, None),
    Column("num_identified_risks", "int", "intake", "risks in the register", "count", 0, 1000),
    Column(
        "mean_risk_severity", "float", "intake",
        "mean severity of registered risks; 0 when there are none", "0-5 scale", 0, 5,
    ),
    Column(
        "actual_finish_date", "date", "outcome",
        "actual finish; empty while the project runs", "ISO date", nullable=True,
    ),
    Column("actual_cost", "float", "outcome", "actual cost at completion", "currency", 0,
           MAX_AMOUNT, nullable=True),
    *(_actual_effort(r) for r in ROLES),
)

SNAPSHOT_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "str", "id", "project the snapshot belongs to"),
    Column("status_date", "date", "snapshot", "date of the status report", "ISO date"),
    # Amounts are read through the scale-free earned-value features, not as features.
    Column("pv", "float", "snapshot", "planned value (BCWS) to date", "currency", 0,
           MAX_AMOUNT, feature=False),
    Column("ev", "float", "snapshot", "earned value (BCWP) to date; never above BAC", "currency",
           0, MAX_AMOUNT, feature=False),
    Column("ac", "float", "snapshot", "actual cost (ACWP) to date", "currency", 0, MAX_AMOUNT,
           feature=False),
    Column("percent_complete", "float", "snapshot", "physical progress", "percent", 0, 100),
)

USAGE_COLUMNS: tuple[Column, ...] = (
    Column("project_id", "str", "id", "project the usage belongs to"),
    Column("month_index", "int", "usage", "months since start (0 = first month)", "months", 0, 600),
    *(
        Column(f"hours_{r}", "float", "usage", f"hours booked by the {r} role that month",
               "hours", 0, None)
        for r in ROLES
    ),
)

TABLES: dict[str, tuple[Column, ...]] = {
    "projects": PROJECT_COLUMNS,
    "snapshots": SNAPSHOT_COLUMNS,
    "resource_usage": USAGE_COLUMNS,
}

ROLE_SHARE_COLUMNS = tuple(f"role_share_{r}" for r in ROLES)
ACTUAL_EFFORT_COLUMNS = tuple(f"actual_effort_{r}_hours" for r in ROLES)
USAGE_HOUR_COLUMNS = tuple(f"hours_{r}" for r in ROLES)
INTAKE_COLUMNS = tuple(c.name for c in PROJECT_COLUMNS if c.stage == "intake")
OUTCOME_COLUMNS = tuple(c.name for c in PROJECT_COLUMNS if c.stage == "outcome")


REJECTION_COLUMNS = ("table", "row", "column", "value", "reason")


def _no_rejections() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="int64" if name == "row" else "str")
                         for name in REJECTION_COLUMNS})


@dataclass
class History:
    """One portfolio history: the three contract tables, plus the rows rejected on loading.

    `rejections` (table, row, column, value, reason) is empty for generated data; row numbers
    refer to the files that were read. `notes`: what reading decided about whole columns or
    row groups (duplicates dropped by the profile's rule, unfinished rows), for the run log.
    """

    projects: pd.DataFrame
    snapshots: pd.DataFrame
    resource_usage: pd.DataFrame
    rejections: pd.DataFrame = field(default_factory=_no_rejections)
    notes: list[str] = field(default_factory=list)


def column(table: str, name: str) -> Column:
    """Look up one column's definition (KeyError names the table and column)."""
    for col in TABLES[table]:
        if col.name == name:
            return col
    raise KeyError(f"{table} has no column {name!r}")


def schema_markdown() -> str:
    """The contract as Markdown tables, as published in data/README.md."""
    lines: list[str] = []
    for table, cols in TABLES.items():
        lines += [f"### `{table}`", "", "| column | type | stage | unit | allowed | meaning |",
                  "|---|---|---|---|---|---|"]
        for c in cols:
            if c.categories:
                allowed = ", ".join(c.categories)
            elif c.min is not None or c.max is not None:
                lo = "" if c.min is None else f"{c.min:g}"
                hi = "" if c.max is None else f"{c.max:g}"
                allowed = f"{lo} .. {hi}" if hi else f"{'>' if c.above_min else '>='} {lo}"
            else:
                allowed = ""
            if c.nullable:
                allowed = (allowed + "; " if allowed else "") + "may be empty"
            lines.append(
                f"| `{c.name}` | {c.kind} | {c.stage} | {c.unit} | {allowed} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
