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
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from opm_ml.categories import category_label
from opm_ml.contract import Column
from opm_ml.expressions import ExpressionError, compile_expression
from opm_ml.forecasting.families import FAMILIES
from opm_ml.manifest import EVM_FEATURES, EVM_INPUTS, TIME_FEATURES, TIME_INPUTS
from opm_ml.profiles.fields import Fields, ProfileError, profile_rules, read_options
from opm_ml.profiles.roles import (
    ALTERNATIVES,
    DURATION_ROLES,
    EFFORT_ROLES,
    FAMILY_ACTUALS,
    NAME,
    ROLES,
    STAGES,
    TYPES,
    reserved,
)

_TOP = {"name", "version", "description", "read", "roles", "units", "features", "derived",
        "model", "rules"}

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
    group: str | None = None  # a feature whose groups a split keeps whole (by project)
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
        have = self.canonical_roles()
        return tuple(name for name, spec in FAMILIES.items()
                     if spec.planned in have and spec.actual in have)

    def missing_roles(self, family: str) -> list[str]:
        """What a family lacks in this profile, for a one-line reason."""
        spec = FAMILIES[family]
        have = self.canonical_roles() | set(self.roles)
        need = [spec.planned] if spec.planned not in have else []
        if not any(r in have for r in FAMILY_ACTUALS[family]):
            need.append(" or ".join(FAMILY_ACTUALS[family])
                        + (" (or actual_effort_by_role)" if family == "resource" else ""))
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
        efforts = [Column(f"actual_effort_{r}_hours", "float", "outcome",
                          f"actual effort of the {r} role ({c})", "hours", 0, nullable=True)
                   for r, c in self.role_efforts.items()]
        features = [f.as_column() for f in self.features]
        return tuple(roles + efforts + features)

    def canonical_roles(self) -> set[str]:
        """The canonical roles the profile's tables hold (a finish becomes a duration)."""
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
    check = Fields(source)
    check.table(raw, "", _TOP, "profile field")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        check.fail("name", "must be lower-case letters, digits and _ (it names the registered "
                           "models)")
    version = raw.get("version", "1")
    if isinstance(version, (bool, dict, list)):
        check.fail("version", f"must be text or a number, got {version!r}")
    read = read_options(raw.get("read", {}), check)
    roles, role_efforts = _roles(check.table(raw.get("roles", {}), "roles"), check)
    units = _units(check.table(raw.get("units", {}), "units"), check)
    features = tuple(_feature(k, v, check) for k, v in
                     check.table(raw.get("features", {}), "features").items())
    for f in features:
        if reserved(f.name):
            check.fail(f"features.{f.name}", "is a name opm-ml uses itself (a role, target, "
                                             "in-flight feature or intake business-case field);"
                                             " pick another name")
    _check_columns(roles, role_efforts, features, read, check)
    derived = _derived(check.table(raw.get("derived", {}), "derived"), roles, features, check)
    model = check.table(raw.get("model", {}), "model",
                        {"reference_class", "anchors", "metric", "gate", "group"},
                        "model option")
    known = {n for n, _ in derived} | {f.name for f in features}
    reference, group = _model_features(model, features, check)
    anchors = check.table(model.get("anchors", {}), "model.anchors")
    for family, feature in anchors.items():
        if family not in FAMILIES:
            check.fail(f"model.anchors.{family}", f"is not a family ({', '.join(FAMILIES)})")
        if feature not in known:
            check.fail(f"model.anchors.{family}", f"names unknown feature {feature!r}")
    metric = model.get("metric", "mae")
    if metric not in ("mae", "mape"):
        check.fail("model.metric", f'must be "mae" or "mape", got {metric!r}')
    gate = model.get("gate", "noise")
    if gate not in ("noise", "strict"):
        check.fail("model.gate", f'must be "noise" or "strict", got {gate!r}')
    rules = profile_rules(raw.get("rules", []), known | _role_names(roles), check)
    profile = Profile(
        name=name, version=str(version), description=str(raw.get("description", "")),
        roles=roles, features=features, read=read, units=units, derived=derived,
        reference_class=reference, anchors=tuple(anchors.items()), rules=rules,
        role_efforts=role_efforts, group=group, metric=metric, gate=gate, source=source,
        raw=raw)
    if "project_id" not in roles:
        check.fail("roles.project_id", "is missing: every profile needs the project id column")
    if "planned_finish_date" in roles and "start_date" not in roles:
        check.fail("roles.planned_finish_date", "needs roles.start_date (a planned duration is "
                                                "the finish minus the start)")
    if not profile.families:
        needs = "; ".join(f"{f}: {', '.join(profile.missing_roles(f))}" for f in FAMILIES)
        check.fail("roles", f"map no family's planned value and actual ({needs})")
    return profile


