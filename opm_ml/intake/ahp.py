"""Weights from pairwise comparisons (AHP): principal eigenvector and Saaty's consistency ratio.

A judgement (a, b, v) reads "a is v times as important as b" on Saaty's scale 1..9 (1 equal,
3 moderate, 5 strong, 7 very strong, 9 extreme; 1/v when b is the more important one). Every
pair is judged once; a_ab = v and a_ba = 1/v fill the reciprocal matrix A. The weights are its
principal eigenvector w (A w = lambda_max w, sum w = 1), and

    CI = (lambda_max - n) / (n - 1),   CR = CI / RI(n)

with RI Saaty's mean CI of random reciprocal matrices. CR above 0.1 is refused: the judgements
contradict each other too much to mean one weighting. The most inconsistent judgement is the
one furthest, in ratio, from what the weights imply (a_ij against w_i / w_j).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Saaty's random index by matrix size (Saaty 1980, The Analytic Hierarchy Process, p. 21).
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45,
                10: 1.49, 11: 1.51, 12: 1.48, 13: 1.56, 14: 1.57, 15: 1.59}
MAX_CONSISTENCY_RATIO = 0.1
SAATY_RANGE = (1 / 9, 9.0)
_FRACTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


class InconsistentJudgements(ValueError):
    """Consistency ratio above the limit; the message names the most inconsistent pair."""


@dataclass(frozen=True)
class Priorities:
    """Weights derived from one comparison matrix, with its consistency figures."""

    weights: dict[str, float]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def saaty_value(value) -> float:
    """A judgement's value: a number, or a fraction written "1/3" (JSON and TOML have none)."""
    if isinstance(value, str):
        match = _FRACTION.match(value)
        if not match or float(match.group(2)) == 0:
            raise ValueError(f"{value!r} is not a number or a fraction such as \"1/3\"")
        value = float(match.group(1)) / float(match.group(2))
    value = float(value)
    # 1e-3 slack: 1/9 typed as 0.111 is still the scale's end.
    if not SAATY_RANGE[0] - 1e-3 <= value <= SAATY_RANGE[1]:
        raise ValueError(f"{value:g} is outside Saaty's scale 1/9..9")
    return value


def comparison_matrix(judgements: Iterable[Sequence], names: Sequence[str] | None = None,
                      what: str = "item") -> tuple[list[str], np.ndarray]:
    """The reciprocal matrix of complete judgements; ValueError naming the faulty pair.

    `names` fixes the items and their order; without it they are the judged ones, in order
    of first mention.
    """
    judgements = [tuple(j) for j in judgements]
    if any(len(j) != 3 for j in judgements):
        raise ValueError("each judgement is [a, b, value]: a is `value` times as important as b")
    if same := next((str(a) for a, b, _ in judgements if str(a) == str(b)), None):
        raise ValueError(f"{same} is compared with itself")
    seen = list(dict.fromkeys(x for a, b, _ in judgements for x in (str(a), str(b))))
    items = list(names) if names is not None else seen
    if unknown := [x for x in seen if x not in items]:
        raise ValueError(f"unknown {what} {unknown[0]!r} (expected: {', '.join(items)})")
    if len(items) < 2:
        raise ValueError(f"pairwise comparisons need at least two {what}s")
    if len(items) > max(RANDOM_INDEX):
        raise ValueError(f"at most {max(RANDOM_INDEX)} {what}s can be compared (Saaty's random "
                         f"index table ends there), got {len(items)}")
    index = {x: k for k, x in enumerate(items)}
    matrix = np.full((len(items), len(items)), np.nan)
    np.fill_diagonal(matrix, 1.0)
    for a, b, value in judgements:
        a, b = str(a), str(b)
        try:
            value = saaty_value(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{a} vs {b}: {exc}") from None
        i, j = index[a], index[b]
        if not np.isnan(matrix[i, j]):
            raise ValueError(f"the pair {a} / {b} is judged more than once")
        matrix[i, j], matrix[j, i] = value, 1 / value
    missing = [f"{items[i]} / {items[j]}" for i in range(len(items))
               for j in range(i + 1, len(items)) if np.isnan(matrix[i, j])]
    if missing:
        n = len(items)
        raise ValueError(f"missing judgement(s) {', '.join(missing)}: {n} {what}s need all "
                         f"{n * (n - 1) // 2} pairs")
    return items, matrix


def principal_eigenvector(matrix: np.ndarray) -> tuple[float, np.ndarray]:
    """(lambda_max, w) of a positive matrix: its Perron root and eigenvector scaled to sum 1."""
    values, vectors = np.linalg.eig(matrix)
    k = int(np.argmax(values.real))
    w = np.abs(vectors[:, k].real)  # the Perron vector has one sign; eig may return it negated
    return float(values[k].real), w / w.sum()


def most_inconsistent(items: Sequence[str], matrix: np.ndarray,
                      w: np.ndarray) -> tuple[str, str, float, float]:
    """(a, b, judged, implied): the judgement whose ratio to w_a / w_b is the largest."""
    implied = w[:, None] / w[None, :]
    error = np.abs(np.log(matrix / implied))
    i, j = np.unravel_index(np.argmax(np.triu(error, 1)), error.shape)
    return items[i], items[j], float(matrix[i, j]), float(implied[i, j])


def _scale_text(value: float) -> str:
    """A Saaty value as people write it: 3, 1/3, 2.5."""
    if value >= 1 or math.isclose(value, 1):
        return f"{value:.3g}"
    return f"1/{1 / value:.3g}"


def priorities(judgements: Iterable[Sequence], names: Sequence[str] | None = None,
               what: str = "item", max_cr: float = MAX_CONSISTENCY_RATIO) -> Priorities:
    """Weights by the principal eigenvector; InconsistentJudgements when CR > `max_cr`."""
    items, matrix = comparison_matrix(judgements, names, what)
    n = len(items)
    lambda_max, w = principal_eigenvector(matrix)
    ci = max(0.0, (lambda_max - n) / (n - 1))  # rounding can put lambda_max a hair below n
    cr = ci / RANDOM_INDEX[n] if RANDOM_INDEX[n] else 0.0
    if cr > max_cr:
        a, b, judged, implied = most_inconsistent(items, matrix, w)
        raise InconsistentJudgements(
            f"judgements are inconsistent (consistency ratio {cr:.3f} > {max_cr:g}); the most "
            f"inconsistent is {a} vs {b}: judged {_scale_text(judged)}, the other judgements "
            f"imply about {implied:.2g}. Revise that pair")
    return Priorities(dict(zip(items, w.tolist())), lambda_max, ci, cr)
