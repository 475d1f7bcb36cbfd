"""The OpenAPI document with the served models' own project request.

The project routes take any JSON body and validate it against the served manifest's
`ProjectRequest` (`serving.requests`), and the intake routes against its intake bodies
(`serving.schemas.intake.intake_models`), so FastAPI alone would document an untyped body.
This fills in the real request schemas and examples for those routes, and is rebuilt whenever
a model set of another profile is swapped in, so `/docs` always shows the fields the served
models read.
"""

from __future__ import annotations

from typing import Union

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from opm_ml.manifest import FeatureManifest
from serving.schemas.intake import intake_models
from serving.schemas.projects import examples, request_models

PROJECT_ROUTES = ("/v1/projects/assess", "/v1/predictions/{task}")
INTAKE_ROUTES = ("/v1/intake/score", "/v1/portfolio/optimize")


def install(app: FastAPI, manifest_of) -> None:
    """Make `app.openapi()` document the project routes with `manifest_of()`'s request."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            manifest = manifest_of()
            if manifest is not None:
                _with_projects(schema, manifest)
                _with_intake(schema, manifest)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def _with_projects(schema: dict, manifest: FeatureManifest) -> None:
    project, status = request_models(manifest)
    body = TypeAdapter(Union[project, list[project]]).json_schema(
        ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    body["anyOf"][1]["minItems"] = 1
    intake, report = examples(manifest)
    second = {**intake, "project_id": f"{intake.get('project_id') or 'P'}-2", "status": report}
    cases = {
        "intake": {"summary": "a project at intake", "value": intake},
        "in_flight": {"summary": "a running project with its latest status",
                      "value": {**intake, "status": report}},
        "batch": {"summary": "a batch (list), intake and in flight mixed",
                  "value": [intake, second]},
    }
    for path in PROJECT_ROUTES:
        operation = schema["paths"][path]["post"]
        content = operation["requestBody"]["content"]["application/json"]
        content["schema"] = body
        content["examples"] = cases
        operation["requestBody"]["required"] = True


def _with_intake(schema: dict, manifest: FeatureManifest) -> None:
    bodies = intake_models(manifest)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for path, body, cases in (
            (INTAKE_ROUTES[0], bodies.score_body, bodies.score_examples),
            (INTAKE_ROUTES[1], bodies.portfolio, bodies.portfolio_examples)):
        if path not in schema["paths"]:
            continue
        document = TypeAdapter(body).json_schema(ref_template="#/components/schemas/{model}")
        components.update(document.pop("$defs", {}))
        if isinstance(body, type):  # a model: a component of its own, as FastAPI writes it
            components[body.__name__] = document
            document = {"$ref": f"#/components/schemas/{body.__name__}"}
        content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        content["schema"] = document
        content["examples"] = cases
        schema["paths"][path]["post"]["requestBody"]["required"] = True
