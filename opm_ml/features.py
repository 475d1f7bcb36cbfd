"""The one feature computation: raw project columns in, model features out (training and serving).

`feature_arrays(columns, stage, manifest)` is the core: aligned numpy arrays of a manifest's
input columns in (numbers as float, categories as labels, dates as datetime64; in flight also
the status snapshot), feature arrays out, with the same lines for one row and for 100,000.
`build_features(frame, stage, manifest)` runs the core on a DataFrame's columns (training);
`opm_ml.forecasting.inputs.ProjectInputs` runs it for prediction. The manifest (from the
dataset profile, see `opm_ml.manifest`) says which features a stage has; without one, the
built-in contract's. Features are profile columns, declared derived expressions, and in flight
the earned-value indices and ratios, which are scale-free, so one model serves portfolios of
any currency or size. Category codes are positions in the manifest's levels, stable between
training and serving; a missing or unseen value is NaN (the trees' missing-value branch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from opm_ml.categories import category_labels
from opm_ml.expressions import compile_expression
from opm_ml.contract_manifest import CONTRACT_MANIFEST
from opm_ml.manifest import EVM_FEATURES, TIME_FEATURES, FeatureManifest
from opm_ml.opm_metrics import evm_columns

STATUS_INPUT_COLUMNS = ("status_date", "pv", "ev", "ac", "percent_complete")
# percent_complete may be missing in a status report; the other four define the snapshot.
REQUIRED_STATUS_COLUMNS = ("status_date", "pv", "ev", "ac")
# EAC/BAC and IEAC(t)/plan beyond these are measurement noise, not forecasts (see _bounded_ratio).
INDEX_RATIO_BOUNDS = (0.1, 10.0)


def contract_manifest() -> FeatureManifest:
    """The built-in synthetic contract's manifest (the default profile)."""
    return CONTRACT_MANIFEST


@dataclass(frozen=True)
class StatusMetrics:
    """OPM metrics of aligned status snapshots as arrays, shared by features and responses."""

    values: dict[str, np.ndarray]  # METRIC_COLUMNS but the date: float, NaN where undefined
    forecast_finish: np.ndarray  # datetime64[D], NaT where undefined
    undefined: list[str]  # per snapshot, `evm_frame`'s "metric: reason; ..." ("" when none)

    def reasons(self) -> list[dict[str, str]]:
        """Per snapshot, undefined metric -> reason (`{"cpi": "ac is 0", ...}`)."""
        parsed: dict[str, dict[str, str]] = {}  # few distinct texts: parse each once
        for text in set(self.undefined):
            parsed[text] = dict(p.split(": ", 1) for p in text.split("; ")) if text else {}
        return [parsed[text] for text in self.undefined]


def status_metrics(columns: Mapping[str, np.ndarray]) -> StatusMetrics:
    """OPM metrics of the snapshots in `columns` (contract names; each row its own project).

    Needs `budget_at_completion, planned_duration_days, start_date, status_date, pv, ev, ac`.
    Arrays in, arrays out (`evm_columns`: the `opm_metrics` core with no frame or result
    object around it, ~0.1 ms for one snapshot); ValueError naming the field for
    inconsistent input, worded as `evm_single`'s for one snapshot and `evm_frame`'s for more.
    """
    values, finish, undefined = evm_columns(
        bac=columns["budget_at_completion"], pv=columns["pv"], ev=columns["ev"],
        ac=columns["ac"], start_date=columns["start_date"],
        planned_duration_days=columns["planned_duration_days"],
        status_date=columns["status_date"])
    return StatusMetrics(values, finish.astype("datetime64[D]"), undefined)


def category_codes(labels: np.ndarray, codes: Mapping[str, float]) -> np.ndarray:
    """Labels -> float codes by `codes` (a manifest's); NaN for missing or unseen labels."""
    get = codes.get
    nan = np.nan
    return np.fromiter((get(v, nan) if isinstance(v, str) else nan for v in labels), float,
                       len(labels))


