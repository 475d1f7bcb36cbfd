"""A feature's distribution in a few numbers, and how far new values have moved from it.

`describe` keeps what drift needs from the training rows: bin edges with their shares and the
share missing (for the population stability index), and 101 percentiles (for a two-sample
Kolmogorov-Smirnov statistic). `compare` measures new values against it. Numbers with few
distinct values (1-5 scales, counts) get one bin per value; the others ten quantile bins.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BINS = 10
PERCENTILES = np.linspace(0, 100, 101)
# Shares are floored at this before the PSI's log ratio: an empty bin on one side must count
# as a large shift, not an infinite one.
_FLOOR = 1e-4


@dataclass(frozen=True)
class Distribution:
    """The reference distribution of one feature or model output (see module docstring).

    `shares`: per bin, then a last entry for missing values; bins are the intervals between
    `edges` (numbers) or the `levels` (categories, coded 0..k-1; an unseen code counts as
    missing, as the models treat it).
    """

    kind: str  # number | category
    n: int
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    quantiles: tuple[float, ...] = ()
    levels: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Distribution:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value; the last index (len(shares) - 1) for missing ones."""
        values = np.asarray(values, dtype=float)
        missing = len(self.shares) - 1
        if self.kind == "category":
            codes = np.where(np.isfinite(values), values, -1).astype(np.int64)
            return np.where((codes >= 0) & (codes < missing), codes, missing)
        bins = np.searchsorted(np.asarray(self.edges), values, side="right")
        return np.where(np.isfinite(values), bins, missing)


def describe(values: np.ndarray, kind: str, levels: tuple[str, ...] = ()) -> Distribution:
    """The reference distribution of `values` (floats; category codes for categories)."""
    values = np.asarray(values, dtype=float)
    present = values[np.isfinite(values)]
    if kind == "category":
        shell = Distribution("category", len(values), (0.0,) * (len(levels) + 1),
                             levels=tuple(levels))
        return _with_shares(shell, values)
    quantiles = tuple(np.percentile(present, PERCENTILES).tolist()) if len(present) else ()
    tol = _tolerance(present)
    distinct = np.unique(np.round(present / tol)) * tol
    if len(distinct) <= 2 * BINS:  # a scale or a small count: one bin per value seen
        edges = (distinct[:-1] + distinct[1:]) / 2
    else:
        edges = np.unique(np.percentile(present, np.linspace(0, 100, BINS + 1)[1:-1]))
    shell = Distribution("number", len(values), (0.0,) * (len(edges) + 2),
                         tuple(edges.tolist()), quantiles)
    return _with_shares(shell, values)


def _tolerance(values: np.ndarray) -> float:
    """Values closer than this are one value: rounding noise (a feature that is 0 up to
    1e-16 in training must not drift because a client's JSON carries 1e-11)."""
    return 1e-9 * max(1.0, float(np.max(np.abs(values)))) if len(values) else 1e-9


def _with_shares(shell: Distribution, values: np.ndarray) -> Distribution:
    return Distribution(shell.kind, shell.n, tuple(shares(shell, values).tolist()), shell.edges,
                        shell.quantiles, shell.levels)


def shares(reference: Distribution, values: np.ndarray) -> np.ndarray:
    """Share of `values` in each of the reference's bins (missing last)."""
    counts = np.bincount(reference.bin_of(values), minlength=len(reference.shares))
    return counts / max(len(values), 1)


def psi(reference: Distribution, values: np.ndarray) -> float:
    """Population stability index of `values` against the reference (0 = same shares).

    sum((actual - expected) x ln(actual / expected)) over the bins; 0.1 is commonly read as a
    moderate shift and 0.25 as a large one.
    """
    expected = np.maximum(np.asarray(reference.shares), _FLOOR)
    actual = np.maximum(shares(reference, values), _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: Distribution, values: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic against the reference's percentiles.

    The 101 percentiles stand in for the training values (the reference CDF to within one
    percentile); None for categories or without values on either side.
    """
    values = np.asarray(values, dtype=float)
    values = np.sort(values[np.isfinite(values)])
    ref = np.asarray(reference.quantiles)
    if reference.kind != "number" or not len(values) or not len(ref):
        return None
    tol = _tolerance(ref)  # compare on the grid the bins use, so rounding noise is no shift
    ref, values = np.round(ref / tol) * tol, np.round(values / tol) * tol
    points = np.concatenate([ref, values])
    ref_cdf = np.searchsorted(ref, points, side="right") / len(ref)
    new_cdf = np.searchsorted(values, points, side="right") / len(values)
    return float(np.max(np.abs(ref_cdf - new_cdf)))


def compare(reference: Distribution, values: np.ndarray) -> dict:
    """n, PSI, KS and the share missing of `values` against the reference (PSI and KS are
    None without values: nothing has moved or stayed)."""
    values = np.asarray(values, dtype=float)
    empty = not len(values)
    return {"n": int(len(values)), "psi": None if empty else psi(reference, values),
            "ks": ks(reference, values),
            "missing": None if empty else float(np.mean(~np.isfinite(values))),
            "reference_missing": float(reference.shares[-1])}
