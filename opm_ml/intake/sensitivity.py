"""Weight-stability intervals: how far each weight can move before a MoSCoW class changes.

When criterion k's weight becomes x and the others are rescaled proportionally to fill 1 - x,
a candidate's total is linear in x:

    score(x) = 100 (x s_k + (1 - x) R_k),   R_k = sum_{j != k} w_j s_j / (1 - w_k)

(R_k: the other criteria's weighted mean score; an equal mean when their weights are all 0).
The class holds while score(x) stays within its MoSCoW band, an interval [low, high] around
w_k; outside it the class becomes `below` / `above`. Must-do candidates and candidates without
risk-adjusted value keep their class at any weight, so their interval is [0, 1].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from opm_ml.intake.scorecard import CRITERIA, ScorecardConfig, moscow


def weight_intervals(scores: pd.DataFrame, weights: dict[str, float], risk_adjusted_npv,
                     mandatory, config: ScorecardConfig) -> dict[str, pd.DataFrame]:
    """Per criterion: weight, low, high, and the class below low / above high (None at 0 / 1)."""
    s = scores[list(CRITERIA)].to_numpy(float)
    w = np.array([weights[c] for c in CRITERIA])
    npv, mandatory = np.asarray(risk_adjusted_npv, float), np.asarray(mandatory, bool)
    now = moscow(100 * (s @ w), npv, mandatory, config)
    fixed = mandatory | (npv < 0)  # classes the score does not decide
    # The current class's score band [floor, ceiling), and the classes on either side of it.
    bands = {"should": (config.should_min_score, np.inf),
             "could": (config.could_min_score, config.should_min_score),
             "won't": (-np.inf, config.could_min_score)}
    floor, ceiling = (np.array([bands.get(k, (-np.inf, np.inf))[e] for k in now]) for e in (0, 1))
    under = moscow(np.nextafter(floor, -np.inf), npv, np.zeros_like(mandatory), config)
    over = moscow(ceiling, npv, np.zeros_like(mandatory), config)
    out = {}
    for k, name in enumerate(CRITERIA):
        others = np.delete(np.arange(len(CRITERIA)), k)
        rest_weight = w[others].sum()
        rest = (s[:, others] @ w[others] / rest_weight if rest_weight > 0
                else s[:, others].mean(axis=1))
        slope = s[:, k] - rest  # d score / d x, in 0..1 units
        flat = fixed | (slope == 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            at_floor = (floor / 100 - rest) / slope
            at_ceiling = (ceiling / 100 - rest) / slope
        rising = slope > 0
        low = np.where(flat, 0.0, np.clip(np.where(rising, at_floor, at_ceiling), 0, 1))
        high = np.where(flat, 1.0, np.clip(np.where(rising, at_ceiling, at_floor), 0, 1))
        out[name] = pd.DataFrame({
            "weight": w[k], "low": low, "high": high,
            "below": _where(low > 0, np.where(rising, under, over)),
            "above": _where(high < 1, np.where(rising, over, under)),
        })
    return out


def _where(reached: np.ndarray, classes: np.ndarray) -> pd.Series:
    # object dtype keeps None (pandas would make a string column with NaN of it)
    return pd.Series([str(c) if r else None for r, c in zip(reached, classes)], dtype=object)