def feature_arrays(columns: Mapping[str, np.ndarray], stage: str = "intake",
                   manifest: FeatureManifest | None = None,
                   metrics: StatusMetrics | None = None) -> dict[str, np.ndarray]:
    """Feature name -> float array for `stage`, in `manifest.stages[stage]` order.

    `columns` holds aligned arrays of the manifest's columns: numbers as float (NaN missing),
    categories as labels (None missing), dates as datetime64; in flight also the snapshot
    columns. `metrics`: the snapshots' OPM metrics when the caller has them already.
    """
    manifest = manifest or contract_manifest()
    if stage not in manifest.stages:
        raise ValueError(f"stage must be one of {', '.join(manifest.stages)}, got {stage!r}")
    names = manifest.stages[stage]
    out: dict[str, np.ndarray] = {}
    env: dict[str, np.ndarray] = {}  # what derived expressions read: numbers, dates, features
    for column in manifest.columns:
        if column.name not in columns or (column.stage == "snapshot" and stage == "intake"):
            continue
        values = columns[column.name]
        if column.kind == "category":
            if column.name in names:
                out[column.name] = category_codes(values, manifest.codes[column.name])
        else:
            env[column.name] = values
            if column.name in names:
                out[column.name] = values
    if stage == "inflight":
        status = _status_features(columns, manifest, metrics)
        out.update(status)
        env.update(status)
    for name, text in manifest.derived:
        if name in names:
            env[name] = out[name] = _compiled(text).evaluate(env)
    return {name: out[name] for name in names}


def _status_features(columns, manifest: FeatureManifest,
                     metrics: StatusMetrics | None) -> dict[str, np.ndarray]:
    """`elapsed_fraction` and, with pv/ev/ac, the earned-value features of the snapshots."""
    out: dict[str, np.ndarray] = {}
    if not manifest.has(*("start_date", "status_date", "planned_duration_days")):
        return out
    duration = columns["planned_duration_days"]
    if not manifest.evm:
        at = (columns["status_date"].astype("datetime64[D]")
              - columns["start_date"].astype("datetime64[D]")).astype(float)
        out[TIME_FEATURES[0]] = at / duration
        return out
    m = (status_metrics(columns) if metrics is None else metrics).values
    budget = columns["budget_at_completion"]
    pv, ev, ac = columns["pv"], columns["ev"], columns["ac"]
    out.update({
        "elapsed_fraction": m["at_days"] / duration,
        "pv_fraction": pv / budget,
        "ev_fraction": ev / budget,
        "ac_fraction": ac / budget,
        "spi": m["spi"],
        "cpi": m["cpi"],
        "spi_t": m["spi_t"],
        "sv_t_fraction": m["sv_t_days"] / duration,
        "es_fraction": m["es_days"] / duration,
        "eac_cpi_ratio": _bounded_ratio(m["eac_cpi"] / budget),
        "eac_cpi_spi_ratio": _bounded_ratio(m["eac_cpi_spi"] / budget),
        "ieac_t_ratio": _bounded_ratio(m["ieac_t_days"] / duration),
        "tcpi_bac": m["tcpi_bac"],
    })
    if "percent_complete" in columns:
        # Reported physical progress ahead of earned value hints at optimistic reporting.
        out["progress_gap"] = columns["percent_complete"] / 100.0 - ev / budget
    assert set(out) <= {*TIME_FEATURES, *EVM_FEATURES}
    return out


@lru_cache(maxsize=512)
def _compiled(text: str):
    return compile_expression(text)


def _bounded_ratio(ratio: np.ndarray) -> np.ndarray:
    """An EVM index forecast as a ratio to plan, held within INDEX_RATIO_BOUNDS (NaN kept).

    Early snapshots can give absurd indices (EV = 1 on a 2.4M budget: EAC = 10^6 x BAC); the
    in-flight models anchor on these ratios, so unbounded they would turn into forecasts
    centuries late. In generated history under 1 in 1,000 snapshots, all in a project's first
    weeks, fall outside; the 25/50/75 % snapshots the models train on never do.
    """
    return np.clip(ratio, *INDEX_RATIO_BOUNDS)


def feature_matrix(features: Mapping[str, np.ndarray] | pd.DataFrame,
                   names: Sequence[str]) -> np.ndarray:
    """The `names` columns of `feature_arrays` output or of a `build_features` frame as the
    float64 matrix LightGBM predicts on (categories as codes, NaN where missing)."""
    if isinstance(features, pd.DataFrame):
        features = {name: _float_values(features[name]) for name in names}
    n = len(features[names[0]]) if len(names) else 0
    matrix = np.empty((n, len(names)))  # C order, as LightGBM wants it
    for j, name in enumerate(names):
        matrix[:, j] = features[name]
    return matrix


