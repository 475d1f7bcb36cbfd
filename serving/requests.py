"""Project request bodies -> `ProjectInputs`, or a 422 naming every bad field.

A body is one project or a non-empty list. Its size is checked before anything is parsed;
each item is parsed by the served manifest's `ProjectRequest` (types, ranges, categories),
then the rows go through `opm_ml.rules` at once (role shares, risk severity, EV/PV within BAC,
status date after the start, PV = BAC after the planned finish), exactly as history validation
and batch scoring check them. Field paths read `body[3].status.ev` (`body.status.ev` alone).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from opm_ml import rules
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.manifest import FeatureManifest
from serving.schemas.projects import project_request


def check_batch_size(n: int, limit: int) -> None:
    """413 when a batch exceeds the configured limit (OPM_ML_MAX_BATCH)."""
    if n > limit:
        raise HTTPException(413, f"batch of {n:,} items exceeds the limit of {limit:,} "
                                 "(OPM_ML_MAX_BATCH); split it into smaller requests")


def counted_first(items_in: Callable[[Any], Any]) -> Any:
    """A route dependency: 413 when the body's item list (`items_in(body)`) is longer than
    OPM_ML_MAX_BATCH, before FastAPI validates a single item of a typed body.

    FastAPI solves dependencies before it validates the body, and has already parsed the JSON
    (the request caches it), so counting costs one `len`.
    """
    async def check(request: Request) -> None:
        if not await request.body():
            return
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            return  # not JSON: FastAPI answers that itself
        items = items_in(body)
        if isinstance(items, list):
            check_batch_size(len(items), request.app.state.settings.max_batch)

    return Depends(check)


def candidates_in(body: Any) -> Any:
    """The candidate list of an intake body: the body itself, or its `candidates`."""
    return body.get("candidates") if isinstance(body, dict) else body


def items_of(body: Any, limit: int) -> tuple[list, bool]:
    """(the body's items, whether it was a single object); 413/422 for a bad envelope."""
    if isinstance(body, list):
        if not body:
            raise RequestValidationError([{
                "type": "too_short", "loc": ("body",), "input": [],
                "msg": "List should have at least 1 item after validation, not 0"}])
        check_batch_size(len(body), limit)
        return body, False
    return [body], True


def parse_items(items: Sequence, model: type[BaseModel], single: bool) -> list[BaseModel]:
    """Each item parsed by `model`; one RequestValidationError with every item's problems."""
    parsed, errors = [], []
    for i, item in enumerate(items):
        try:
            parsed.append(model.model_validate(item))
        except ValidationError as exc:
            where = ("body",) if single else ("body", i)
            errors += [{**err, "loc": (*where, *err["loc"])} for err in exc.errors()]
    if errors:
        raise RequestValidationError(errors)
    return parsed


def project_inputs(body: Any, manifest: FeatureManifest, limit: int) -> ProjectInputs:
    """A project body as `ProjectInputs` for the manifest's models (see module docstring)."""
    items, single = items_of(body, limit)
    parsed = parse_items(items, project_request(manifest), single)
    inputs = ProjectInputs.from_requests(parsed, manifest)
    raise_findings(check_rows(inputs), single)
    return inputs


def require_planned(inputs: ProjectInputs, family, single: bool) -> None:
    """422 naming the field when a row lacks the family's planned value: one family's endpoint
    has nothing to forecast without it (`/assess` answers the other families instead)."""
    rows = np.flatnonzero(inputs.lacking(family.planned))
    if len(rows):
        raise RequestValidationError([{
            "type": "missing", "input": None,
            "loc": ("body", family.planned) if single else ("body", int(i), family.planned),
            "msg": f"Field required: the {family.name} model forecasts a multiple of "
                   f"{family.planned}"} for i in rows])


def check_rows(inputs: ProjectInputs) -> rules.Findings:
    """The profile's rules on every row, the status rules on the in-flight rows."""
    found = [rules.profile_findings(inputs.columns, inputs.manifest.rules)]
    if len(inputs.inflight) and inputs.manifest.has("start_date", "status_date"):
        found.append(rules.status_findings(inputs.columns, inputs.inflight_mask))
    return rules.Findings.of([f.frame for f in found if len(f)])


def raise_findings(findings: rules.Findings, single: bool, nested: str = "status",
                   prefix: tuple[str, ...] = ("body",)) -> None:
    """RequestValidationError from rule findings, if any: field paths start at `prefix`
    (then the item's index unless `single`); status fields sit under `nested`."""
    if not len(findings):
        return
    errors = []
    for row in findings.frame.itertuples(index=False):
        where = prefix if single else (*prefix, int(row.position))
        field = (nested, row.column) if row.status and nested else (row.column,)
        errors.append({"type": row.type, "loc": (*where, *field), "msg": row.reason,
                       "input": None})
    raise RequestValidationError(errors)
