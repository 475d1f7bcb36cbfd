"""Settings: embedded defaults inside the project folder, every field overridable by env, and
invalid values (an empty or short API key) refused with one line naming the variable."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from opm_ml.settings import PROJECT_ROOT, Settings, SettingsError, get_settings


def test_defaults_are_embedded_in_the_project_folder(monkeypatch):
    monkeypatch.delenv("OPM_ML_MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(_env_file=None)
    assert settings.mlflow_tracking_uri == f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    assert settings.data_dir.is_relative_to(PROJECT_ROOT)


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("OPM_ML_MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    monkeypatch.setenv("OPM_ML_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPM_ML_API_PORT", "9100")
    settings = Settings(_env_file=None)
    assert settings.mlflow_tracking_uri == "http://tracking.example:5000"
    assert settings.data_dir == Path(tmp_path)
    assert settings.api_port == 9100


@pytest.fixture
def fresh_settings():
    """`get_settings` reads the environment again (it is cached per process)."""
    get_settings.cache_clear()
    yield get_settings
    get_settings.cache_clear()


@pytest.mark.parametrize(("value", "problem"), [
    ("", "OPM_ML_API_KEY is empty: a key needs at least 16 characters"),
    ("change-me", "OPM_ML_API_KEY is too short (9 characters): a key needs at least 16"),
    ("x" * 15, "OPM_ML_API_KEY is too short (15 characters)"),
])
def test_an_empty_or_short_api_key_is_refused_naming_the_variable(monkeypatch, fresh_settings,
                                                                  value, problem):
    # An empty variable (a compose file's `OPM_ML_API_KEY=`) is an error, not "admin off".
    monkeypatch.setenv("OPM_ML_API_KEY", value)
    with pytest.raises(SettingsError) as caught:
        fresh_settings()
    message = str(caught.value)
    assert message.startswith(problem) and "unset" in message
    assert "\n" not in message and (not value or value not in message)  # never echoed
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(_env_file=None, api_key=value)


def test_an_unset_api_key_is_admin_off_and_16_characters_are_enough(monkeypatch,
                                                                    fresh_settings):
    monkeypatch.delenv("OPM_ML_API_KEY", raising=False)
    assert fresh_settings().api_key is None
    monkeypatch.setenv("OPM_ML_API_KEY", "k" * 16)
    fresh_settings.cache_clear()
    assert fresh_settings().api_key.get_secret_value() == "k" * 16


def test_every_bad_variable_is_named_on_one_line(monkeypatch, fresh_settings):
    monkeypatch.setenv("OPM_ML_API_PORT", "eighty")
    monkeypatch.setenv("OPM_ML_API_KEY", "short")
    with pytest.raises(SettingsError) as caught:
        fresh_settings()
    assert str(caught.value).startswith("OPM_ML_API_PORT: Input should be a valid integer")
    assert "; OPM_ML_API_KEY is too short (5 characters)" in str(caught.value)
    assert "eighty" not in str(caught.value)
