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
