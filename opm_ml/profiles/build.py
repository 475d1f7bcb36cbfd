"""From a profile and the history read through it to the manifest its models carry.

Category levels come from the data (a closed list only where the profile declares one) and a
real project and status report from the history become the examples `/docs` shows. Every
intake column may be empty in a request: a family needs only its own planned value, and a row
without it gets the other families' forecasts (`FamilyModel.predict`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from opm_ml.categories import category_labels
from opm_ml.contract import Column, History
from opm_ml.manifest import FeatureManifest
from opm_ml.profiles.profile import Profile
from opm_ml.profiles.roles import ROLES

STATUS_ROLES = ("status_date", "pv", "ev", "ac")


def profile_manifest(profile: Profile, history: History) -> FeatureManifest:
    """The manifest of models trained on `history`, read through `profile`."""
    columns = []
    for column in profile.columns():
        if column.stage == "outcome":
            continue
        if column.name in ROLES and column.stage == "intake":  # a family needs only its plan
            column = replace(column, nullable=True)
        if column.kind == "category" and not column.categories:
            table = history.snapshots if column.stage == "snapshot" else history.projects
            column = replace(column, categories=_levels(table, column.name))
        columns.append(column)
    status = tuple(r for r in STATUS_ROLES if r in profile.canonical_roles())
    return FeatureManifest(
        profile=profile.name, profile_version=profile.version,
        profile_digest=profile.digest, columns=tuple(columns),
        closed=frozenset(f.name for f in profile.features if f.levels),
        derived=profile.derived, status_required=status, rules=profile.rules,
        roles=tuple(profile.role_efforts), reference_class=profile.reference_class,
        anchors=profile.anchors, source=profile.raw, families=profile.families,
        examples=_examples(columns, history), metric=profile.metric, group=profile.group,
        gate=profile.gate,
    )


def _levels(table: pd.DataFrame, name: str) -> tuple[str, ...]:
    if name not in table.columns:
        return ()
    return tuple(sorted(category_labels(table[name]).dropna().unique()))


def _examples(columns: list[Column], history: History) -> tuple[dict, dict]:
    """A real project (the most complete one) and one of its status reports, JSON-ready."""
    intake = [c.name for c in columns if c.stage in ("id", "intake")]
    snapshot = [c.name for c in columns if c.stage == "snapshot"]
    projects = history.projects
    if projects.empty:
        return {}, {}
    filled = projects[[c for c in intake if c in projects.columns]].notna().sum(axis=1)
    row = projects.loc[filled.idxmax()]
    kinds = {c.name: c.kind for c in columns}
    project = {c: _json(row[c], kinds[c]) for c in intake if c in projects.columns}
    status = {}
    snaps = history.snapshots[history.snapshots["project_id"] == row["project_id"]]
    if snapshot and len(history.snapshots):
        snaps = snaps if len(snaps) else history.snapshots
        last = snaps.iloc[-1]
        status = {c: _json(last[c], kinds[c]) for c in snapshot if c in snaps.columns}
    return project, status


def _json(value, kind: str):
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    value = value.item() if hasattr(value, "item") else value
    return bool(value) if kind == "bool" else value
