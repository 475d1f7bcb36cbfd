"""Realised accuracy: logged forecasts against what the finished projects really did.

The metrics are training's (`training/evaluation.py`) so the two compare: MAPE of the P50 in
natural units, P10-P90 coverage, pinball loss in log-ratio space, the Brier score of P(late)
with its reliability curve, and the bias of the P50 (mean signed % error; negative = too low).
An in-flight forecast is judged at the progress point it was made (the nearest of the model's
points, as training picks its examples), next to the model's held-out MAPE at that point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

LEVELS = (0.1, 0.5, 0.9)
DEFAULT_POINTS = (25.0, 50.0, 75.0)
# (name, columns): forecast months are split by model version, so the error over time of
# each version shows (the dashboard's "realised error over time" chart).
GROUPS = (("stage", ("label",)), ("model_version", ("model_version",)),
          ("project_type", ("project_type",)), ("month", ("month", "model_version")))
# heldout(family, version) -> that version's training metrics (`intake/mape`, ...), or None.
Heldout = Callable[[str, str], "Mapping[str, float] | None"]


def progress_points(metrics: Mapping[str, float] | None) -> tuple[float, ...]:
    """The in-flight progress points a model was evaluated at (from its metric names)."""
    found = sorted({float(k.split("/")[0][len("inflight_p"):]) for k in (metrics or {})
                    if k.startswith("inflight_p") and k.endswith("/mape")})
    return tuple(found) or DEFAULT_POINTS


def stage_labels(stage: pd.Series, progress: pd.Series, points: Sequence[float]) -> pd.Series:
    """`intake`, or `inflight_p<point>` for the point nearest the forecast's progress."""
    grid = np.asarray(points, dtype=float)
    pct = progress.to_numpy(dtype=float, na_value=np.nan)
    nearest = grid[np.abs(pct[:, None] - grid[None, :]).argmin(axis=1)] if len(pct) else pct
    labels = np.where(np.isnan(pct), "inflight", [f"inflight_p{p:g}" for p in nearest])
    return pd.Series(np.where(stage.to_numpy() == "intake", "intake", labels), index=stage.index)


def metrics(rows: pd.DataFrame) -> dict[str, float | int | None]:
    """Realised metrics of judged forecasts (columns p10, p50, p90, actual, planned, ...)."""
    actual, p50 = rows["actual"].to_numpy(float), rows["p50"].to_numpy(float)
    q = rows[["p10", "p50", "p90"]].to_numpy(float)
    diff = np.log(actual)[:, None] - np.log(q)
    lv = np.asarray(LEVELS)[None, :]
    out = {
        "n": int(len(rows)),
        "mape": float(np.mean(np.abs(p50 - actual) / actual) * 100),
        "coverage_80": float(np.mean((actual >= q[:, 0]) & (actual <= q[:, 2]))),
        "pinball": float(np.mean(np.maximum(lv * diff, (lv - 1) * diff))),
        "bias_pct": float(np.mean((p50 - actual) / actual) * 100),
        "brier": None,
    }
    p, late = late_pairs(rows)
    if len(p):
        out["brier"] = float(np.mean((p - late) ** 2))
    return out


def late_pairs(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(P(late), 1 if the project finished later than planned x (1 + threshold)) pairs."""
    has = rows["probability_late"].notna().to_numpy()
    if not has.any():
        return np.empty(0), np.empty(0)
    r = rows[has]
    late = r["actual"].to_numpy(float) > r["planned"].to_numpy(float) * (
        1 + r["late_threshold"].to_numpy(float))
    return r["probability_late"].to_numpy(float), late.astype(float)


def reliability(rows: pd.DataFrame, bins: int = 10) -> list[dict]:
    """Reliability curve of P(late): per forecast bin, mean forecast vs observed late share."""
    p, late = late_pairs(rows)
    which = np.minimum((p * bins).astype(int), bins - 1)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int((which == b).sum()),
             "forecast": float(p[which == b].mean()), "observed": float(late[which == b].mean())}
            for b in range(bins) if (which == b).any()]


def expected_mape(rows: pd.DataFrame, heldout: Heldout) -> float | None:
    """Held-out MAPE the answering models had at these rows' stages and progress points."""
    expected = []
    for (family, version, label), part in rows.groupby(["family", "model_version", "label"]):
        value = (heldout(family, version) or {}).get(f"{label}/mape")
        if value is None:
            return None
        expected.append((value, len(part)))
    total = sum(n for _, n in expected)
    return sum(v * n for v, n in expected) / total if total else None


def accuracy_tables(judged: pd.DataFrame, heldout: Heldout,
                    points: Sequence[float] = DEFAULT_POINTS) -> list[dict]:
    """Per family: overall, then by stage, model version, project type and forecast month."""
    if judged.empty:
        return []
    judged = judged.assign(label=stage_labels(judged["stage"], judged["progress"], points),
                           month=judged["logged_at"].dt.strftime("%Y-%m"))
    out = []
    for family, rows in judged.groupby("family", sort=False):
        out.append(_row(family, "all", "all", None, rows, heldout))
        for by, columns in GROUPS:
            for values, part in rows.groupby(list(columns), sort=True, dropna=False):
                version = values[-1] if "model_version" in columns else None
                out.append(_row(family, by, str(values[0]), version, part, heldout))
    return out


def _row(family: str, by: str, group: str, version: str | None, rows: pd.DataFrame,
         heldout: Heldout) -> dict:
    values = metrics(rows)
    expected = expected_mape(rows, heldout)
    rise = values["mape"] / expected - 1 if expected else None
    return {"family": family, "by": by, "group": group, "model_version": version, **values,
            "heldout_mape": expected, "rise": rise}
