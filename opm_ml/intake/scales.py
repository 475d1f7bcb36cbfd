"""Fixed scales: each criterion maps the candidate's own measure to 0..1, never the batch's.

A scale belongs to a scorecard version (`[scales.<criterion>]` in the TOML file):
* `curve = [[x0, u0], [x1, u1], ...]`: a utility curve, linear between the points (x
  increasing, u in 0..1) and flat beyond the ends;
* `percentile = "<column>"`: the share of the reference population (the organisation's past
  projects, `[reference]`: a CSV next to the scorecard, pinned by its sha256) whose value is
  below the measure, ties counted half; `better = "lower"` scores 1 - share.
Neither looks at the other candidates, so a candidate scores the same alone or in any batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from opm_ml.contract import ACTUAL_EFFORT_COLUMNS, History

# What each criterion measures (computed in `measures`), named in answers and docs.
MEASURES = {
    "financial_value": "risk-adjusted NPV / present value of the expected costs",
    "strategic_fit": "objective-weighted alignment / 10 (or the contract's strategic_fit / 10)",
    "risk": "1 - (P(late) + min(1, max(0, P90 overrun %) / 100)) / 2 (the one term a profile "
            "has when it lacks the delay or the overrun model)",
    "resource_load": "P50 effort hours",
}


def file_digest(path: Path | str) -> str:
    """`sha256:<hex>` of a file's bytes."""
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear utility through `points` (x, u), flat beyond the first and last."""

    points: tuple[tuple[float, float], ...]

    def __call__(self, values) -> np.ndarray:
        x, u = zip(*self.points)
        return np.interp(np.asarray(values, float), x, u)

    def describe(self) -> str:
        return "curve " + ", ".join(f"({x:g}, {u:g})" for x, u in self.points)


@dataclass(frozen=True)
class Percentile:
    """Mid-rank share of the sorted reference values below each value (1 - it when lower wins)."""

    column: str
    reference: np.ndarray  # sorted, finite
    better: str  # "higher" or "lower"

    def __call__(self, values) -> np.ndarray:
        values = np.asarray(values, float)
        below = np.searchsorted(self.reference, values, side="left")
        at_or_below = np.searchsorted(self.reference, values, side="right")
        share = (below + at_or_below) / (2 * len(self.reference))
        return share if self.better == "higher" else 1 - share

    def describe(self) -> str:
        return (f"percentile of {self.column} among {len(self.reference)} reference projects, "
                f"{self.better} is better")


Scale = Callable[[np.ndarray], np.ndarray]


def curve_scale(points, where: str) -> Curve:
    """A checked Curve; ValueError naming `where` (the TOML key) when malformed."""
    try:
        pairs = tuple((float(x), float(u)) for x, u in points)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a list of [x, u] pairs") from None
    xs = [x for x, _ in pairs]
    if len(pairs) < 2 or any(b <= a for a, b in zip(xs, xs[1:])):
        raise ValueError(f"{where} needs at least two points with increasing x")
    if any(not 0 <= u <= 1 for _, u in pairs) or not np.isfinite(xs).all():
        raise ValueError(f"{where}: every u must be in 0..1 and every x finite")
    return Curve(pairs)


def read_reference(path: Path, pinned: str, where: str) -> pd.DataFrame:
    """The reference population, refused unless its bytes have the pinned digest."""
    if not path.is_file():
        raise ValueError(f"{where}: reference file {path} not found")
    digest = file_digest(path)
    if digest != pinned:
        raise ValueError(f"{where}: {path.name} has {digest}, the scorecard pins {pinned}; "
                         "a changed reference needs a new scorecard version and sha256")
    return pd.read_csv(path)


def percentile_scale(reference: pd.DataFrame | None, column: str, better: str,
                     where: str) -> Percentile:
    """A checked Percentile over one numeric column of the reference population."""
    if reference is None:
        raise ValueError(f"{where}: a percentile scale needs the scorecard's [reference]")
    if column not in reference.columns:
        raise ValueError(f"{where}: the reference has no column {column!r} "
                         f"(it has {', '.join(reference.columns)})")
    if better not in ("higher", "lower"):
        raise ValueError(f"{where}: better must be \"higher\" or \"lower\", got {better!r}")
    values = pd.to_numeric(reference[column], errors="coerce").to_numpy(float)
    values = np.sort(values[np.isfinite(values)])
    if len(values) == 0:
        raise ValueError(f"{where}: reference column {column!r} has no numbers")
    return Percentile(column, values, better)


def load_scale(table: dict, reference: pd.DataFrame | None, where: str) -> Curve | Percentile:
    """The scale a `[scales.<criterion>]` table describes (exactly one of curve, percentile)."""
    if ("curve" in table) == ("percentile" in table):
        raise ValueError(f"{where} needs exactly one of `curve` or `percentile`")
    if "curve" in table:
        return curve_scale(table["curve"], f"{where}.curve")
    return percentile_scale(reference, str(table["percentile"]),
                            str(table.get("better", "higher")), where)


def measures(risk_adjusted_npv, expected_cost_pv, fit, probability_late, overrun_pct_p90,
             effort_hours) -> pd.DataFrame:
    """Each criterion's own measure (MEASURES), from one candidate's figures only."""
    npv = np.asarray(risk_adjusted_npv, float)
    cost = np.asarray(expected_cost_pv, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Nothing to pay for: any positive value is the best ratio there is.
        ratio = np.where(cost > 0, npv / cost, np.where(npv > 0, np.inf, 0.0))
    overrun = np.clip(np.asarray(overrun_pct_p90, float), 0, 100) / 100
    late = np.asarray(probability_late, float)
    # A family the served models lack (a dataset profile) is left out of the mean, not zero.
    hazard = np.where(np.isnan(late), overrun,
                      np.where(np.isnan(overrun), late, (late + overrun) / 2))
    return pd.DataFrame({
        "financial_value": ratio,
        "strategic_fit": np.asarray(fit, float),
        "risk": 1 - hazard,
        "resource_load": np.asarray(effort_hours, float),
    })


def build_reference(history: History) -> pd.DataFrame:
    """The reference population of a history: finished projects and their actual total effort.

    One row per finished project with every role's effort booked, by project id, so the same
    history always gives the same file (and digest).
    """
    p = history.projects
    done = p[p["actual_finish_date"].notna() & p[list(ACTUAL_EFFORT_COLUMNS)].notna().all(axis=1)]
    if done.empty:
        raise ValueError("the history has no finished project with its actual effort booked")
    out = pd.DataFrame({"project_id": done["project_id"].astype(str),
                        "effort_hours": done[list(ACTUAL_EFFORT_COLUMNS)].sum(axis=1).round(1)})
    return out.sort_values("project_id").reset_index(drop=True)


def write_reference(frame: pd.DataFrame, path: Path | str) -> str:
    """Write the reference CSV (fixed float format, `\\n` line ends); returns its digest."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.1f", lineterminator="\n")
    return file_digest(path)
