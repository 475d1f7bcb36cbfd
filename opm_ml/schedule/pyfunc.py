"""The MLflow pyfunc of the activity-duration model: activity feature rows in, the duration
ratio's P10/P50/P90 and the P50's SHAP values out.

Logged as models-from-code (`pyfunc_model.py`) with the fitted `ActivityDurationModel` as a
joblib artifact (`served.MODEL_ARTIFACT`), as the family models are: loading needs `opm_ml`
installed, nothing of training. The serving code and `schedule risk` load the joblib artifact
directly (`served.load_activity_model`); the pyfunc is for anyone scoring activities through
MLflow (`mlflow.pyfunc.load_model("models:/opm-activity-duration@champion")`).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from opm_ml.schedule.served import MODEL_ARTIFACT

CODE_FILE = Path(__file__).with_name("pyfunc_model.py")


def predict_frame(model, X: pd.DataFrame, shap: bool = True) -> pd.DataFrame:
    """`ratio_p10/p50/p90` per row (actual / planned duration), plus `shap_<feature>` and
    `shap_base` of log P50 (each row's SHAP values add up to log(ratio_p50))."""
    X = X.reset_index(drop=True)
    out = model.predict_quantiles(X)
    out.columns = ["ratio_p10", "ratio_p50", "ratio_p90"]
    if shap:
        contributions = model.explain(X)
        out = pd.concat([out, contributions.add_prefix("shap_")], axis=1)
    return out.astype(np.float64)


class ActivityDurationPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper of a fitted `ActivityDurationModel` (read from the joblib artifact)."""

    def load_context(self, context) -> None:
        import joblib

        self.model = joblib.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Quantiles for feature rows; `params={"shap": False}` skips the SHAP values."""
        shap = True if params is None else bool(params.get("shap", True))
        return predict_frame(self.model, model_input, shap)


def signature(example: pd.DataFrame, output: pd.DataFrame):
    """Input schema from an example of feature rows, output from its prediction, param `shap`."""
    from mlflow.models import infer_signature

    return infer_signature(example, output, params={"shap": True})
