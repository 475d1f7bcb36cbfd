"""Serving API without models: OPM metrics, health, admin, limits, errors, /metrics, OpenAPI.

The model endpoints (and their 503 while no model is loaded) are here too; forecasts against
real trained models are in test_serving_models.py.
"""

import json
import logging
import math
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from opm_ml.settings import Settings
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.evm import EXAMPLE_EVM
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS

KEY = "s3cret-admin-key"


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"


def make_client(registry: str, **overrides) -> TestClient:
    settings = Settings(_env_file=None, mlflow_tracking_uri=registry, registry_poll_seconds=0,
                        **overrides)
    # Not started (no `with`): the store stays empty, as before the first load finishes.
    return TestClient(create_app(settings, ModelStore(settings)))


@pytest.fixture()
def client(empty_registry) -> TestClient:
    return make_client(empty_registry, api_key=KEY, max_batch=3, max_body_bytes=4096)


def problems(response) -> dict[str, dict]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    return {p["field"]: p for p in body["problems"]}


def metric_value(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- OPM metrics ---------------------------------------------------------------------------


def expected_metrics(bac, pv, ev, ac, start: date, duration: int, status: date) -> dict:
    """Textbook EVM/ES for one snapshot with EV < PV (ES lies on the first baseline segment)."""
    at = (status - start).days
    es = at * ev / pv  # the baseline runs linearly from (start, 0) to (status, PV)
    ieac = duration / (es / at)
    return {
        "sv": ev - pv, "cv": ev - ac, "spi": ev / pv, "cpi": ev / ac,
        "eac_cpi": bac * ac / ev, "eac_plan_rate": ac + bac - ev,
        "eac_cpi_spi": ac + (bac - ev) / ((ev / ac) * (ev / pv)),
        "etc": bac * ac / ev - ac, "vac": bac - bac * ac / ev,
        "tcpi_bac": (bac - ev) / (bac - ac), "tcpi_eac": (bac - ev) / (bac * ac / ev - ac),
        "es_days": es, "at_days": at, "sv_t_days": es - at, "spi_t": es / at,
        "ieac_t_days": ieac,
        "forecast_finish_date": (start + timedelta(days=round(ieac))).isoformat(),
    }


def test_evm_single_matches_textbook_formulas(client):
    response = client.post("/v1/metrics/evm", json=EXAMPLE_EVM)
    assert response.status_code == 200
    body = response.json()
    want = expected_metrics(2_400_000, 1_300_000, 1_050_000, 1_250_000, date(2025, 1, 6), 270,
                            date(2025, 6, 30))
    assert body["project_id"] == "PRJ-2025-0042"
    assert body["undefined"] == {}
    for name, value in want.items():
        got = body["metrics"][name]
        if isinstance(value, str):
            assert got == value, name
        else:
            assert math.isclose(got, value, rel_tol=1e-9), name


def test_evm_batch_equals_singles_and_explains_undefined(client):
    batch = [EXAMPLE_EVM, {**EXAMPLE_EVM, "project_id": "B", "ac": 0.0},
             {**EXAMPLE_EVM, "project_id": "C", "status_date": "2025-01-06", "pv": 0.0,
              "ev": 0.0}]
    response = client.post("/v1/metrics/evm", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [i["project_id"] for i in body["items"]] == ["PRJ-2025-0042", "B", "C"]
    for item, single in zip(body["items"], batch):
        assert item == client.post("/v1/metrics/evm", json=single).json()
    no_cost = body["items"][1]
    assert no_cost["metrics"]["cpi"] is None and "ac is 0" in no_cost["undefined"]["cpi"]
    assert no_cost["metrics"]["cv"] == 1_050_000.0  # defined metrics stay
    at_start = body["items"][2]
    assert at_start["metrics"]["at_days"] == 0.0
    assert at_start["metrics"]["spi_t"] is None and "spi_t" in at_start["undefined"]


def test_batch_above_the_limit_is_413(client):
    response = client.post("/v1/metrics/evm", json=[EXAMPLE_EVM] * 4)
    assert response.status_code == 413
    assert "limit of 3" in response.json()["message"]


# --- 422: field path and problem ----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "kind", "words"),
    [
        ({"bac": None}, "body.bac", "missing", "Field required"),
        ({"pv": "lots"}, "body.pv", "float_parsing", "valid number"),
        ({"planned_duration_days": 12.5}, "body.planned_duration_days", "int_from_float",
         "integer"),
        ({"bac": -5.0}, "body.bac", "greater_than_equal", "greater than or equal to 1"),
        ({"ev": 3_000_000.0}, "body.ev", "ev_above_bac", "exceeds the project's bac"),
        ({"status_date": "2024-12-31"}, "body.status_date", "status_before_start",
         "before the project's start_date"),
        ({"status_date": "2026-01-01", "pv": 2_000_000.0}, "body.pv",
         "pv_below_bac_after_finish", "once the planned finish"),
        ({"colour": "red"}, "body.colour", "extra_forbidden", "not permitted"),
    ],
)
def test_bad_evm_input_names_the_field_and_problem(client, change, field, kind, words):
    body = {k: v for k, v in {**EXAMPLE_EVM, **change}.items() if v is not None}
    found = problems(client.post("/v1/metrics/evm", json=body))
    assert list(found) == [field]
    assert found[field]["type"] == kind
    assert words in found[field]["problem"]


def test_batch_errors_carry_the_item_index(client):
    found = problems(client.post("/v1/metrics/evm", json=[EXAMPLE_EVM,
                                                          {**EXAMPLE_EVM, "ev": 9e9}]))
    assert list(found) == ["body[1].ev"]


def test_empty_batch_non_object_and_nan_are_422(client):
    assert "body" in problems(client.post("/v1/metrics/evm", json=[]))
    assert "body" in problems(client.post("/v1/metrics/evm", json=42))
    text = json.dumps(EXAMPLE_EVM).replace("1300000.0", "NaN")
    found = problems(client.post("/v1/metrics/evm", content=text,
                                 headers={"content-type": "application/json"}))
    assert found["body.pv"]["type"] == "finite_number"
    found = problems(client.post("/v1/metrics/evm", content="{not json",
                                 headers={"content-type": "application/json"}))
    assert found["body"]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"budget_at_completion": -1.0}, "body.budget_at_completion", "greater_than_equal"),
        ({"budget_at_completion": 0.0}, "body.budget_at_completion", "greater_than_equal"),
        ({"complexity": 9}, "body.complexity", "less_than_equal"),
        ({"start_date": "next week"}, "body.start_date", "date_from_datetime_parsing"),
        ({"role_share_build": 0.6}, "body.role_share_*", "role_shares_sum"),
        ({"num_identified_risks": 0}, "body.mean_risk_severity", "risk_severity"),
        ({"status": {**EXAMPLE_STATUS, "ev": 2_500_000.0}}, "body.status.ev", "ev_above_bac"),
        ({"status": {**EXAMPLE_STATUS, "status_date": "2024-06-30"}}, "body.status.status_date",
         "status_before_start"),
        ({"status": {**EXAMPLE_STATUS, "ac": -1}}, "body.status.ac", "greater_than_equal"),
    ],
)
def test_bad_project_is_422_before_any_model_is_needed(client, change, field, kind):
    found = problems(client.post("/v1/predictions/overrun", json={**EXAMPLE_PROJECT, **change}))
    assert found[field]["type"] == kind


