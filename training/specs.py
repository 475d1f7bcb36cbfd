"""Model specs: the declarative `models/<family>.toml` files, read with tomllib and checked.

A spec says what a family learns (target), from what (feature sets), how (objective and
LightGBM hyper-parameters), how it is judged (metrics) and when it replaces the champion
(promotion rule). Unknown keys and out-of-range values are errors naming the file and field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from opm_ml.features import contract_manifest
from opm_ml.forecasting.families import FAMILIES as REGISTRY
from opm_ml.forecasting.families import FAMILY_NAMES, family
from opm_ml.manifest import EVM_FEATURES, STAGES, TIME_FEATURES
from opm_ml.monitoring.thresholds import FIELDS as MONITORING_FIELDS
from opm_ml.monitoring.thresholds import Thresholds, parse_thresholds

SPEC_DIR = Path(__file__).resolve().parent.parent / "models"
# What an in-flight model may start from: a status feature that is a ratio to plan.
ANCHOR_FEATURES = ("percent_complete", *TIME_FEATURES, *EVM_FEATURES)
PROMOTION_METRICS = ("mape", "mae", "pinball")
REPORT_METRICS = ("mae", "mape", "pinball", "coverage", "auc", "brier", "ece")
_KNOWN_KEYS = {
    "target": {"name", "late_threshold"},
    "features": {"intake", "inflight", "exclude"},
    "objective": {"quantiles", "intervals", "inflight_anchor", "classifier", "calibration",
                  "role_shares", "profile_bins", "base"},
    "split": {"train", "calibration", "test", "progress_points", "progress_tolerance"},
    "metrics": {"report"},
    "training": {"early_stopping_rounds"},
    "promotion": {"metric", "greater_is_better", "margin", "must_beat_baselines"},
    "monitoring": set(MONITORING_FIELDS),
}


@dataclass(frozen=True)
class ModelSpec:
    """One family's spec (see models/*.toml for the meaning of each field)."""

    family: str
    description: str
    target: str
    late_threshold: float | None
    intake_features: str
    inflight_features: str
    exclude: tuple[str, ...]
    quantiles: tuple[float, float, float]
    inflight_anchor: str | None
    classifier: bool
    calibration: str | None
    role_shares: bool
    profile_bins: int
    base: str | None  # where intake trees start: None, "loglinear" or "auto" (choose)
    hyperparameters: dict
    stage_hyperparameters: dict
    early_stopping_rounds: int | None
    train_fraction: float
    calibration_fraction: float
    test_fraction: float
    progress_points: tuple[float, ...]
    progress_tolerance: float
    report: tuple[str, ...]
    promotion_metric: str
    greater_is_better: bool
    margin: float
    must_beat_baselines: bool
    source: str = field(default="", compare=False)
    monitoring: Thresholds = field(default_factory=Thresholds)  # when to retrain

    def params_for(self, stage: str) -> dict:
        """LightGBM hyper-parameters of one stage: the shared ones plus the stage's overrides."""
        return {**self.hyperparameters, **self.stage_hyperparameters.get(stage, {})}

    def with_hyperparameters(self, **overrides) -> ModelSpec:
        """A copy with some hyper-parameters replaced in every stage (tests, benchmarks)."""
        from dataclasses import replace

        stages = {s: {k: v for k, v in p.items() if k not in overrides}
                  for s, p in self.stage_hyperparameters.items()}
        return replace(self, hyperparameters={**self.hyperparameters, **overrides},
                       stage_hyperparameters=stages)


def family_name(name: str) -> str:
    """The registry name of a family (ValueError naming the known ones)."""
    return family(name).name


def load_spec(family: str, spec_dir: Path | None = None) -> ModelSpec:
    """Read and check `models/<family>.toml`."""
    path = (spec_dir or SPEC_DIR) / REGISTRY[family_name(family)].spec_file
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return parse_spec(raw, source=str(path))


