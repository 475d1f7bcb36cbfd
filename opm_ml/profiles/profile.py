"""A dataset profile: how an organisation's own project export maps onto what the models need.

A profile is a TOML file (`data/profiles/*.toml`; `opm-ml data profile infer` drafts one) with
* `[read]`: how to read the export (format, separator, decimal mark, encoding, date formats,
  files to join, a status column saying which rows are finished, repeated status reports);
* `[roles]`: which column holds each thing the families need (project id, start, planned
  duration or finish, budget, planned effort, the actuals, and in flight the status values);
* `[units]`: the units of duration and effort roles (converted to calendar days and hours);
* `[features.<name>]`: any number of feature columns with type, stage and optional unit,
  range, closed list of levels; `[derived]` expressions over them (`opm_ml.expressions`);
* `[model]`: the reference class and in-flight anchors; `[[rules]]`: multi-column rules.
Every problem is a `ProfileError` naming the file, the field and what is wrong.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from opm_ml.contract import Column
from opm_ml.expressions import ExpressionError, compile_expression
from opm_ml.forecasting.families import FAMILIES

ROLES: dict[str, Column] = {c.name: c for c in (
    Column("project_id", "str", "id", "project identifier"),
    Column("start_date", "date", "intake", "start date", "ISO date"),
    Column("planned_duration_days", "float", "intake", "baseline duration", "calendar days", 0),
    Column("budget_at_completion", "float", "intake", "baseline budget (BAC)", "currency", 0),
    Column("planned_effort_hours", "float", "intake", "baseline effort", "hours", 0),
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
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP = {"name", "version", "description", "read", "roles", "units", "features", "derived",
        "model", "rules"}
_READ = {"format", "separator", "decimal", "thousands", "encoding", "date_format",
         "date_formats", "missing", "join", "reports", "finished", "deduplicate"}


class ProfileError(ValueError):
    """A profile that cannot be used: the message names the file, the field and the problem."""


@dataclass(frozen=True)
class Feature:
    """One feature column: its name for the models, the source column, type and stage."""

    name: str
    column: str
    kind: str  # a contract kind: float, int, category, bool, date, str
    stage: str
    description: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    levels: tuple[str, ...] | None = None  # a closed list; None: the levels seen in the data
    required: bool = False
    feature: bool = True  # False: read only for derived features (e.g. a forecast date)

    def as_column(self) -> Column:
        return Column(self.name, self.kind, self.stage, self.description or self.column,
                      self.unit, self.min, self.max, self.levels, nullable=not self.required,
                      feature=self.feature and self.kind not in ("date", "str"))


@dataclass(frozen=True)
class Profile:
    """A parsed, checked profile (see the module docstring)."""

    name: str
    version: str
    description: str
    roles: dict[str, str]  # canonical role -> source column
    features: tuple[Feature, ...]
    read: dict = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    derived: tuple[tuple[str, str], ...] = ()
    reference_class: str | None = None
    anchors: tuple[tuple[str, str], ...] = ()
    rules: tuple[dict, ...] = ()
    role_efforts: dict[str, str] = field(default_factory=dict)  # role -> actual hours column
    # What training holds the models to: MAE, what a median (P50) forecast minimises; MAPE
    # favours forecasts below the median on skewed outcomes.
    metric: str = "mae"
    gate: str = "noise"  # see FeatureManifest.gate
    source: str = "<profile>"
    digest: str = ""
    raw: dict = field(default_factory=dict, compare=False)  # the TOML as read

    @property
    def families(self) -> tuple[str, ...]:
        """The families this profile's roles can train (planned value and its actual)."""
        have = set(self.roles) | {ALTERNATIVES.get(r, r) for r in self.roles}
        if "actual_duration_days" in have or ("actual_finish_date" in have
                                              and "start_date" in have):
            have.add("actual_duration_days")
        return tuple(name for name, spec in FAMILIES.items()
                     if spec.planned in have and spec.actual in have)

    def missing_roles(self, family: str) -> list[str]:
        """What a family lacks in this profile, for a one-line reason."""
        spec = FAMILIES[family]
        have = set(self.roles) | {ALTERNATIVES.get(r, r) for r in self.roles}
        need = [spec.planned] if spec.planned not in have else []
        if not any(r in have for r in FAMILY_ACTUALS[family]) and not (
                family == "resource" and self.role_efforts):
            need.append(" or ".join(FAMILY_ACTUALS[family]))
        if family == "delay" and "actual_finish_date" in self.roles and \
                "start_date" not in self.roles and "actual_duration_days" not in self.roles:
            need.append("start_date (to turn actual_finish_date into a duration)")
        return need

    @property
    def snapshots(self) -> bool:
        """Whether the profile reads status snapshots (in-flight models train then)."""
        return "status_date" in self.roles

    def columns(self) -> tuple[Column, ...]:
        """The canonical columns of the projects and snapshots it produces, in model order."""
        roles = [ROLES[r] for r in ROLES if r in self.canonical_roles()]
        features = [f.as_column() for f in self.features]
        return tuple(roles + features)

    def canonical_roles(self) -> set[str]:
        roles = {ALTERNATIVES.get(r, r) for r in self.roles}
        if "actual_finish_date" in roles and "start_date" in roles:
            roles.add("actual_duration_days")
        if self.role_efforts:
            roles.add("actual_effort_hours")
        return roles


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file (ProfileError naming the file and field otherwise)."""
    path = Path(path)
    try:
        text = path.read_bytes()
        raw = tomllib.loads(text.decode("utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None
    profile = parse_profile(raw, str(path))
    return replace(profile, digest=hashlib.sha256(text).hexdigest()[:16])


def parse_profile(raw: dict, source: str = "<profile>") -> Profile:
    """Check a profile dictionary (as read from TOML) and build the Profile."""
    def fail(key: str, problem: str):
        raise ProfileError(f"{source}: {key} {problem}")

    for key in set(raw) - _TOP:
        fail(key, "is not a profile field")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        fail("name", "must be lower-case letters, digits and _ (it names the registered models)")
    read = raw.get("read", {})
    for key in set(read) - _READ:
        fail(f"read.{key}", "is not a read option")
    roles, role_efforts = _roles(raw.get("roles", {}), fail)
    units = raw.get("units", {})
    for role, unit in units.items():
        if role not in (*DURATION_ROLES, *EFFORT_ROLES, "planned_finish_date"):
            fail(f"units.{role}", f"must be one of {', '.join(DURATION_ROLES + EFFORT_ROLES)}")
        allowed = ("days", "weeks", "months", "years") if role in DURATION_ROLES else (
            "hours", "person_days", "person_months", "person_years")
        if unit not in allowed:
            fail(f"units.{role}", f"must be one of {', '.join(allowed)}, got {unit!r}")
    features = tuple(_feature(k, v, fail) for k, v in raw.get("features", {}).items())
    names = [f.name for f in features]
    taken = set(ROLES) | set(ALTERNATIVES)
    for f in features:
        if f.name in taken:
            fail(f"features.{f.name}", "uses a role's name; pick another name")
    mapped = {}
    for key, column in [*((f"roles.{r}", c) for r, c in roles.items()),
                        *((f"features.{f.name}", f.column) for f in features)]:
        if column in mapped and not _may_share(mapped[column], key, read):
            fail(key, f"maps column {column!r}, which {mapped[column]} maps already")
        mapped.setdefault(column, key)
    derived = tuple((str(k), str(v)) for k, v in raw.get("derived", {}).items())
    known = {ALTERNATIVES.get(r, r) for r in roles} | set(names) | {"elapsed_fraction"}
    for key, text in derived:
        if not _NAME.match(key) or key in known:
            fail(f"derived.{key}", "needs a new lower-case name")
        try:
            compile_expression(text, known | {"pv_fraction", "ev_fraction", "ac_fraction",
                                              "spi", "cpi", "spi_t"})
        except ExpressionError as exc:
            fail(f"derived.{key}", str(exc))
        known.add(key)
    model = raw.get("model", {})
    reference = model.get("reference_class")
    categories = {f.name for f in features if f.kind == "category"}
    if reference is not None and reference not in categories:
        fail("model.reference_class", f"must be a category feature ({', '.join(sorted(categories))})")
    anchors = model.get("anchors", {})
    for family, feature in anchors.items():
        if family not in FAMILIES:
            fail(f"model.anchors.{family}", f"is not a family ({', '.join(FAMILIES)})")
        if feature not in known:
            fail(f"model.anchors.{family}", f"names unknown feature {feature!r}")
    metric = model.get("metric", "mae")
    if metric not in ("mae", "mape"):
        fail("model.metric", f'must be "mae" or "mape", got {metric!r}')
    gate = model.get("gate", "noise")
    if gate not in ("noise", "strict"):
        fail("model.gate", f'must be "noise" or "strict", got {gate!r}')
    rules = tuple(raw.get("rules", ()))
    for i, rule in enumerate(rules):
        if rule.get("kind") not in ("sum_to", "zero_together") or not all(
                c in known for c in rule.get("columns", [])):
            fail(f"rules[{i}]", "needs kind sum_to or zero_together and known columns")
    profile = Profile(
        name=name, version=str(raw.get("version", "1")), description=raw.get("description", ""),
        roles=roles, features=features, read=read, units=units, derived=derived,
        reference_class=reference, anchors=tuple(anchors.items()), rules=rules,
        role_efforts=role_efforts, metric=metric, gate=gate, source=source, raw=raw)
    if "project_id" not in roles:
        fail("roles.project_id", "is missing: every profile needs the project id column")
    if not profile.families:
        needs = "; ".join(f"{f}: {', '.join(profile.missing_roles(f))}" for f in FAMILIES)
        fail("roles", f"map no family's planned value and actual ({needs})")
    return profile


def _roles(raw: dict, fail) -> tuple[dict[str, str], dict[str, str]]:
    roles, efforts = {}, {}
    for role, column in raw.items():
        if role == "actual_effort_by_role" and isinstance(column, dict):
            efforts = {str(r): str(c) for r, c in column.items()}
            continue
        if role not in ROLES and role not in ALTERNATIVES:
            known = ", ".join([*ROLES, *ALTERNATIVES, "actual_effort_by_role"])
            fail(f"roles.{role}", f"is not a role; roles are {known}")
        if not isinstance(column, str) or not column:
            fail(f"roles.{role}", "must name a column")
        roles[role] = column
    pairs = (("planned_duration_days", "planned_finish_date"),
             ("actual_duration_days", "actual_finish_date"))
    for a, b in pairs:
        if a in roles and b in roles and a == "planned_duration_days":
            fail(f"roles.{b}", f"and roles.{a} both give the planned duration: map one")
    return roles, efforts


def _feature(name: str, raw: dict, fail) -> Feature:
    key = f"features.{name}"
    if not _NAME.match(name):
        fail(key, "needs a lower-case name (letters, digits, _)")
    if not isinstance(raw, dict) or "column" not in raw:
        fail(key, "needs `column`, the source column it reads")
    unknown = set(raw) - {"column", "type", "stage", "unit", "min", "max", "levels",
                          "required", "feature", "description"}
    if unknown:
        fail(f"{key}.{sorted(unknown)[0]}", "is not a feature field")
    kind = raw.get("type", "number")
    if kind not in TYPES:
        fail(f"{key}.type", f"must be one of {', '.join(TYPES)}, got {kind!r}")
    stage = raw.get("stage", "intake")
    if stage not in STAGES:
        fail(f"{key}.stage", f"must be one of {', '.join(STAGES)}, got {stage!r}")
    levels = raw.get("levels")
    if levels is not None and (kind != "category" or len(levels) < 2):
        fail(f"{key}.levels", "is a closed list of at least two levels of a category")
    # An outcome column is read and checked but never a feature: it is known only afterwards.
    return Feature(name, str(raw["column"]), TYPES[kind], stage, str(raw.get("description", "")),
                   str(raw.get("unit", "")), raw.get("min"), raw.get("max"),
                   None if levels is None else tuple(str(v) for v in levels),
                   bool(raw.get("required", False)),
                   stage != "outcome" and bool(raw.get("feature", kind not in ("date", "text"))))


def _may_share(first: str, second: str, read: dict) -> bool:
    """With repeated status reports one column can be a plan and an outcome and a snapshot
    (the first report's budget is BAC, the last one's the actual cost)."""
    return bool(read.get("reports"))
