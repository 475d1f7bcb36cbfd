"""One family's forecasts for a batch of projects, written as a DataFrame or as JSON.

`ForecastBatch` keeps everything as arrays (quantiles, extras, SHAP values per stage) and has
the one serializer per shape: `to_frame()` (the MLflow pyfunc's output, batch scoring's
columns) and `to_json()` (the API's `Forecast` objects). Both are built from the same arrays,
so a number is the same wherever it is read.

SHAP: TreeSHAP of the P50 in log(P50 / planned) space: `shap_base + sum(shap__<feature>)` is
the log ratio exactly (features a row's stage does not use are NaN in frames). The late
classifier's values (`late_shap_*`) are in log-odds of its uncalibrated booster.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.forecasting.families import LEVELS, Family, Output
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.forecasting.role_profile import profile_lists, profiles_json

# The last day an ISO date (and Python's `date`) can hold.
LAST_DATE = np.datetime64("9999-12-31")


@dataclass
class StageShap:
    """SHAP values of one stage's rows: `contrib` (m, F + 1), last column the base value.

    Without `values`, `explain(X)` computes them on first use: the late classifier's are only
    written to frames, so answers that never show them skip that TreeSHAP pass.
    """

    stage: str
    rows: np.ndarray
    values: np.ndarray | None
    X: np.ndarray
    names: list[str]
    explain: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def contrib(self) -> np.ndarray:
        if self.values is None:
            self.values = self.explain(self.X)
        return self.values


@dataclass
class ForecastBatch:
    """A family's predictions for every row of `inputs` (see the module docstring)."""

    family: Family
    outputs: tuple[Output, ...]
    inputs: ProjectInputs
    stage: np.ndarray  # per row: "intake" or "inflight"
    values: dict[str, np.ndarray]  # output name -> array (see `Output.kind`)
    shap: list[StageShap]
    late_shap: list[StageShap]
    feature_names: list[str]
    late_threshold: float | None
    roles: tuple[str, ...]
    profiles: list[dict] | None = None

    @property
    def n(self) -> int:
        return self.inputs.n

    @property
    def quantiles(self) -> np.ndarray:
        """(n, 3) P10/P50/P90 of the family's quantity."""
        return self.values[self.family.quantity]

    # --- DataFrame ------------------------------------------------------------------------------

    def to_frame(self, shap: bool = True, late_shap: bool = True,
                 top_k: int | None = None) -> pd.DataFrame:
        """One row per input row: stage, quantiles, extras, then the SHAP columns (with
        `late_shap`, the late classifier's too). With `top_k`, a row keeps its k largest
        |SHAP| values (the others null) and `shap_other` holds their sum, as in JSON."""
        columns: dict[str, object] = {"stage": self.stage}
        for output in self.outputs:
            columns.update(self._frame_columns(output))
        frame = pd.DataFrame(columns)
        if shap and self.shap:
            parts = [frame, self._shap_frame(self.shap, "shap", top_k)]
            if late_shap and self.late_shap:
                parts.append(self._shap_frame(self.late_shap, "late_shap", top_k))
            frame = pd.concat(parts, axis=1)
        return frame

    def _frame_columns(self, output: Output) -> dict[str, object]:
        kind, name = output.kind, output.frame_name
        if kind in ("levels", "dates"):
            return {f"{name}_{lv}": self.values[output.name][:, j] for j, lv in enumerate(LEVELS)}
        if kind == "scalar":
            return {name: self.values[output.name]}
        if kind == "role_levels":
            values = self.values[output.name]
            return {f"{name.format(role=role)}_{lv}": values[:, r, j]
                    for r, role in enumerate(self.roles) for j, lv in enumerate(LEVELS)}
        if kind == "profile":
            return {name: profiles_json(self.profiles)}
        return {}  # constants are JSON-only

    def _shap_frame(self, parts: list[StageShap], prefix: str,
                    top_k: int | None = None) -> pd.DataFrame:
        names = self.feature_names
        index = {f: j for j, f in enumerate(names)}
        values = np.full((self.n, len(names) + 1), np.nan)
        other = np.full(self.n, np.nan)
        for part in parts:
            columns = [index[f] for f in part.names] + [len(names)]
            contrib = part.contrib
            if top_k is not None:
                contrib, other[part.rows] = _top_k(contrib, top_k)
            values[np.ix_(part.rows, columns)] = contrib
        out = pd.DataFrame(values[:, :-1], columns=[f"{prefix}__{f}" for f in names])
        out.insert(0, f"{prefix}_base", values[:, -1])
        if top_k is not None:
            out.insert(1, f"{prefix}_other", other)
        return out

    # --- JSON -----------------------------------------------------------------------------------

    def to_json(self, top_k: int | None = None, compact: bool = False) -> list[dict | None]:
        """Per row (in input order): the API's `Forecast` object as a JSON-ready dict, None
        for a row the family did not forecast (it lacks the planned value).

        `compact` leaves out what `family_info` states once for every row (quantity, unit,
        output space, late threshold) and `prediction`, which repeats `interval.p50`.
        """
        with paused_gc():
            q = _levels(self.quantiles)
            extras = {o.name: self._json_column(o) for o in self.outputs[1:]
                      if not (compact and o.kind == "constant")}
            explained: list[dict | None] = [None] * self.n
            for part in self.shap:
                for row, explanation in zip(part.rows.tolist(),
                                            self._explain(part, top_k, compact)):
                    explained[row] = explanation
            head = {} if compact else {"quantity": self.family.quantity,
                                       "unit": self.family.unit}
            return [
                {"stage": self.stage[i], **head,
                 **({} if compact else {"prediction": q[i]["p50"]}), "interval": q[i],
                 **{name: values[i] for name, values in extras.items()},
                 **({"explanation": explained[i]} if explained[i] is not None else {})}
                if self.stage[i] is not None else None  # no planned value: no forecast
                for i in range(self.n)
            ]

    def _json_column(self, output: Output) -> list:
        values = self.values.get(output.name)
        if output.kind == "levels":
            return _levels(values)
        if output.kind == "scalar":
            return values.tolist()
        if output.kind == "constant":
            return [getattr(self, output.name)] * self.n
        if output.kind == "dates":
            return _levels(iso_dates(values))
        if output.kind == "role_levels":
            return [{role: dict(zip(LEVELS, row[r])) for r, role in enumerate(self.roles)}
                    for row in values.tolist()]
        if output.kind == "profile":
            return profile_lists(self.profiles)
        raise ValueError(f"unknown output kind {output.kind!r}")

    def _explain(self, part: StageShap, top_k: int | None, compact: bool = False) -> list[dict]:
        """Base value, contributions sorted by |contribution| (top_k), the rest summed.

        base_value + sum(all contributions) = prediction, in the output space; with `top_k`,
        the left-out features' sum is reported so the identity still holds for what is shown.
        """
        contrib, base = part.contrib[:, :-1], part.contrib[:, -1]
        names = part.names
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")
        k = contrib.shape[1] if top_k is None else min(top_k, contrib.shape[1])
        order = order[:, :k]
        shown = contrib[np.arange(len(order))[:, None], order]  # take_along_axis, ~4x cheaper
        rest = contrib.sum(axis=1) - shown.sum(axis=1)
        values = part.X.astype(object)
        values[np.isnan(part.X)] = None  # NaN features (e.g. no percent_complete) -> null
        for j, name in enumerate(names):
            if name in self.inputs.manifest.categories:  # the label as given, seen or not
                values[:, j] = self.inputs.columns[name][part.rows]
        prediction = (base + contrib.sum(axis=1)).tolist()
        space = {} if compact else {"output_space": self.family.output_space}
        return [
            {**space, "base_value": b, "prediction": p,
             "contributions": [{"feature": names[j], "value": row_values[j], "contribution": c}
                               for j, c in zip(cols, row_contrib)],
             "other_features_contribution": r}
            for cols, row_values, row_contrib, b, p, r in zip(
                order.tolist(), values.tolist(), shown.tolist(), base.tolist(), prediction,
                rest.tolist())
        ]


