"""The feature manifest: what a fitted model reads and which features it computes, per stage.

A manifest is made from a dataset profile (`opm_ml.profiles`) and the history a model was
trained on: the input columns with their types, ranges and category levels (a closed list from
the profile, or the levels seen in the data), the derived-feature expressions, and the ordered
features of each stage. It travels with the model (pickled and as `manifest.json`), so serving,
batch scoring and the request schema all follow the model, never a fixed contract.

Feature order per stage: categories, numbers and derived features of the intake columns; in
flight also the snapshot numbers, `elapsed_fraction`, the earned-value features and the
derived features that read snapshot values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property

from opm_ml.contract import Column
from opm_ml.expressions import compile_expression

STAGES = ("intake", "inflight")
# Built in whenever the profile maps start_date, status_date and planned_duration_days.
TIME_FEATURES = ("elapsed_fraction",)
# Built in whenever the profile also maps budget_at_completion, pv, ev and ac.
EVM_FEATURES = (
    "pv_fraction", "ev_fraction", "ac_fraction", "spi", "cpi", "spi_t", "sv_t_fraction",
    "es_fraction", "eac_cpi_ratio", "eac_cpi_spi_ratio", "ieac_t_ratio", "tcpi_bac",
    "progress_gap",
)
EVM_INPUTS = ("budget_at_completion", "pv", "ev", "ac")
TIME_INPUTS = ("start_date", "status_date", "planned_duration_days")
NUMBER_KINDS = ("int", "float", "bool")


@dataclass(frozen=True)
class FeatureManifest:
    """The columns a model reads and the features it computes from them (see module doc).

    `columns`: the project columns known before the outcome (stage `id` or `intake`) and the
    snapshot columns (stage `snapshot`), each with its kind, range and, for categories, its
    levels (`categories`). `closed`: category columns whose levels are the only allowed
    values; in the others an unseen value is allowed and takes the missing-value branch.
    `status_required`: the snapshot columns a row needs to count as in flight.
    """

    profile: str
    profile_version: str
    profile_digest: str
    columns: tuple[Column, ...]
    closed: frozenset[str] = frozenset()
    derived: tuple[tuple[str, str], ...] = ()
    status_required: tuple[str, ...] = ()
    rules: tuple[dict, ...] = ()
    roles: tuple[str, ...] = ()
    reference_class: str | None = None
    anchors: tuple[tuple[str, str], ...] = ()
    source: dict = field(default_factory=dict)
    examples: tuple[dict, ...] = ()  # (an intake row, a status report) for docs; real values
    families: tuple[str, ...] = ("delay", "overrun", "resource")  # what the profile can train
    metric: str = "mape"  # what training holds the models to (baselines, champion gate)
    group: str | None = None  # a column whose groups training's split keeps whole
    # "strict": a model must beat every baseline check, progress points included (the
    # contract's thousands of projects); "noise": it must not be worse beyond the noise of a
    # small held-out slice, in-flight points pooled (an organisation's tens of projects).
    gate: str = "strict"

    # --- columns ---------------------------------------------------------------------------

    @cached_property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> Column:
        return self.by_name[name]

    @cached_property
    def intake_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.stage == "intake")

    @cached_property
    def snapshot_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.stage == "snapshot")

    @cached_property
    def categories(self) -> dict[str, tuple[str, ...]]:
        """Category column -> its levels; a level's position is its code."""
        return {c.name: tuple(c.categories or ()) for c in self.columns if c.kind == "category"}

    @cached_property
    def codes(self) -> dict[str, dict[str, float]]:
        return {name: {v: float(i) for i, v in enumerate(levels)}
                for name, levels in self.categories.items()}

    def has(self, *names: str) -> bool:
        return all(n in self.by_name for n in names)

    @property
    def evm(self) -> bool:
        """Whether in-flight rows get the earned-value features (and OPM metrics)."""
        return self.has(*EVM_INPUTS, *TIME_INPUTS)

    # --- features ---------------------------------------------------------------------------

    @cached_property
    def stages(self) -> dict[str, tuple[str, ...]]:
        """Stage -> every feature the manifest can compute for it, in model order."""
        def features(stage: str) -> list[str]:
            cols = [c for c in self.columns if c.stage == stage and c.feature]
            return ([c.name for c in cols if c.kind == "category"]
                    + [c.name for c in cols if c.kind in NUMBER_KINDS])

        intake = features("intake")
        inflight = features("snapshot")
        if self.has(*TIME_INPUTS):
            inflight += TIME_FEATURES
        if self.evm:
            inflight += [f for f in EVM_FEATURES
                         if f != "progress_gap" or self.has("percent_complete")]
        for name, stage in self.derived_stages.items():
            (intake if stage == "intake" else inflight).append(name)
        return {"intake": tuple(intake), "inflight": tuple(intake + inflight)}

    @cached_property
    def derived_stages(self) -> dict[str, str]:
        """Derived feature -> the stage it is known at (in flight if it reads a snapshot)."""
        snapshot = set(self.snapshot_columns) | set(TIME_FEATURES) | set(EVM_FEATURES)
        known = {c.name for c in self.columns if c.kind != "category"} | snapshot
        stages: dict[str, str] = {}
        for name, text in self.derived:
            expression = compile_expression(text, known | set(stages))
            late = expression.names & (snapshot | {n for n, s in stages.items() if s != "intake"})
            stages[name] = "inflight" if late else "intake"
        return stages

    @cached_property
    def calendar_features(self) -> tuple[str, ...]:
        """Derived features of the calendar (month(...), year(...), or built on one): when a
        project runs, which a size law must not extrapolate."""
        known = {c.name for c in self.columns} | set(TIME_FEATURES) | set(EVM_FEATURES)
        calendar: list[str] = []
        for name, text in self.derived:
            expression = compile_expression(text, known | {n for n, _ in self.derived})
            if expression.calendar or expression.names & set(calendar):
                calendar.append(name)
        return tuple(calendar)

    def kind(self, feature: str) -> str:
        """`category` for category columns, else `number`."""
        column = self.by_name.get(feature)
        return "category" if column is not None and column.kind == "category" else "number"

    def anchor(self, family: str) -> str | None:
        return dict(self.anchors).get(family)

    # --- identity -----------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = asdict(self)
        data["closed"] = sorted(self.closed)
        data["columns"] = [{k: v for k, v in asdict(c).items()} for c in self.columns]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FeatureManifest:
        columns = tuple(Column(**{**c, "categories": None if c.get("categories") is None
                                  else tuple(c["categories"])}) for c in data["columns"])
        return cls(**{**data, "columns": columns, "closed": frozenset(data.get("closed", ())),
                      "derived": tuple(tuple(d) for d in data.get("derived", ())),
                      "status_required": tuple(data.get("status_required", ())),
                      "rules": tuple(data.get("rules", ())),
                      "roles": tuple(data.get("roles", ())),
                      "anchors": tuple(tuple(a) for a in data.get("anchors", ())),
                      "examples": tuple(data.get("examples", ())),
                      "families": tuple(data.get("families", cls.families))})

    @cached_property
    def digest(self) -> str:
        """sha256 of the manifest's content: equal digests read and compute the same."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_levels(self, levels: dict[str, tuple[str, ...]]) -> FeatureManifest:
        """A copy whose open category columns take `levels` (seen in training data)."""
        columns = tuple(
            replace(c, categories=tuple(levels[c.name]))
            if c.kind == "category" and c.name not in self.closed and c.name in levels else c
            for c in self.columns)
        return replace(self, columns=columns)