def _roles(raw: dict, check: Fields) -> tuple[dict[str, str], dict[str, str]]:
    roles, efforts = {}, {}
    for role, column in raw.items():
        if role == "actual_effort_by_role":
            for name, part in check.table(column, "roles.actual_effort_by_role").items():
                if not NAME.match(name):
                    check.fail(f"roles.actual_effort_by_role.{name}",
                               "needs a lower-case role name (letters, digits, _)")
                efforts[name] = check.text(part, f"roles.actual_effort_by_role.{name}")
            continue
        if role not in ROLES and role not in ALTERNATIVES:
            known = ", ".join([*ROLES, *ALTERNATIVES, "actual_effort_by_role"])
            check.fail(f"roles.{role}", f"is not a role; roles are {known}")
        roles[role] = check.text(column, f"roles.{role}")
    if "planned_finish_date" in roles and "planned_duration_days" in roles:
        check.fail("roles.planned_finish_date", "and roles.planned_duration_days both give the "
                                                "planned duration: map one")
    return roles, efforts


def _units(raw: dict, check: Fields) -> dict[str, str]:
    for role, unit in raw.items():
        if role not in (*DURATION_ROLES, *EFFORT_ROLES):
            check.fail(f"units.{role}", f"must be one of {', '.join(DURATION_ROLES + EFFORT_ROLES)}")
        allowed = ("days", "weeks", "months", "years") if role in DURATION_ROLES else (
            "hours", "person_days", "person_months", "person_years")
        if unit not in allowed:
            check.fail(f"units.{role}", f"must be one of {', '.join(allowed)}, got {unit!r}")
    return dict(raw)


def _feature(name: str, raw, check: Fields) -> Feature:
    key = f"features.{name}"
    if not NAME.match(name):
        check.fail(key, "needs a lower-case name (letters, digits, _)")
    check.table(raw, key, {"column", "type", "stage", "unit", "min", "max", "levels",
                           "required", "feature", "description"}, "feature field")
    column = check.text(raw.get("column"), f"{key}.column")
    kind = raw.get("type", "number")
    if kind not in TYPES:
        check.fail(f"{key}.type", f"must be one of {', '.join(TYPES)}, got {kind!r}")
    stage = raw.get("stage", "intake")
    if stage not in STAGES:
        check.fail(f"{key}.stage", f"must be one of {', '.join(STAGES)}, got {stage!r}")
    bounds = [None if raw.get(b) is None else check.number(raw[b], f"{key}.{b}")
              for b in ("min", "max")]
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        check.fail(f"{key}.max", f"must be at least min ({bounds[0]:g})")
    if bounds != [None, None] and kind not in ("number", "integer"):
        check.fail(f"{key}.{'min' if bounds[0] is not None else 'max'}",
                   "is a range of a number or integer feature")
    levels = raw.get("levels")
    if levels is not None:
        if kind != "category":
            check.fail(f"{key}.levels", "is a closed list of levels of a category feature")
        levels = tuple(dict.fromkeys(category_label(v) for v in check.texts(
            levels, f"{key}.levels", at_least=2, numbers=True)))
    text = {k: check.text(raw[k], f"{key}.{k}") if raw[k] != "" else ""
            for k in ("unit", "description") if k in raw}
    flags = {k: check.flag(raw[k], f"{key}.{k}") for k in ("required", "feature") if k in raw}
    # An outcome column is read and checked but never a feature: it is known only afterwards.
    return Feature(name, column, TYPES[kind], stage, text.get("description", ""),
                   text.get("unit", ""), bounds[0], bounds[1], levels,
                   flags.get("required", False),
                   stage != "outcome" and flags.get("feature", kind not in ("date", "text")))


