"""Registry write access is not code execution: with a signing key, a replica unpickles only
versions whose artifact carries the deployment's HMAC (issue 13, item 12).

A forged version is a real pickle that would create a file when loaded; the tests check that
the file never appears, that /readyz names the refused version while the old set keeps serving,
and that training signs what it registers so the defence costs nothing in normal use.
"""

from dataclasses import replace
from pathlib import Path

import joblib
import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from pydantic import SecretStr

from opm_ml import mlflow_access, signing
from opm_ml.model_set import ModelLoadError, load_model_set
from serving.app import create_app
from serving.model_store import ModelStore
from serving.schemas.projects import EXAMPLE_PROJECT, EXAMPLE_STATUS
from training.pipeline import train_models
from training.specs import load_spec

KEY = "k" * 16 + "deployment-secret"  # 32+ characters
NAMES = ("opm-delay", "opm-overrun", "opm-resource-demand")


class Payload:
    """What an attacker registers: unpickling it creates `marker` (any code could run)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_signature_binds_the_key_the_name_and_the_file():
    digest = "ab" * 32
    tags = signing.signing_tags(KEY, "opm-delay", digest)
    signing.check(KEY, "opm-delay", "1", tags, digest)
    for key, name, file in ((KEY.upper(), "opm-delay", digest), (KEY, "opm-overrun", digest),
                            (KEY, "opm-delay", "cd" * 32)):
        with pytest.raises(signing.ModelRefused, match="does not match"):
            signing.check(key, name, "1", tags, file)
    with pytest.raises(signing.ModelRefused, match="opm-delay v3 is refused: it is not signed"):
        signing.check(KEY, "opm-delay", "3", {}, digest)


@pytest.mark.parametrize(("value", "problem"), [
    ("", "OPM_ML_MODEL_SIGNING_KEY is empty: a signing key needs at least 32 characters"),
    ("k" * 31, "OPM_ML_MODEL_SIGNING_KEY is too short (31 characters)"),
])
def test_a_short_signing_key_refuses_to_start_naming_the_variable(monkeypatch, value, problem):
    from opm_ml.settings import SettingsError, get_settings

    monkeypatch.setenv("OPM_ML_MODEL_SIGNING_KEY", value)
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError) as caught:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert str(caught.value).startswith(problem) and "unset" in str(caught.value)
    assert not value or value not in str(caught.value)


def client_of(settings) -> MlflowClient:
    return mlflow_access.client(settings)


def sign_champions(settings) -> None:
    client = client_of(settings)
    for name in NAMES:
        version = client.get_model_version_by_alias(name, "champion").version
        mlflow_access.sign_version(client, name, version, settings.mlflow_tracking_uri, KEY)


def register_payload(settings, tmp_path: Path, marker: Path, tags: dict[str, str]) -> str:
    """A new opm-delay version whose model file is `Payload`, tagged with `tags`; champion."""
    folder = tmp_path / "forged"
    (folder / "artifacts").mkdir(parents=True)
    joblib.dump(Payload(marker), folder / "artifacts" / "family_model.joblib")
    client = client_of(settings)
    version = client.create_model_version("opm-delay", source=str(folder)).version
    for key, value in tags.items():
        client.set_model_version_tag("opm-delay", version, key, value)
    client.set_registered_model_alias("opm-delay", "champion", version)
    return version


@pytest.fixture
def signed(private_registry, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings, _ = private_registry
    sign_champions(settings)
    return settings.model_copy(update={"model_signing_key": SecretStr(KEY)})


@pytest.mark.parametrize("forgery", ["unsigned", "signature copied from v1"])
def test_a_forged_version_is_refused_and_the_old_set_keeps_serving(signed, tmp_path, forgery):
    store = ModelStore(signed)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(signed, store))
    assert client.get("/readyz").json()["models"]["delay"] == "1"

    v1 = client_of(signed).get_model_version("opm-delay", "1").tags
    tags = {} if forgery == "unsigned" else {k: v1[k] for k in (signing.DIGEST_TAG,
                                                               signing.SIGNATURE_TAG)}
    marker = tmp_path / "pwned"
    version = register_payload(signed, tmp_path, marker, tags)
    assert store.check_registry() is False  # the alias moved; the load was refused

    assert not marker.exists(), "the forged model was unpickled"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"]["delay"] == "1"
    why = ("it is not signed" if forgery == "unsigned"
           else "its signature does not match its artifact")
    assert ready.json()["detail"].startswith(
        f"serving the previous set: loading the models failed: opm-delay v{version} is "
        f"refused: {why}")
    answer = client.post("/v1/predictions/delay", json={**EXAMPLE_PROJECT,
                                                        "status": EXAMPLE_STATUS})
    assert answer.status_code == 200 and answer.json()["model"]["version"] == "1"


def test_without_a_set_a_refused_version_is_503_with_the_reason(signed, tmp_path):
    marker = tmp_path / "pwned"
    version = register_payload(signed, tmp_path, marker, {})
    with pytest.raises(ModelLoadError, match=f"opm-delay v{version} is refused"):
        load_model_set(signed)
    store = ModelStore(signed)
    assert store.reload(wait=True) is False
    ready = TestClient(create_app(signed, store)).get("/readyz")
    assert ready.status_code == 503
    assert f"opm-delay v{version} is refused: it is not signed" in ready.json()["detail"]
    assert not marker.exists()


def test_training_signs_what_it_registers(private_registry, monkeypatch):
    """With the key set, a trained version loads under it; the unsigned v1 champion it was
    gated against is refused rather than unpickled, so the new version replaces it."""
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings, history = private_registry
    keyed = settings.model_copy(update={"model_signing_key": SecretStr(KEY)})
    spec = replace(load_spec("delay").with_hyperparameters(n_estimators=5),
                   must_beat_baselines=False)
    previous = mlflow.get_tracking_uri()
    try:
        result = train_models(history, families=["delay"], settings=keyed,
                              specs={"delay": spec}, seed=5)
    finally:
        mlflow.set_tracking_uri(previous)
    decision = result.results[0].decision
    assert decision.promoted and "opm-delay v1 is refused" in decision.reason
    version = client_of(keyed).get_model_version_by_alias("opm-delay", "champion")
    assert str(version.version) == "2" and signing.SIGNATURE_TAG in version.tags
    loaded = load_model_set(keyed, families=["delay"])
    assert loaded.models["delay"].version == "2"
    with pytest.raises(ModelLoadError, match="opm-overrun v1 is refused: it is not signed"):
        load_model_set(keyed, families=["overrun"])