def test_unknown_category_is_422_and_counted(client):
    series = 'opm_unknown_categories_total{field="sector"}'
    before = metric_value(client, series)
    bad = {**EXAMPLE_PROJECT, "sector": "space_mining"}
    for path in ("/v1/predictions/delay", "/v1/projects/assess"):
        found = problems(client.post(path, json=bad))
        assert found["body.sector"]["type"] == "literal_error"
        assert "'public'" in found["body.sector"]["problem"]
    found = problems(client.post("/v1/projects/assess", json=[EXAMPLE_PROJECT, bad]))
    assert list(found) == ["body[1].sector"]
    assert metric_value(client, series) == before + 3


def test_unknown_task_and_bad_top_k_are_422(client):
    assert "path.task" in problems(client.post("/v1/predictions/weather", json=EXAMPLE_PROJECT))
    found = problems(client.post("/v1/predictions/delay?top_k=0", json=EXAMPLE_PROJECT))
    assert "query.top_k" in found


# --- 413, 503, 404, 500 -------------------------------------------------------------------


def test_oversized_body_is_413_by_header_and_while_streaming(client):
    big = json.dumps([EXAMPLE_EVM] * 40).encode()
    assert len(big) > 4096
    response = client.post("/v1/metrics/evm", content=big,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    # No Content-Length (chunked upload): the limit is enforced on the bytes received.
    chunks = (big[i:i + 1000] for i in range(0, len(big), 1000))
    response = client.post("/v1/metrics/evm", content=chunks,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "4,096 bytes" in response.json()["message"]


def test_model_endpoints_are_503_with_the_reason_until_loaded(client):
    for method, path, body in [("post", "/v1/predictions/delay", EXAMPLE_PROJECT),
                               ("post", "/v1/projects/assess", [EXAMPLE_PROJECT]),
                               ("get", "/v1/models", None)]:
        response = client.request(method, path, json=body)
        assert response.status_code == 503
        assert response.json() == {"error": "models_not_ready",
                                   "message": "models are not loaded yet", "problems": []}
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "models are not loaded yet"


def test_readyz_gives_the_load_failure(empty_registry):
    with make_client(empty_registry) as client:  # lifespan: background load from the registry
        store = client.app.state.model_store
        store.reload(wait=True)
        ready = client.get("/readyz")
    assert ready.status_code == 503
    detail = ready.json()["detail"]
    assert detail.startswith("loading the models failed") and "opm-delay" in detail
    assert "Traceback" not in detail


def test_unknown_path_is_json_404(client):
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_crash_is_a_json_500_without_internals(client, caplog):
    def explode():
        raise RuntimeError("secret connection string postgres://user:pw@db")

    client.app.add_api_route("/explode", explode)
    with caplog.at_level(logging.ERROR, logger="opm_ml.serving"):
        response = client.get("/explode")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error" and "reference" in body["message"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret connection string" in caplog.text  # the server log has the details
    assert metric_value(client, 'opm_http_requests_total{method="GET",route="/explode",'
                                'status="500"}') == 1


# --- admin ---------------------------------------------------------------------------------


def test_admin_is_disabled_without_a_configured_key(empty_registry):
    response = make_client(empty_registry).post("/v1/admin/reload", headers={"X-API-Key": ""})
    assert response.status_code == 403
    assert "OPM_ML_API_KEY" in response.json()["message"]


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY + "x"}])
def test_admin_needs_the_right_key(client, headers):
    response = client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_admin_reload_reports_a_failed_load(empty_registry):
    client = make_client(empty_registry, api_key=KEY)
    response = client.post("/v1/admin/reload?wait=true", headers={"X-API-Key": KEY})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failed" and "opm-delay" in body["error"]
    assert metric_value(client, 'opm_model_reloads_total{outcome="failed"}') == 1