def family_info(family: Family, outputs: tuple[Output, ...],
                late_threshold: float | None) -> dict:
    """What every forecast of a family shares: what a compact answer states once."""
    out = {"quantity": family.quantity, "unit": family.unit, "output_space": family.output_space}
    if any(o.kind == "constant" for o in outputs):
        out["late_threshold"] = late_threshold
    return out


def _top_k(contrib: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(contrib with all but each row's k largest |values| set to NaN, base column kept;
    the sum of those left out), ranked as `_explain` ranks them."""
    values = contrib[:, :-1]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    dropped = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(dropped, order[:, k:], True, axis=1)
    kept = np.where(dropped, np.nan, values)
    rest = values.sum(axis=1) - np.where(dropped, 0.0, values).sum(axis=1)
    return np.column_stack([kept, contrib[:, -1]]), rest


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside the block (then as before).

    A JSON answer is millions of new dicts and lists (10,000 explained projects), none of them
    in a cycle; each allocation threshold crossed meanwhile scans every one of them again,
    which took three quarters of the time of writing such an answer. Safe across threads: the
    block that paused collection resumes it.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _levels(values: np.ndarray) -> list[dict]:
    return [dict(zip(LEVELS, row)) for row in np.asarray(values, dtype=object).tolist()]


def iso_dates(days: np.ndarray) -> np.ndarray:
    """datetime64[D] values as ISO text; None where undefined (NaT) or after 9999-12-31.

    Such dates come from absurd extrapolations (e.g. the delay forecast of a project that has
    earned almost nothing) and no ISO date can write them, so they are left out, not malformed.
    """
    text = np.datetime_as_string(days, unit="D").astype(object)
    text[np.isnat(days) | (days > LAST_DATE)] = None
    return text
