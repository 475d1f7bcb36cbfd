"""`RealDataset`: one real public dataset mapped onto the opm-ml data contract, ready to evaluate.

Column names follow `opm_ml.contract` where a mapping exists (`planned_effort_hours`,
`planned_duration_days`, `budget_at_completion`, `planned_team_size`, `pm_experience_years`,
`methodology`); every other feature keeps a snake_case form of its source name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

import opm_ml

Family = Literal["effort", "delay", "overrun"]
FAMILIES: tuple[Family, ...] = ("effort", "delay", "overrun")

# Boehm (1981), Software Engineering Economics: COCOMO counts 152 working hours per person-month.
HOURS_PER_PERSON_MONTH = 152.0
# Features missing in more than this share of rows are dropped (and named in the notes): with
# 15-150 rows nothing can be learned from them, and imputation would dominate the column.
MAX_MISSING_SHARE = 0.5


@dataclass
class RealDataset:
    """Features `X`, positive target `y` and optional `groups` that folds must never split.

    `y` is hours for effort sets unless `target_unit` says otherwise (e.g. EUR), and
    actual / planned (`target_unit` "ratio") for delay and overrun sets. `ex_post` names
    columns in `X` that are only known after the project (actual duration, go-live year);
    `reference_column` is the category for a per-class reference-class forecast;
    `baseline_column` holds a current forecast of the target (e.g. the latest re-estimated
    duration ratio) that an index forecast can return.
    """

    name: str
    family: Family
    X: pd.DataFrame
    y: pd.Series
    groups: pd.Series | None
    source: str
    notes: str
    target_unit: str = ""
    ex_post: tuple[str, ...] = field(default=())
    reference_column: str | None = None
    baseline_column: str | None = None

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        if self.family not in FAMILIES:
            raise ValueError(f"{where}: family {self.family!r} is not one of {FAMILIES}")
        if not self.target_unit:
            self.target_unit = "hours" if self.family == "effort" else "ratio"
        if len(self.X) != len(self.y) or not self.X.index.equals(self.y.index):
            raise ValueError(f"{where}: X and y must have the same rows and index")
        values = self.y.to_numpy(dtype=float)
        if not np.isfinite(values).all() or (values <= 0).any():
            raise ValueError(f"{where}: target {self.y.name!r} must be positive and finite")
        if self.X.columns.duplicated().any():
            raise ValueError(f"{where}: duplicate feature names {list(self.X.columns)}")
        for name, col in self.X.items():
            if not (
                pd.api.types.is_numeric_dtype(col)
                or pd.api.types.is_string_dtype(col)
                or isinstance(col.dtype, pd.CategoricalDtype)
            ):
                raise ValueError(f"{where}: feature {name!r} has dtype {col.dtype}; "
                                 "use numbers or strings")
        if self.groups is not None and (
            not self.groups.index.equals(self.X.index) or self.groups.isna().any()
        ):
            raise ValueError(f"{where}: groups must align with X and have no missing values")
        for name in (*self.ex_post, self.reference_column, self.baseline_column):
            if name is not None and name not in self.X.columns:
                raise ValueError(f"{where}: column {name!r} is declared but not in X")

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.y)

    def without_ex_post(self) -> RealDataset:
        """Copy restricted to features known before the project ends."""
        return replace(self, X=self.X.drop(columns=list(self.ex_post)), ex_post=())


def default_root() -> Path:
    """`../shared/data/real` beside the repository checkout (read-only real data)."""
    return Path(opm_ml.__file__).resolve().parents[2] / "shared/data/real"


def categorical(values: pd.Series) -> pd.Series:
    """Codes as strings (`1.0` -> `"1"`) with missing values kept missing."""
    if pd.api.types.is_numeric_dtype(values):
        text = values.map(lambda v: f"{v:g}", na_action="ignore")
    else:
        text = values.str.strip()
    return text.astype("str")


def positive_ratio(actual: pd.Series, planned: pd.Series) -> pd.Series:
    """actual / planned where both are positive and finite, else NaN (the caller drops/counts)."""
    ok = (actual > 0) & (planned > 0) & np.isfinite(actual) & np.isfinite(planned)
    return (actual / planned).where(ok)


def finish(
    name: str,
    family: Family,
    X: pd.DataFrame,
    y: pd.Series,
    source: str,
    notes: str,
    groups: pd.Series | None = None,
    **extra,
) -> RealDataset:
    """Build a RealDataset with a fresh 0..n-1 index on X, y and groups.

    Features missing in more than `MAX_MISSING_SHARE` of the rows are dropped and named in
    the notes.
    """
    X = X.reset_index(drop=True)
    sparse = [c for c in X.columns if X[c].isna().mean() > MAX_MISSING_SHARE]
    if sparse:
        X = X.drop(columns=sparse)
        notes = f"{notes} Dropped as >{MAX_MISSING_SHARE:.0%} missing: {', '.join(sparse)}."
        for key in ("reference_column", "baseline_column"):
            if extra.get(key) in sparse:
                raise ValueError(f"dataset {name!r}: {key} {extra[key]!r} is mostly missing")
        extra["ex_post"] = tuple(c for c in extra.get("ex_post", ()) if c not in sparse)
    y = pd.Series(np.asarray(y, dtype=float), name=y.name or "target")
    if groups is not None:
        groups = groups.reset_index(drop=True).astype("str")
    return RealDataset(name, family, X, y, groups, source, notes, **extra)
