"""Projects to forecast as column arrays: from a DataFrame or validated API requests.

`ProjectInputs` is the one input of a prediction (`FamilyModel.predict`). It holds one array
per manifest column, knows which rows carry a status snapshot (in flight) and computes each
stage's features and the in-flight rows' OPM metrics once, shared by every family that
predicts on it. Unseen category values are kept as warnings per row: they take the models'
missing-value branch and the answer names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from operator import attrgetter

import numpy as np
import pandas as pd

from opm_ml.categories import label_array
from opm_ml.features import (
    StatusMetrics,
    feature_arrays,
    feature_matrix,
    frame_columns,
    has_status,
    status_metrics,
)
from opm_ml.manifest import FeatureManifest

NUMBER_KINDS = ("int", "float", "bool")  # columns held as float arrays (NaN = missing)


class ProjectInputs:
    """Aligned column arrays of `n` projects, split into intake and in-flight rows."""

    def __init__(self, manifest: FeatureManifest, columns: dict[str, np.ndarray],
                 inflight: np.ndarray, ids: Sequence | None = None):
        self.manifest = manifest
        self.columns = columns
        self.n = len(inflight)
        self.inflight_mask = np.asarray(inflight, dtype=bool)
        self.ids = list(ids) if ids is not None else [None] * self.n
        self._features: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        self._matrices: dict[tuple, np.ndarray] = {}

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, manifest: FeatureManifest) -> ProjectInputs:
        """Raw rows (manifest column names); ValueError naming a missing or unusable column."""
        if frame.empty:
            raise ValueError("nothing to predict: the input has no rows")
        frame = frame.reset_index(drop=True)
        inflight = has_status(frame, manifest.status_required)
        columns = frame_columns(frame, manifest, "inflight")
        ids = frame["project_id"].tolist() if "project_id" in frame.columns else None
        return cls(manifest, columns, inflight, ids)

    @classmethod
    def from_requests(cls, items: Sequence, manifest: FeatureManifest) -> ProjectInputs:
        """Validated request objects: manifest intake fields, an optional `status` object."""
        n = len(items)
        statuses = [getattr(i, "status", None) for i in items]
        inflight = np.fromiter((s is not None for s in statuses), bool, n)
        values = {}
        for stage, objects in (("intake", items), ("snapshot", statuses)):
            names = [c.name for c in manifest.columns if c.stage == stage]
            values.update(zip(names, _fields(objects, names)))
        numbers = [c.name for c in manifest.columns if c.kind in NUMBER_KINDS and c.name in values]
        # All number columns in one conversion (None -> NaN): one array call instead of one
        # per column or per value, which is most of the cost for a single project.
        table = np.array([values[name] for name in numbers], dtype=float).reshape(len(numbers), n)
        columns = dict(zip(numbers, table))
        columns.update({c.name: _array(values[c.name], c.kind) for c in manifest.columns
                        if c.kind not in NUMBER_KINDS and c.name in values})
        return cls(manifest, {c.name: columns[c.name] for c in manifest.columns
                              if c.name in columns},
                   inflight, [getattr(i, "project_id", None) for i in items])

    def take(self, positions: np.ndarray | slice) -> ProjectInputs:
        """The projects at `positions` (a slice keeps views): a chunk to predict on its own."""
        ids = self.ids[positions] if isinstance(positions, slice) else \
            [self.ids[i] for i in positions]
        return ProjectInputs(self.manifest, {k: v[positions] for k, v in self.columns.items()},
                             self.inflight_mask[positions], ids)

    # --- rows ---------------------------------------------------------------------------------

    @cached_property
    def intake(self) -> np.ndarray:
        """Positions of the rows the intake models score."""
        return np.flatnonzero(~self.inflight_mask)

    @cached_property
    def inflight(self) -> np.ndarray:
        """Positions of the rows with a status snapshot (the in-flight models score them)."""
        return np.flatnonzero(self.inflight_mask)

    def rows_of(self, stage: str) -> np.ndarray:
        return self.inflight if stage == "inflight" else self.intake

    def stage_columns(self, stage: str) -> dict[str, np.ndarray]:
        """The columns at the stage's rows (the arrays themselves when that is every row)."""
        rows = self.rows_of(stage)
        if len(rows) == self.n:
            return dict(self.columns)
        return {name: values[rows] for name, values in self.columns.items()}

    # --- derived values ------------------------------------------------------------------------

    @cached_property
    def evm(self) -> StatusMetrics | None:
        """OPM metrics of the in-flight rows (None without earned-value columns or rows)."""
        if not self.manifest.evm or not len(self.inflight):
            return None
        return status_metrics(self.stage_columns("inflight"))

    def features(self, stage: str, manifest: FeatureManifest | None = None) -> dict:
        """Feature arrays of the stage's rows, computed once per manifest."""
        manifest = manifest or self.manifest
        key = (manifest.digest, stage)
        if key not in self._features:
            metrics = self.evm if stage == "inflight" and manifest.evm else None
            self._features[key] = feature_arrays(self.stage_columns(stage), stage, manifest,
                                                 metrics)
        return self._features[key]

    def matrix(self, stage: str, manifest: FeatureManifest, names: Sequence[str]) -> np.ndarray:
        """`feature_matrix` of the stage's features in `names` order, built once per
        (manifest, names): the families of one assessment mostly read the same matrix.
        Callers must not write into it."""
        key = (manifest.digest, stage, tuple(names))
        if key not in self._matrices:
            self._matrices[key] = feature_matrix(self.features(stage, manifest), names)
        return self._matrices[key]

    def lacking(self, column: str) -> np.ndarray:
        """Which rows have no usable value of a number `column` (a family's planned value:
        that family cannot forecast them). A plan of 0 or less is none either: the forecast is
        its multiple. Validation rejects such rows; this keeps callers that skip it (a pyfunc
        fed a frame directly) from scaling by 0."""
        values = self.columns.get(column)
        if values is None:
            return np.ones(self.n, dtype=bool)
        values = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            return ~(np.isfinite(values) & (values > 0))

    def family_warnings(self, families) -> list[list[str]]:
        """Per row: `warnings`, then each family (registry entry) the row has no forecast of."""
        out = [list(w) for w in self.warnings]
        for family in families:
            for i in np.flatnonzero(self.lacking(family.planned)):
                value = self.columns.get(family.planned, [None] * self.n)[i]
                why = "is missing" if value is None or value != value else f"is {value:g}"
                out[i].append(f"no {family.name} forecast: {family.planned} {why}")
        return out

    @cached_property
    def warnings(self) -> list[list[str]]:
        """Per row: unseen category values, which the models treat as missing."""
        out: list[list[str]] = [[] for _ in range(self.n)]
        for name, codes in self.manifest.codes.items():
            if name in self.manifest.closed or name not in self.columns:
                continue
            values = self.columns[name]
            for i in np.flatnonzero([v is not None and v not in codes for v in values]):
                out[i].append(f"{name} {values[i]!r} was not seen in training: the models "
                              "treat it as missing")
        return out


