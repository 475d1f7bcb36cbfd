"""The MLflow pyfunc of a family model: raw project rows in, forecasts with SHAP values out.

Logged as models-from-code (`pyfunc_model.py` is the model's code file) with the fitted
`FamilyModel` as a joblib artifact: loading needs `opm_ml` installed, nothing of training.
`signature(manifest, ...)` types the input as the manifest's own columns (dates as dates,
counts as integers), so a frame read from the history's Parquet or CSV passes MLflow's schema
check; status columns are optional (a row without them is scored at intake).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from opm_ml.manifest import FeatureManifest

MODEL_ARTIFACT = "family_model"
CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
_MLFLOW_TYPES = {"int": "long", "float": "double", "bool": "boolean", "category": "string",
                 "str": "string", "date": "datetime"}


class FamilyPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper of a fitted `FamilyModel` (read from the joblib artifact once)."""

    def load_context(self, context) -> None:
        import joblib

        self.model = joblib.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Forecasts for raw rows; `params={"shap": False}` skips the SHAP values."""
        shap = True if params is None else bool(params.get("shap", True))
        return self.model.predict(model_input, shap=shap).to_frame(shap)


def input_schema(manifest: FeatureManifest):
    """MLflow input schema: every intake and snapshot column with its own type."""
    from mlflow.types.schema import ColSpec, Schema

    def kind(c):  # MLflow's long cannot hold a missing value; a nullable count is a double
        return "double" if c.kind == "int" and c.nullable else _MLFLOW_TYPES[c.kind]

    return Schema([ColSpec(kind(c), c.name, required=c.stage == "intake" and not c.nullable)
                   for c in manifest.columns if c.stage in ("intake", "snapshot")])


def as_signed(manifest: FeatureManifest, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` in the types `input_schema` declares: nullable counts as floats (NaN for a
    gap), as pandas reads a CSV column of integers with empty cells."""
    nullable = [c.name for c in manifest.columns
                if c.kind == "int" and c.nullable and c.name in frame.columns]
    return frame.astype({name: "float64" for name in nullable})


def signature(manifest: FeatureManifest, output: pd.DataFrame):
    """Input schema from the manifest, output schema from an example output, param `shap`."""
    from mlflow.models import infer_signature

    inferred = infer_signature(None, output, params={"shap": True})
    inferred.inputs = input_schema(manifest)
    return inferred
