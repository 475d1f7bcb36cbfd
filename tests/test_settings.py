"""Settings: embedded defaults inside the project folder, every field overridable by env."""

from pathlib import Path

from opm_ml.settings import PROJECT_ROOT, Settings


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