def _fields(objects: Sequence, names: list[str]) -> list[tuple]:
    """Per name, its value on each object (None for a None object or one without the field),
    read by one `attrgetter` call per object rather than one `getattr` per value."""
    if not names:
        return []
    # attrgetter of one name returns the value itself, of several a tuple
    read = attrgetter(*names) if len(names) > 1 else \
        (lambda o, one=attrgetter(names[0]): (one(o),))
    blank = (None,) * len(names)
    try:
        rows = [blank if o is None else read(o) for o in objects]
    except AttributeError:  # objects without some fields: one value at a time
        rows = [tuple(getattr(o, name, None) for name in names) for o in objects]
    return list(zip(*rows)) if rows else [() for _ in names]


def _array(values: Sequence, kind: str) -> np.ndarray:
    """Python values of one column that is not a number (those make one table in
    `from_requests`) as the array `feature_arrays` takes (None = missing)."""
    if kind == "category":
        return label_array(values)
    if kind == "date":
        return np.array([v if v is not None else "NaT" for v in values], dtype="datetime64[D]")
    return np.array(values, dtype=object)


def model_columns(frame: pd.DataFrame, manifest: FeatureManifest | None = None) -> pd.DataFrame:
    """The columns a model reads from `frame`: intake columns plus any snapshot columns.

    Raises ValueError naming any missing required intake column.
    """
    from opm_ml.features import contract_manifest

    manifest = manifest or contract_manifest()
    missing = [c for c in manifest.intake_columns
               if c not in frame.columns and not manifest.column(c).nullable]
    if missing:
        raise ValueError(f"missing intake column(s): {', '.join(missing)}")
    columns = [c for c in (*manifest.intake_columns, *manifest.snapshot_columns)
               if c in frame.columns]
    return frame[columns].reset_index(drop=True)