def _check_columns(roles: dict[str, str], efforts: dict[str, str],
                   features: tuple[Feature, ...], read: dict, check: Fields) -> None:
    """A column read twice is a mistake, unless repeated status reports give it several
    meanings (the first report's budget is BAC, the last one's the actual cost)."""
    mapped: dict[str, str] = {}
    for key, column in [*((f"roles.{r}", c) for r, c in roles.items()),
                        *((f"roles.actual_effort_by_role.{r}", c) for r, c in efforts.items()),
                        *((f"features.{f.name}", f.column) for f in features)]:
        if column in mapped and not read.get("reports"):
            check.fail(key, f"maps column {column!r}, which {mapped[column]} maps already")
        mapped.setdefault(column, key)


def _role_names(roles: dict[str, str]) -> set[str]:
    return {ALTERNATIVES.get(r, r) for r in roles}


def _derived(raw: dict, roles: dict[str, str], features: tuple[Feature, ...],
             check: Fields) -> tuple[tuple[str, str], ...]:
    """The derived expressions, each checked against what a model can read when it runs:
    numbers and dates known before the outcome (no category, text or outcome), the in-flight
    features the roles give, and the derived features declared before it."""
    kinds = {r: ("date" if r.endswith("_date") else "float") for r in _role_names(roles)
             if ROLES[r].stage != "outcome"}
    kinds |= {f.name: f.kind for f in features if f.stage != "outcome"
              and f.kind not in ("category", "str")}
    if set(TIME_INPUTS) <= set(kinds):
        evm = set(EVM_INPUTS) <= set(kinds)
        kinds |= dict.fromkeys((*TIME_FEATURES, *(EVM_FEATURES if evm else ())), "float")
    unusable = {f.name: f"{f.name} is {'a category' if f.kind == 'category' else 'text'}"
                if f.stage != "outcome" else f"{f.name} is known only at the outcome"
                for f in features if f.name not in kinds}
    unusable |= {r: f"{r} is an outcome" for r in _role_names(roles) if r not in kinds}
    out = []
    for key, text in raw.items():
        where = f"derived.{key}"
        text = check.text(text, where)
        if not NAME.match(key) or key in kinds or key in unusable or reserved(key):
            check.fail(where, "needs a new lower-case name (not a role, a feature or a name "
                              "opm-ml uses itself)")
        try:
            expression = compile_expression(text)
        except ExpressionError as exc:
            check.fail(where, str(exc))
        for name in sorted(expression.names):
            if name in unusable:
                check.fail(where, f"reads {name}, which a model cannot use ({unusable[name]}); "
                                  "derived features read numbers and dates known beforehand")
            if name not in kinds:
                check.fail(where, f"{text!r} uses unknown column(s) {[name]}")
        try:
            expression.evaluate({n: _SAMPLE[kinds[n] == "date"] for n in expression.names})
        except (ExpressionError, TypeError) as exc:
            check.fail(where, f"cannot be computed: {str(exc).splitlines()[0]}")
        kinds[key] = "float"
        out.append((key, text))
    return tuple(out)


_SAMPLE = {False: np.array([2.0]), True: np.array(["2020-01-31"], dtype="datetime64[D]")}


def _model_features(model: dict, features: tuple[Feature, ...],
                    check: Fields) -> tuple[str | None, str | None]:
    """(reference class, group): intake features; the reference class a category."""
    intake = {f.name: f for f in features if f.stage == "intake"}
    categories = sorted(n for n, f in intake.items() if f.kind == "category")
    reference = model.get("reference_class")
    if reference is not None and reference not in categories:
        check.fail("model.reference_class", f"must be a category feature "
                                            f"({', '.join(categories)}), got {reference!r}")
    group = model.get("group")
    if group is not None and (group not in intake or intake[group].kind in ("date", "str")):
        check.fail("model.group", "must be an intake category or integer feature whose values "
                                  f"name the groups a split keeps whole, got {group!r}")
    return reference, group