def parse_spec(raw: dict, source: str = "<spec>") -> ModelSpec:
    """Check a spec dictionary (as read from TOML) and build the ModelSpec."""
    r = SpecReader(raw, source)
    r.check_keys()
    family = r.get("family", str)
    if family not in REGISTRY:
        r.fail("family", f"must be one of {', '.join(FAMILY_NAMES)}")
    target = r.get("target.name", str)
    if target != REGISTRY[family].target:
        r.fail("target.name", f"the {family} family predicts {REGISTRY[family].target}")
    classifier = r.get("objective.classifier", bool)
    quantiles = tuple(r.get("objective.quantiles", list))
    if len(quantiles) != 3 or not 0 < quantiles[0] < quantiles[1] < quantiles[2] < 1:
        r.fail("objective.quantiles", "needs three increasing levels in (0, 1), e.g. P10/P50/P90")
    if r.get("objective.intervals", str) != "cqr":
        r.fail("objective.intervals", 'only "cqr" (conformalised quantile regression) is supported')
    fractions = [r.get(f"split.{k}", float) for k in ("train", "calibration", "test")]
    if min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        r.fail("split", "train, calibration and test must be positive and sum to 1")
    points = tuple(float(p) for p in r.get("split.progress_points", list))
    if not points or not all(0 < p < 100 for p in points):
        r.fail("split.progress_points", "needs percent-complete points strictly between 0 and 100")
    late = r.get("target.late_threshold", float, required=classifier)
    calibration = r.get("objective.calibration", str, required=classifier)
    if classifier and calibration not in ("isotonic", "sigmoid"):
        r.fail("objective.calibration", 'must be "isotonic" or "sigmoid"')
    feature_sets = {}
    for stage in STAGES:
        name = r.get(f"features.{stage}", str)
        if name not in STAGES:
            r.fail(f"features.{stage}", f"unknown feature set; expected {', '.join(STAGES)}")
        feature_sets[stage] = name
    anchor = r.get("objective.inflight_anchor", str, required=False)
    if anchor is not None and anchor not in ANCHOR_FEATURES:
        r.fail("objective.inflight_anchor",
               f"must be a status feature ({', '.join(ANCHOR_FEATURES)})")
    exclude = tuple(r.get("features.exclude", list))
    if anchor in exclude:
        r.fail("features.exclude", f"cannot exclude the in-flight anchor {anchor}")
    # Specs name the contract's features; a profile marks its own columns `feature = false`.
    unknown = sorted(set(exclude) - set(contract_manifest().stages["inflight"]))
    if unknown:
        r.fail("features.exclude", f"unknown feature(s) {unknown}")
    base = r.get("objective.base", str, required=False) or "none"
    if base not in ("none", "loglinear", "refclass", "auto"):
        r.fail("objective.base", 'must be "none", "loglinear", "refclass" or "auto"')
    report = tuple(r.get("metrics.report", list))
    if set(report) - set(REPORT_METRICS):
        r.fail("metrics.report", f"allowed: {', '.join(REPORT_METRICS)}")
    params = dict(r.get("hyperparameters", dict))
    stages = {s: params.pop(s) for s in ("intake", "inflight") if isinstance(params.get(s), dict)}
    shared = {k: v for k, v in params.items() if not isinstance(v, dict)}
    if len(shared) != len(params):
        r.fail("hyperparameters", "may only nest [hyperparameters.intake] / [.inflight] tables")
    metric = r.get("promotion.metric", str)
    if metric not in PROMOTION_METRICS:
        r.fail("promotion.metric", f"must be one of {', '.join(PROMOTION_METRICS)}")
    margin = r.get("promotion.margin", float)
    if not 0 <= margin < 1:
        r.fail("promotion.margin", "is a relative improvement in [0, 1)")
    return ModelSpec(
        family=family,
        description=r.get("description", str),
        target=target,
        late_threshold=late,
        intake_features=feature_sets["intake"],
        inflight_features=feature_sets["inflight"],
        exclude=exclude,
        quantiles=quantiles,
        inflight_anchor=anchor,
        classifier=classifier,
        calibration=calibration,
        role_shares=r.get("objective.role_shares", bool, required=False) or False,
        profile_bins=int(r.get("objective.profile_bins", int, required=False) or 10),
        base=None if base == "none" else base,
        hyperparameters=shared,
        stage_hyperparameters=stages,
        early_stopping_rounds=r.get("training.early_stopping_rounds", int, required=False),
        train_fraction=fractions[0],
        calibration_fraction=fractions[1],
        test_fraction=fractions[2],
        progress_points=points,
        progress_tolerance=r.get("split.progress_tolerance", float),
        report=report,
        promotion_metric=metric,
        greater_is_better=r.get("promotion.greater_is_better", bool),
        margin=margin,
        must_beat_baselines=r.get("promotion.must_beat_baselines", bool),
        source=source,
        monitoring=parse_thresholds(r.get("monitoring", dict, required=False), source),
    )


class SpecReader:
    """Dotted-key access to a TOML dictionary with errors that name the file and field.

    `known` maps each section to its keys (default: a family spec's).
    """

    def __init__(self, raw: dict, source: str, known: dict[str, set[str]] | None = None):
        self.raw, self.source = raw, source
        self.known = _KNOWN_KEYS if known is None else known

    def fail(self, key: str, problem: str):
        raise ValueError(f"{self.source}: {key} {problem}")

    def check_keys(self) -> None:
        for key in set(self.raw) - {"family", "description", "hyperparameters", *self.known}:
            self.fail(key, "is not a spec field")
        for section, known in self.known.items():
            for key in set(self.raw.get(section, {})) - known:
                self.fail(f"{section}.{key}", "is not a spec field")

    def get(self, key: str, kind: type, required: bool = True):
        node = self.raw
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if required:
                    self.fail(key, "is missing")
                return None
            node = node[part]
        if kind is float and isinstance(node, int) and not isinstance(node, bool):
            node = float(node)
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            self.fail(key, f"must be a {kind.__name__}, got {node!r}")
        return node
