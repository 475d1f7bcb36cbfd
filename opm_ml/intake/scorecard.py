"""Weighted intake scorecard and MoSCoW class, configured by a versioned TOML file.

Criteria, each scored 0..1 so weights are comparable:
* financial_value: risk-adjusted NPV, min-max scaled within the batch (best = 1, worst = 0);
* strategic_fit: objective-weighted mean of the alignment_<objective> scores / 10 (the
  contract's strategic_fit / 10 when no alignment columns are given);
* risk: 1 - (P(late) + min(1, max(0, P90 overrun %) / 100)) / 2;
* resource_load: 1 - predicted P50 effort hours, min-max scaled within the batch.
Min-max scaling makes scores relative to the batch: compare candidates scored together.
Each criterion's points = weight x score x 100; the total is their sum (0..100).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.settings import PROJECT_ROOT

DEFAULT_CONFIG = PROJECT_ROOT / "models" / "intake_scorecard.toml"
CRITERIA = ("financial_value", "strategic_fit", "risk", "resource_load")
MOSCOW = ("must", "should", "could", "won't")


@dataclass(frozen=True)
class ScorecardConfig:
    version: str
    weights: dict[str, float]  # criterion -> weight, sums to 1
    objectives: dict[str, float]  # objective -> weight, sums to 1
    should_min_score: float
    could_min_score: float


def _normalised(weights: dict, what: str) -> dict[str, float]:
    values = {k: float(v) for k, v in weights.items()}
    if any(v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise ValueError(f"{what} weights must be non-negative and not all zero: {values}")
    total = sum(values.values())
    return {k: v / total for k, v in values.items()}


def load_config(path: Path | str | None = None) -> ScorecardConfig:
    """Read the scorecard config (default models/intake_scorecard.toml) and check it."""
    path = Path(path or DEFAULT_CONFIG)
    data = tomllib.loads(path.read_text())
    if "version" not in data:
        raise ValueError(f"{path}: missing `version`")
    weights = data.get("weights", {})
    if set(weights) != set(CRITERIA):
        raise ValueError(f"{path}: [weights] must list exactly {', '.join(CRITERIA)}; "
                         f"got {', '.join(weights) or 'nothing'}")
    moscow = data.get("moscow", {})
    should, could = moscow.get("should_min_score", 60), moscow.get("could_min_score", 40)
    if not 0 <= could <= should <= 100:
        raise ValueError(f"{path}: need 0 <= could_min_score <= should_min_score <= 100")
    return ScorecardConfig(str(data["version"]), _normalised(weights, "criterion"),
                           _normalised(data.get("objectives", {}) or {"_": 1}, "objective"),
                           float(should), float(could))


def _minmax(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return np.ones_like(values) if span == 0 else (values - values.min()) / span


def strategic_fit(alignment: pd.DataFrame, contract_fit: np.ndarray,
                  config: ScorecardConfig) -> np.ndarray:
    """0..1 strategic fit: objective-weighted alignment scores, or the contract's strategic_fit."""
    if alignment.shape[1] == 0:
        return np.asarray(contract_fit, float) / 10
    given = {c.removeprefix("alignment_") for c in alignment.columns}
    if given != set(config.objectives):
        raise ValueError(
            f"alignment columns ({', '.join(sorted(given))}) must match the scorecard "
            f"objectives ({', '.join(sorted(config.objectives))}) of version {config.version}")
    w = np.array([config.objectives[c.removeprefix("alignment_")] for c in alignment.columns])
    return alignment.to_numpy(float) @ w / 10


def criterion_scores(risk_adjusted_npv, fit, probability_late, overrun_pct_p90,
                     effort_hours) -> pd.DataFrame:
    """The four criteria on 0..1 (module docstring)."""
    overrun = np.clip(np.asarray(overrun_pct_p90, float), 0, 100) / 100
    return pd.DataFrame({
        "financial_value": _minmax(np.asarray(risk_adjusted_npv, float)),
        "strategic_fit": np.asarray(fit, float),
        "risk": 1 - (np.asarray(probability_late, float) + overrun) / 2,
        "resource_load": 1 - _minmax(np.asarray(effort_hours, float)),
    })


def points(scores: pd.DataFrame, config: ScorecardConfig) -> pd.DataFrame:
    """Points per criterion (weight x score x 100) and their total."""
    out = pd.DataFrame({f"points_{c}": 100 * config.weights[c] * scores[c] for c in CRITERIA})
    out["score"] = out.sum(axis=1)
    return out


def moscow(score, risk_adjusted_npv, mandatory, config: ScorecardConfig) -> np.ndarray:
    """MoSCoW class by the rules documented in the config file (mandatory first)."""
    score = np.asarray(score, float)
    return np.select(
        [np.asarray(mandatory, bool), np.asarray(risk_adjusted_npv) < 0,
         score >= config.should_min_score, score >= config.could_min_score],
        ["must", "won't", "should", "could"], "won't").astype(object)
