"""Security defaults of the API: admin off without a key, the key checked, CORS closed unless
configured, and no request able to name a model, URI or file for the service to load.
"""

import re
import socket
import time

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from opm_ml.settings import Settings
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.projects import EXAMPLE_PROJECT

KEY = "security-admin-key"
# Words a parameter would carry if a request could point the service at something to load.
LOADABLE = ("uri", "url", "path", "file", "artifact", "source", "model", "version", "alias",
            "registry", "tracking")
# Checked by reading the route: the dashboard upload's `filename` only picks the parser of the
# uploaded bytes (CSV or Parquet); nothing is opened under that name.
NOT_A_LOCATION = {"filename"}


def client_with(tmp_path, **overrides) -> TestClient:
    settings = Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                        registry_poll_seconds=0, **overrides)
    return TestClient(create_app(settings, ModelStore(settings)))  # not started: no load


def admin_operations(openapi: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in openapi["paths"].items()
            for method, op in item.items() if path.startswith("/v1/admin/")]


def test_admin_is_off_without_a_key_and_says_so_in_the_schema(tmp_path):
    client = client_with(tmp_path)
    operations = admin_operations(client.get("/openapi.json").json())
    assert operations, "no admin endpoint found"
    for path, method, op in operations:
        assert "403" in op["responses"] and "401" in op["responses"], path
        for key in (None, "", "anything"):
            headers = {} if key is None else {"X-API-Key": key}
            response = client.request(method.upper(), path, headers=headers)
            assert response.status_code == 403, (path, key)
            assert response.json()["error"] == "forbidden"
            assert "OPM_ML_API_KEY" in response.json()["message"]


def test_an_empty_key_never_opens_admin_even_unvalidated(tmp_path):
    # Settings refuse OPM_ML_API_KEY="" (tests/test_settings.py); settings copied without
    # validation must not let an empty X-API-Key through either.
    with pytest.raises(ValidationError, match="api_key"):
        client_with(tmp_path, api_key="")
    base = Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
                    registry_poll_seconds=0)
    for key in ("", "short-key"):
        settings = base.model_copy(update={"api_key": SecretStr(key)})
        client = TestClient(create_app(settings, ModelStore(settings)))
        response = client.post("/v1/admin/reload", headers={"X-API-Key": key})
        assert response.status_code == 403, key
        assert "at least 16 characters" in response.json()["message"]


@pytest.mark.parametrize("key", [None, "", "wrong", KEY[:-1], KEY + " ", KEY.upper()])
def test_a_wrong_key_is_401_and_never_echoed(tmp_path, key):
    client = client_with(tmp_path, api_key=KEY)
    headers = {} if key is None else {"X-API-Key": key}
    response = client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "X-API-Key"
    assert response.json()["error"] == "unauthorized"
    assert KEY not in response.text


def test_the_right_key_reaches_admin(tmp_path):
    client = client_with(tmp_path, api_key=KEY)
    response = client.post("/v1/admin/reload", headers={"X-API-Key": KEY})
    assert response.status_code == 202 and response.json()["status"] in ("started",
                                                                        "already_running")
    client.app.state.model_store.stop()


def preflight(client: TestClient, origin: str):
    return client.options("/v1/metrics/evm", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_cors_is_closed_by_default(tmp_path):
    client = client_with(tmp_path)
    for response in (preflight(client, "https://evil.example"),
                     client.get("/healthz", headers={"Origin": "https://evil.example"})):
        assert not any(h.startswith("access-control-") for h in response.headers), \
            dict(response.headers)


def test_cors_allows_only_the_configured_origins(tmp_path):
    client = client_with(tmp_path, cors_origins=["https://pmo.example"])
    allowed = preflight(client, "https://pmo.example")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://pmo.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    simple = client.get("/healthz", headers={"Origin": "https://pmo.example"})
    assert simple.headers["access-control-allow-origin"] == "https://pmo.example"

    refused = preflight(client, "https://evil.example")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def request_field_names(openapi: dict) -> set[str]:
    """Every parameter name and every property name reachable from a request body."""
    schemas = openapi["components"]["schemas"]
    names, seen = set(), set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[1]
                if name not in seen:
                    seen.add(name)
                    walk(schemas[name])
                return
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for item in openapi["paths"].values():
        for op in item.values():
            names.update(p["name"] for p in op.get("parameters", []))
            walk(op.get("requestBody", {}))
    return names


def test_no_request_can_name_a_model_or_a_location_to_load(tmp_path):
    openapi = client_with(tmp_path, api_key=KEY).get("/openapi.json").json()
    names = request_field_names(openapi)
    assert {"budget_at_completion", "status_date", "wait", "X-API-Key"} <= names  # walk works
    suspicious = sorted(n for n in names - NOT_A_LOCATION
                        if any(w in n.lower() for w in LOADABLE))
    assert suspicious == [], suspicious
    reload = openapi["paths"]["/v1/admin/reload"]["post"]
    assert "requestBody" not in reload
    assert {p["name"] for p in reload["parameters"]} == {"wait", "X-API-Key"}


def test_anonymous_answers_never_carry_the_stores_credentials_or_hosts(tmp_path, monkeypatch,
                                                                      caplog):
    """Issue 13, item 9: a tracking URI and a database URL with credentials, both unreachable.
    /readyz, the model 503s and the pipeline 503 give a generic reason and a reference id; the
    log has the detail under that id, with the credentials masked."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secrets = ("alice", "s3cret-tracking", "bob", "hunter2-db", f"{port}", "db.internal")
    settings = Settings(_env_file=None, registry_poll_seconds=0,
                        mlflow_tracking_uri=f"http://alice:s3cret-tracking@127.0.0.1:{port}",
                        database_url=f"postgresql+psycopg2://bob:hunter2-db@127.0.0.1:{port}/db.internal")
    with caplog.at_level("WARNING", "opm_ml.serving"), TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").json()["detail"] in ("models are loading",
                                                         "models are not loaded yet"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        answers = [client.get("/readyz"), client.post("/v1/projects/assess", json=EXAMPLE_PROJECT),
                   client.get("/v1/intake/pipeline")]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert not [s for s in secrets if s in answer.text], answer.text
        reference = re.search(r"reference ([0-9a-f]{12}) in the log", answer.text).group(1)
        logged = caplog.text.split(f"(reference {reference})", 1)[1]
        assert "***@127.0.0.1" in logged.split("(reference", 1)[0]
    assert "s3cret-tracking" not in caplog.text and "hunter2-db" not in caplog.text
