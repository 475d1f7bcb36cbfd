"""Schema fuzzing: every operation of the app's own OpenAPI schema, against real loaded models.

Schemathesis generates requests from /openapi.json (the documented examples, then edge cases and
random bodies, valid and invalid) and checks each answer: never a 5xx, the status code is one
the operation documents, and the body and content type match what it documents. Derandomised,
so a failure reproduces run after run.
"""

from datetime import date, timedelta

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from opm_ml.features import INDEX_RATIO_BOUNDS
from opm_ml.forecasting.result import iso_dates
from opm_ml.settings import Settings
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

KEY = "fuzz-admin-key-0123"  # OPM_ML_API_KEY needs 16+ characters
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def app(small_registry):
    """The app with the three small models loaded and the admin key configured."""
    base, _ = small_registry
    config = base.model_copy(update={"api_key": SecretStr(KEY), "max_batch": 20})
    store = ModelStore(config)
    assert store.reload(wait=True), store.last_error
    return create_app(config, store)


# The schema does not depend on settings or models: read it from an app that never starts.
# (A fixture-based lazy schema would be neater, but schemathesis' one breaks on pytest 9.)
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None)).openapi())
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@schema.exclude(path="/v1/admin/reload").parametrize()
@FUZZ
def test_every_answer_is_documented_and_never_a_server_error(case, app):
    case.call_and_validate(app=app, checks=CHECKS)


@schema.include(path="/v1/admin/reload").parametrize()
@settings(FUZZ, max_examples=4)
def test_admin_reload_with_the_key_is_documented(case, app):
    """Reloading takes a second or so: a few examples, always with the right key."""
    response = case.call_and_validate(app=app, checks=CHECKS, headers={"X-API-Key": KEY})
    if case.method == "POST":  # the coverage phase also tries undocumented methods (405)
        assert response.status_code not in (401, 403), response.text


def test_a_barely_started_project_gets_a_bounded_valid_finish_date(app):
    """Found by fuzzing: EV of 1 on a 2.4M budget once extrapolated the finish ~1 million years
    out. The index ratios the models anchor on are bounded now, so the dates stay real."""
    barely_started = {**EXAMPLE_PROJECT, "status": {**EXAMPLE_STATUS, "ev": 1.0}}
    on_track = {**EXAMPLE_PROJECT, "status": EXAMPLE_STATUS}
    response = TestClient(app).post("/v1/predictions/delay", json=[barely_started, on_track])
    assert response.status_code == 200
    far, near = (item["finish_date"] for item in response.json()["items"])
    latest = date.fromisoformat(EXAMPLE_PROJECT["start_date"]) + timedelta(
        days=EXAMPLE_PROJECT["planned_duration_days"] * INDEX_RATIO_BOUNDS[1] * 3)
    for day in (*far.values(), *near.values()):
        assert date.fromisoformat(day) <= latest, (far, near)
    assert far["p50"] > near["p50"]


def test_dates_past_year_9999_are_written_as_null_not_malformed():
    days = np.array(["2030-01-31", "NaT"], dtype="datetime64[D]")
    beyond = np.datetime64("9999-12-31") + np.array([400], dtype="timedelta64[D]")
    assert iso_dates(np.concatenate([days, beyond])).tolist() == ["2030-01-31", None, None]