def has_status(frame: pd.DataFrame,
               required: Sequence[str] = REQUIRED_STATUS_COLUMNS) -> np.ndarray:
    """Which rows carry a status snapshot (and so go to the in-flight model).

    A row with some but not all of the `required` status columns is an error: silently
    scoring it at intake would hide the caller's mistake.
    """
    present = [c for c in required if c in frame.columns]
    if not present or not required:
        return np.zeros(len(frame), dtype=bool)
    filled = frame[present].notna().to_numpy()
    complete = filled.all(axis=1) & (len(present) == len(required))
    partial = filled.any(axis=1) & ~complete
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        missing = [c for c in required if c not in frame.columns or pd.isna(frame[c].iloc[row])]
        raise ValueError(
            f"{int(partial.sum())} row(s) carry a partial status snapshot (first: row {row}, "
            f"missing {', '.join(missing)}); give all of {', '.join(required)} or none"
        )
    return complete


def frame_columns(frame: pd.DataFrame, manifest: FeatureManifest,
                  stage: str = "inflight") -> dict[str, np.ndarray]:
    """A frame's manifest columns as the arrays `feature_arrays` takes (ValueError if unusable).

    Columns of `stage` must be present (snapshot columns only in flight, optional ones may
    be absent and read as missing); numbers must be numeric, dates must parse.
    """
    out: dict[str, np.ndarray] = {}
    for column in manifest.columns:
        if column.stage not in ("intake", "snapshot") or \
                (column.stage == "snapshot" and stage == "intake"):
            continue
        if column.name not in frame.columns:
            if not column.nullable and column.stage == "intake":
                raise ValueError(f"missing intake column(s): {column.name}")
            out[column.name] = _missing(column.kind, len(frame))
            continue
        values = frame[column.name]
        if column.kind == "category":
            out[column.name] = _labels(values)
        elif column.kind == "date":
            out[column.name] = _dates(values, column.name)
        elif column.kind in ("int", "float", "bool"):
            out[column.name] = _numeric(values, column.name)
    return out


def build_features(frame: pd.DataFrame, stage: str = "intake",
                   manifest: FeatureManifest | None = None) -> pd.DataFrame:
    """Model features for `stage` ("intake" or "inflight") from a frame of raw columns.

    In flight every row must carry a complete status snapshot (see `has_status`). Categories
    come back as pandas categoricals with the manifest's levels, the rest as float64.
    """
    manifest = manifest or contract_manifest()
    if stage not in manifest.stages:
        raise ValueError(f"stage must be one of {', '.join(manifest.stages)}, got {stage!r}")
    missing = [c for c in manifest.intake_columns if c not in frame.columns
               and not manifest.column(c).nullable]
    if missing:
        raise ValueError(f"missing intake column(s): {', '.join(missing)}")
    _check_closed_categories(frame, manifest)
    if stage == "inflight" and not has_status(frame, manifest.status_required).all():
        raise ValueError("in-flight features need " + ", ".join(manifest.status_required)
                         + " on every row")
    features: dict = feature_arrays(frame_columns(frame, manifest, stage), stage, manifest)
    for name, levels in manifest.categories.items():
        if name in features:
            codes = np.where(np.isnan(features[name]), -1, features[name]).astype(np.int64)
            features[name] = pd.Categorical.from_codes(codes, categories=list(levels))
    return pd.DataFrame(features, index=frame.index)


def _check_closed_categories(frame: pd.DataFrame, manifest: FeatureManifest) -> None:
    for name in manifest.closed:
        if name not in frame.columns:
            continue
        allowed = manifest.categories[name]
        unknown = sorted(set(category_labels(frame[name]).dropna()) - set(allowed))
        if unknown:
            raise ValueError(f"column {name} has unknown value(s) {unknown[:5]}; allowed: "
                             f"{', '.join(allowed)}")


def _missing(kind: str, n: int) -> np.ndarray:
    if kind == "category":
        return np.full(n, None, dtype=object)
    if kind == "date":
        return np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    return np.full(n, np.nan)


def _labels(values: pd.Series) -> np.ndarray:
    """Category labels as an object array of str (None where missing), spelled as training
    spelled them (`opm_ml.categories`: a code 4.0 is the level "4")."""
    return category_labels(values).to_numpy(dtype=object)


def _numeric(values: pd.Series, name: str) -> np.ndarray:
    try:
        numbers = pd.to_numeric(values, errors="raise")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must be numeric: {exc}") from None
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _float_values(values: pd.Series) -> np.ndarray:
    """A feature column as floats: a categorical's codes (NaN for missing) or its numbers."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        return np.where(codes < 0, np.nan, codes.astype(float))
    return values.to_numpy(dtype=float, na_value=np.nan)


def _dates(values: pd.Series, name: str) -> np.ndarray:
    try:
        dates = pd.to_datetime(values, errors="raise").astype("datetime64[ns]")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"column {name} must hold ISO dates: {exc}") from None
    return dates.to_numpy().astype("datetime64[D]")
