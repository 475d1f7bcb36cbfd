"""Weights of the scorecard's criteria or objectives: typed, or from pairwise comparisons.

One rule for the scorecard file, the CLI's weights file and the API: either a mapping
name -> weight (normalised to sum 1) or AHP judgements (`opm_ml.intake.ahp`), never both.
Errors are WeightsError naming the field they came from, so the API answers a 422 on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opm_ml.intake import ahp


class WeightsError(ValueError):
    """Unusable weights or judgements; `field` names the input they came from."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True)
class Weighting:
    """Normalised weights and where they came from (typed, or AHP with its consistency)."""

    weights: dict[str, float]
    source: str  # "typed" or "pairwise comparisons"
    priorities: ahp.Priorities | None = None

    def describe(self) -> dict:
        """JSON-ready: weights, source and, for AHP, lambda_max and the consistency ratio."""
        out = {"weights": {k: round(v, 6) for k, v in self.weights.items()},
               "source": self.source}
        if self.priorities is not None:
            out["lambda_max"] = round(self.priorities.lambda_max, 6)
            out["consistency_ratio"] = round(self.priorities.consistency_ratio, 6)
        return out


def typed(field: str, values: Mapping[str, float], names: Sequence[str] | None,
          what: str) -> Weighting:
    """A name -> weight mapping over exactly `names` (any names when None), non-negative,
    normalised to sum 1."""
    given = set(values)
    names = list(values) if names is None else names
    if given != set(names):
        missing, unknown = set(names) - given, given - set(names)
        detail = "; ".join(filter(None, [
            f"missing {', '.join(sorted(missing))}" if missing else "",
            f"unknown {', '.join(sorted(unknown))}" if unknown else ""]))
        raise WeightsError(field, f"needs a weight for each {what} ({', '.join(names)}): {detail}")
    numbers = {k: float(values[k]) for k in names}
    if any(not v >= 0 for v in numbers.values()) or sum(numbers.values()) <= 0:
        raise WeightsError(field, f"weights must be non-negative and not all zero: {numbers}")
    total = sum(numbers.values())
    return Weighting({k: v / total for k, v in numbers.items()}, "typed")


def compared(field: str, judgements: Sequence[Sequence], names: Sequence[str] | None,
             what: str) -> Weighting:
    """Weights of `names` (the judged ones when None) from complete, consistent judgements."""
    try:
        result = ahp.priorities(judgements, names, what)
    except ValueError as exc:
        raise WeightsError(field, str(exc)) from None
    return Weighting(result.weights, "pairwise comparisons", result)


def resolve(weights_field: str, weights: Mapping | None, comparisons_field: str,
            comparisons: Sequence | None, names: Sequence[str] | None,
            what: str) -> Weighting | None:
    """The one weighting given (typed or compared), None when neither; both is an error."""
    if weights is not None and comparisons is not None:
        raise WeightsError(comparisons_field, f"give {weights_field} or {comparisons_field}, "
                                              "not both")
    if weights is not None:
        return typed(weights_field, weights, names, what)
    if comparisons is not None:
        return compared(comparisons_field, comparisons, names, what)
    return None
