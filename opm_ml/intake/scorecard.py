"""Weighted intake scorecard and MoSCoW class, configured by a versioned TOML file.

Criteria (measures in `scales.MEASURES`), each scored 0..1 by the fixed scale of the scorecard
version, so a candidate's score never depends on the others scored with it:
* financial_value: risk-adjusted NPV as a share of the expected costs' present value;
* strategic_fit: objective-weighted alignment / 10 (the contract's strategic_fit / 10 for a
  candidate without alignment scores);
* risk: 1 - (P(late) + min(1, max(0, P90 overrun %) / 100)) / 2;
* resource_load: P50 effort hours, against the organisation's past projects.
Each criterion's points = weight x score x 100; the total is their sum (0..100). Weights of
criteria and objectives are typed or come from pairwise comparisons (`weighting`).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.intake import scales, weighting
from opm_ml.intake.weighting import Weighting
from opm_ml.settings import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "models" / "intake_scorecard.toml"
CRITERIA = ("financial_value", "strategic_fit", "risk", "resource_load")
MOSCOW = ("must", "should", "could", "won't")
# What a weights override may hold (a weights file, the API): the scorecard file's own keys.
WEIGHT_KEYS = ("weights", "criteria_comparisons", "objectives", "objective_comparisons")


@dataclass(frozen=True)
class ScorecardConfig:
    """One scorecard version: weights, fixed scales, MoSCoW thresholds and their digests."""

    version: str
    digest: str  # sha256 of the TOML file, which pins the reference by its own sha256
    criteria: Weighting
    objectives: Weighting
    should_min_score: float
    could_min_score: float
    scales: dict[str, scales.Curve | scales.Percentile]
    reference_digest: str | None = None

    @property
    def weights(self) -> dict[str, float]:
        return self.criteria.weights

    def with_weights(self, weights=None, criteria_comparisons=None, objectives=None,
                     objective_comparisons=None) -> ScorecardConfig:
        """This scorecard with other weights (typed or AHP); what is not given stays.

        The keys are the scorecard file's: [weights] or criteria_comparisons for the criteria,
        [objectives] or objective_comparisons for the strategic objectives.
        """
        criteria = weighting.resolve("weights", weights, "criteria_comparisons",
                                     criteria_comparisons, CRITERIA, "criterion")
        objectives = weighting.resolve("objectives", objectives, "objective_comparisons",
                                       objective_comparisons, list(self.objectives.weights),
                                       "objective")
        return replace(self, criteria=criteria or self.criteria,
                       objectives=objectives or self.objectives)

    def describe(self) -> dict:
        """Version, digests, weights and scales, as answers report them."""
        return {"version": self.version, "digest": self.digest,
                "reference_digest": self.reference_digest,
                "criteria": self.criteria.describe(), "objectives": self.objectives.describe(),
                "scales": {c: s.describe() for c, s in self.scales.items()},
                "moscow": {"should_min_score": self.should_min_score,
                           "could_min_score": self.could_min_score}}


def _toml(text: str, path: Path) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


def _weighting(data: dict, table: str, comparisons: str, names, what: str,
               path: Path) -> Weighting | None:
    try:
        return weighting.resolve(table, data.get(table), comparisons, data.get(comparisons),
                                 names, what)
    except weighting.WeightsError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_config(path: Path | str | None = None) -> ScorecardConfig:
    """Read the scorecard (default models/intake_scorecard.toml) and check every part."""
    path = Path(path or DEFAULT_CONFIG)
    raw = path.read_bytes()
    data = _toml(raw.decode(), path)
    if "version" not in data:
        raise ValueError(f"{path}: missing `version`")
    criteria = _weighting(data, "weights", "criteria_comparisons", CRITERIA, "criterion", path)
    if criteria is None:
        raise ValueError(f"{path}: needs [weights] or criteria_comparisons for "
                         f"{', '.join(CRITERIA)}")
    # The objectives are whatever the file names; none at all: alignment scores are refused.
    objectives = (_weighting(data, "objectives", "objective_comparisons", None, "objective", path)
                  or Weighting({"_": 1.0}, "typed"))
    moscow_rules = data.get("moscow", {})
    should = moscow_rules.get("should_min_score", 60)
    could = moscow_rules.get("could_min_score", 40)
    if not 0 <= could <= should <= 100:
        raise ValueError(f"{path}: need 0 <= could_min_score <= should_min_score <= 100")
    reference, reference_digest = None, None
    if "reference" in data:
        ref = data["reference"]
        if "file" not in ref or "sha256" not in ref:
            raise ValueError(f"{path}: [reference] needs `file` and `sha256`")
        reference_digest = str(ref["sha256"])
        reference = scales.read_reference(path.parent / ref["file"], reference_digest,
                                          f"{path}: [reference]")
    tables = data.get("scales", {})
    if set(tables) != set(CRITERIA):
        raise ValueError(f"{path}: [scales] must have a table for each of {', '.join(CRITERIA)}; "
                         f"got {', '.join(tables) or 'none'}")
    fixed = {c: scales.load_scale(tables[c], reference, f"{path}: scales.{c}") for c in CRITERIA}
    return ScorecardConfig(str(data["version"]), "sha256:" + hashlib.sha256(raw).hexdigest(),
                           criteria, objectives, float(should), float(could), fixed,
                           reference_digest)


def read_weights(path: Path | str) -> dict:
    """A weights override file: any of WEIGHT_KEYS, as in the scorecard file."""
    path = Path(path)
    data = _toml(path.read_text(), path)
    if unknown := set(data) - set(WEIGHT_KEYS):
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; a weights file "
                         f"holds {', '.join(WEIGHT_KEYS)}")
    if not data:
        raise ValueError(f"{path}: no weights; give one of {', '.join(WEIGHT_KEYS)}")
    return data


def strategic_fit(alignment: pd.DataFrame, contract_fit: np.ndarray,
                  objectives: dict[str, float], version: str = "") -> np.ndarray:
    """0..1 fit per row: objective-weighted alignment / 10; the contract's fit / 10 where a row
    has no alignment score at all (so a candidate scores the same in any batch)."""
    fallback = np.asarray(contract_fit, float) / 10
    if alignment.shape[1] == 0:
        return fallback
    given = {c.removeprefix("alignment_") for c in alignment.columns}
    if given != set(objectives):
        raise ValueError(
            f"alignment columns ({', '.join(sorted(given))}) must match the scorecard "
            f"objectives ({', '.join(sorted(objectives))}) of version {version}")
    values = alignment.to_numpy(float)
    w = np.array([objectives[c.removeprefix("alignment_")] for c in alignment.columns])
    none = np.isnan(values).all(axis=1)
    fit = np.nan_to_num(values) @ w / 10
    return np.where(none, fallback, fit)


def criterion_scores(measures: pd.DataFrame, config: ScorecardConfig) -> pd.DataFrame:
    """Every criterion's 0..1 score: its measure through the scorecard's fixed scale."""
    return pd.DataFrame({c: config.scales[c](measures[c].to_numpy(float)) for c in CRITERIA})


def points(scores: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Points per criterion (weight x score x 100) and their total."""
    out = pd.DataFrame({f"points_{c}": 100 * weights[c] * scores[c] for c in CRITERIA})
    out["score"] = out.sum(axis=1)
    return out


def moscow(score, risk_adjusted_npv, mandatory, config: ScorecardConfig) -> np.ndarray:
    """MoSCoW class by the rules documented in the config file (mandatory first)."""
    score = np.asarray(score, float)
    return np.select(
        [np.asarray(mandatory, bool), np.asarray(risk_adjusted_npv) < 0,
         score >= config.should_min_score, score >= config.could_min_score],
        ["must", "won't", "should", "could"], "won't").astype(object)
