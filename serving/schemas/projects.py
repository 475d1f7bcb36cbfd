"""The project request, generated from the served models' feature manifest.

A request carries a project's intake fields and, in flight, its latest status snapshot under
`status`. Field names, types, ranges, units and categories come from the manifest of the models
being served (the dataset profile they were trained on), so `/docs` shows the organisation's own
fields and a reload to models of another profile swaps the schema with them. A closed category
list (the built-in contract's) is an enum; an open one accepts any text, and a value the models
never saw is answered with a warning. Multi-column rules are checked after parsing by
`opm_ml.rules` (see `serving.requests`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, create_model

from opm_ml.categories import category_label
from opm_ml.contract import Column
from opm_ml.manifest import FeatureManifest
from serving.schemas.common import request_config

EXAMPLE_PROJECT: dict[str, Any] = {
    "project_id": "PRJ-2025-0042",
    "project_type": "it_software",
    "sector": "finance",
    "region": "europe",
    "methodology": "agile",
    "start_date": "2025-01-06",
    "planned_duration_days": 270,
    "budget_at_completion": 2_400_000.0,
    "planned_effort_hours": 18_000.0,
    "planned_team_size": 12,
    "role_share_management": 0.10,
    "role_share_analysis": 0.15,
    "role_share_design": 0.15,
    "role_share_build": 0.35,
    "role_share_testing": 0.15,
    "role_share_deployment": 0.10,
    "complexity": 3,
    "requirements_volatility": 4,
    "num_vendors": 2,
    "num_dependencies": 3,
    "pm_experience_years": 8.0,
    "strategic_fit": 7.5,
    "expected_benefits": 3_600_000.0,
    "expected_roi": 0.5,
    "num_identified_risks": 14,
    "mean_risk_severity": 2.8,
}
EXAMPLE_STATUS: dict[str, Any] = {
    "status_date": "2025-06-30",
    "pv": 1_300_000.0,
    "ev": 1_050_000.0,
    "ac": 1_250_000.0,
    "percent_complete": 45.0,
}
_TYPES = {"int": int, "float": float, "bool": bool, "date": date, "str": str}
_MODELS: dict[str, type[BaseModel]] = {}


def field_of(col: Column, required: bool | None = None, closed: bool = True,
             **overrides: Any) -> tuple[Any, Any]:
    """(type, Field) of one column: closed categories become an enum, ranges ge (or gt)/le."""
    if col.kind == "category":
        # A number is its level's label (a code 2 is the level "2"), as in training.
        kind: Any = Annotated[Literal[tuple(col.categories)] if col.categories and closed
                              else str, BeforeValidator(_label)]
    else:
        kind = _TYPES[col.kind]
    unit = f" [{col.unit}]" if col.unit else ""
    options: dict[str, Any] = {"description": col.description + unit}
    if col.min is not None:
        options["gt" if col.above_min else "ge"] = col.min
    if col.max is not None:
        options["le"] = col.max
    if col.kind == "float":
        options["allow_inf_nan"] = False
    if col.kind in ("category", "str") and not (col.categories and closed):
        options["max_length"] = 200
    options.update(overrides)
    if required is False or (required is None and col.nullable):
        return kind | None, Field(None, **options)
    return kind, Field(**options)


def _label(value: Any) -> Any:
    """A category value as its label; anything but a number or text is left for the type
    check to refuse."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return category_label(value)
    return value


def examples(manifest: FeatureManifest) -> tuple[dict, dict]:
    """(an intake project, a status report) for the docs: the contract's, or the profile's."""
    if manifest.examples:
        project, status = manifest.examples
        return dict(project), dict(status)
    return EXAMPLE_PROJECT, EXAMPLE_STATUS


def request_models(manifest: FeatureManifest) -> tuple[type[BaseModel], type[BaseModel]]:
    """(ProjectRequest, StatusReport) of the manifest, built once per manifest digest."""
    key = manifest.digest
    if key not in _MODELS:
        project, status = examples(manifest)
        columns = [manifest.column(n) for n in manifest.snapshot_columns]
        report = create_model(
            "StatusReport", __config__=request_config(json_schema_extra={"examples": [status]}),
            __doc__="The latest status snapshot of an in-flight project.",
            **{c.name: field_of(c, required=c.name in manifest.status_required,
                                closed=c.name in manifest.closed) for c in columns})
        _MODELS[key] = create_model(
            "ProjectRequest", __config__=request_config(json_schema_extra={
                "examples": [project, {**project, "status": status}]}),
            __doc__="One project at intake, as the served models read it; add `status` in "
                    "flight.",
            project_id=(str | None, Field(None, max_length=200,
                                          description="your id, echoed back")),
            **{name: field_of(manifest.column(name), closed=name in manifest.closed)
               for name in manifest.intake_columns},
            # Models trained without snapshots have no in-flight stage: no status to send.
            **({"status": (report | None, Field(None, description="latest status snapshot, "
                                                                  "if in flight"))}
               if columns else {}),
        )
        _MODELS[key + ":status"] = report
    return _MODELS[key], _MODELS[key + ":status"]


def project_request(manifest: FeatureManifest) -> type[BaseModel]:
    return request_models(manifest)[0]