# --- /metrics and OpenAPI ------------------------------------------------------------------


def test_prometheus_counts_requests_by_route_and_status(client):
    client.get("/healthz")
    client.post("/v1/metrics/evm", json=EXAMPLE_EVM)
    client.post("/v1/metrics/evm", json={})
    text = client.get("/metrics").text
    assert 'opm_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'opm_http_requests_total{method="POST",route="/v1/metrics/evm",status="200"} 1.0' in text
    assert 'opm_http_requests_total{method="POST",route="/v1/metrics/evm",status="422"} 1.0' in text
    assert ('opm_http_request_duration_seconds_count{method="POST",route="/v1/metrics/evm"} 2.0'
            in text)
    assert 'opm_prediction_bucket{le="+Inf",output="probability_late",task="delay"} 0.0' in text


def test_every_request_body_has_openapi_examples(client):
    spec = client.get("/openapi.json").json()
    bodies = set()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                bodies.add(path)
                content = operation["requestBody"]["content"]
                if "application/octet-stream" in content:  # a file upload: no JSON to show
                    assert content["application/octet-stream"]["schema"]["format"] == "binary"
                    continue
                examples = content["application/json"]["examples"]
                assert len(examples) >= 2, (method, path)
    assert {"/v1/predictions/{task}", "/v1/projects/assess", "/v1/metrics/evm"} <= bodies
    assert client.get("/docs").status_code == 200


def test_banner_has_the_docs_url_and_a_valid_curl_body():
    from opm_ml.features import contract_manifest
    from serving.app import banner
    from serving.schemas.projects import project_request

    ProjectRequest = project_request(contract_manifest())
    text = banner(Settings(_env_file=None, api_host="0.0.0.0", api_port=8123))
    assert "API docs: http://127.0.0.1:8123/docs" in text
    body = text.split(" -d '", 1)[1].rstrip("'")
    assert ProjectRequest.model_validate_json(body).status is not None
