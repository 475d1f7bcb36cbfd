"""The registered model is the runtime core's alone: MLflow loads and runs it without
`training/` (or `serving/`), on the Parquet history `opm-ml data generate` writes, as a data
team would call it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd

from opm_ml.synthetic import generate_history, write_history

# Run in a fresh interpreter where `import training` / `import serving` fail.
SCRIPT = textwrap.dedent('''
    import importlib.abc, json, sys

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("training", "serving"):
                raise ModuleNotFoundError(f"{name} is not installed here")
            return None

    sys.meta_path.insert(0, Absent())
    import mlflow.pyfunc
    import pandas as pd

    uri, parquet = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    out = {}
    for name in ("opm-delay", "opm-overrun", "opm-resource-demand"):
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
        frame = model.predict(pd.read_parquet(parquet))
        quick = model.predict(pd.read_parquet(parquet), params={"shap": False})
        out[name] = {"rows": len(frame), "columns": list(frame.columns),
                     "quick": list(quick.columns), "p50": frame.iloc[:, 2].tolist()}
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("training", "serving"))
    print(json.dumps({"models": out, "loaded": loaded}))
''')


def test_a_registered_model_predicts_the_generated_parquet_without_training(small_registry,
                                                                            tmp_path):
    settings, _ = small_registry
    history = generate_history(40, seed=9)
    write_history(history, tmp_path)  # what `opm-ml data generate` writes
    projects = tmp_path / "projects.parquet"
    frame = pd.read_parquet(projects)
    assert frame["start_date"].dtype.kind == "M" and frame["planned_duration_days"].dtype.kind == "i"
    done = subprocess.run([sys.executable, "-c", SCRIPT, settings.mlflow_tracking_uri,
                           str(projects)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []  # nothing of training or serving was imported
    from opm_ml.model_set import load_model_set

    served = load_model_set(settings)
    for name, out in result["models"].items():
        assert out["rows"] == len(frame)
        assert any(c.startswith("shap__") for c in out["columns"])
        assert not any(c.startswith("shap") for c in out["quick"])
        family = next(m for m in served.models.values() if m.name == name)
        expected = family.model.predict(frame).to_frame()
        assert out["columns"] == list(expected.columns)
        pd.testing.assert_series_equal(pd.Series(out["p50"]),
                                       expected.iloc[:, 2].reset_index(drop=True),
                                       check_names=False, rtol=1e-12)


def test_a_count_with_gaps_is_logged_and_predicted(tmp_path):
    """An integer feature with empty cells (common in exports) passes MLflow's signature
    check when the model is logged and when the registered pyfunc scores rows with gaps."""
    import mlflow.pyfunc
    import numpy as np

    from opm_ml.profiles.build import profile_manifest
    from opm_ml.profiles.profile import parse_profile
    from opm_ml.profiles.reader import read_history
    from opm_ml.settings import Settings
    from training.pipeline import train_models

    rng = np.random.default_rng(3)
    n = 80
    estimate = rng.uniform(20, 400, n).round()
    team = rng.integers(1, 9, n).astype(object)
    team[::7] = None  # gaps in an integer column
    export = pd.DataFrame({"Id": [f"T{i}" for i in range(n)], "Est": estimate,
                           "Act": (estimate * rng.lognormal(0.1, 0.3, n)).round(),
                           "Team": team, "Started": pd.date_range("2021-01-04", periods=n,
                                                                  freq="5D")})
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    profile = parse_profile({
        "name": "gaps", "roles": {"project_id": "Id", "start_date": "Started",
                                  "planned_effort_hours": "Est", "actual_effort_hours": "Act"},
        "features": {"team_size": {"column": "Team", "type": "integer"}}}, "gaps.toml")
    history = read_history(profile, path)
    manifest = profile_manifest(profile, history)
    settings = Settings(_env_file=None, mlflow_tracking_uri=f"sqlite:///{tmp_path}/m.db",
                        mlflow_artifact_root=tmp_path / "artifacts")
    result = train_models(history, ["resource"], settings=settings, manifest=manifest)
    assert result.results[0].decision.promoted
    from opm_ml import mlflow_access

    with mlflow_access.tracking(settings):
        model = mlflow.pyfunc.load_model("models:/opm-gaps-resource-demand@champion")
    # The rows as a data team has them: a count column with gaps reads as floats with NaN.
    rows = pd.read_csv(path).head(10).rename(columns={
        "Started": "start_date", "Est": "planned_effort_hours", "Team": "team_size"})
    rows["start_date"] = pd.to_datetime(rows["start_date"])
    assert rows["team_size"].isna().any() and rows["team_size"].dtype == "float64"
    assert len(model.predict(rows[["start_date", "planned_effort_hours", "team_size"]])) == 10


def test_a_plan_of_zero_or_less_gets_no_forecast_when_validation_is_skipped(small_registry):
    """A frame fed to the model directly skips validation; a plan of 0 or less is then no
    plan (the forecast is its multiple): that row gets no forecast, not 0 days and a division
    warning, and the others are untouched."""
    import warnings

    import numpy as np

    from opm_ml.model_set import load_model_set
    from opm_ml.synthetic import generate_history

    frame = generate_history(6, seed=3).projects.copy()
    models = load_model_set(small_registry[0]).family_models()
    before = {f: m.predict(frame, shap=False).to_frame(shap=False) for f, m in models.items()}
    for column in ("planned_duration_days", "budget_at_completion", "planned_effort_hours"):
        frame.loc[frame.index[1], column] = 0
        frame.loc[frame.index[2], column] = -5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = {f: m.predict(frame, shap=False).to_frame(shap=False)
                 for f, m in models.items()}
    for family, out in after.items():
        p50 = out.filter(like="_p50").iloc[:, 0]
        assert p50.iloc[[1, 2]].isna().all(), family
        pd.testing.assert_frame_equal(out.drop(index=[1, 2]), before[family].drop(index=[1, 2]))
        assert np.isfinite(p50.drop(index=[1, 2]).to_numpy(dtype=float)).all()
