"""Registered models: the MLflow pyfunc that serves a family end to end, and how to load it.

One registered model per family (names from settings). Its pyfunc bundles the fitted intake
and in-flight pipelines (feature function included), so one registry URI such as
`models:/opm-delay@champion` takes raw contract rows and returns forecasts, P10/P50/P90 and SHAP
values (see `training.family` for the output columns). The input schema is the contract's
intake columns plus the optional status columns; dates travel as ISO text and every number as
a double, because MLflow's schema enforcement refuses int->double or text->date casts:
`to_model_input` makes any contract frame (parsed or straight from JSON) fit that schema.
"""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import pandas as pd

from opm_ml.contract import INTAKE_COLUMNS, column
from opm_ml.features import STATUS_INPUT_COLUMNS
from opm_ml.settings import Settings, get_settings

FAMILIES = ("delay", "overrun", "resource")
MODEL_ARTIFACT = "family_model"
_DATE_COLUMNS = ("start_date", "status_date")


def registered_name(family: str, settings: Settings | None = None) -> str:
    """The registry name of a family's model, from settings (e.g. OPM_ML_MODEL_DELAY)."""
    settings = settings or get_settings()
    names = {"delay": settings.model_delay, "overrun": settings.model_overrun,
             "resource": settings.model_resource}
    if family not in names:
        raise ValueError(f"unknown model family {family!r}; expected one of {', '.join(FAMILIES)}")
    return names[family]


def use_tracking(settings: Settings | None = None) -> None:
    """Point MLflow (tracking and registry) at the configured store."""
    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)


def parse_families(text: str) -> list[str]:
    """The families a `--models` option names (`delay,overrun`), in the order given."""
    return check_families([f.strip() for f in text.split(",") if f.strip()])


def check_families(families: list[str]) -> list[str]:
    """`families` unchanged; ValueError naming the allowed ones when empty or one is unknown."""
    if not families or set(families) - set(FAMILIES):
        raise ValueError(f"--models takes {', '.join(FAMILIES)}; got {', '.join(families)}")
    return families


def load_model(family: str, alias: str = "champion",
               settings: Settings | None = None) -> mlflow.pyfunc.PyFuncModel:
    """Load the family's registered pyfunc by alias (`champion` or `challenger`)."""
    use_tracking(settings)
    return mlflow.pyfunc.load_model(f"models:/{registered_name(family, settings)}@{alias}")


def to_model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Contract rows -> the pyfunc's input: intake + present status columns, schema types.

    Raises ValueError naming any missing intake column.
    """
    missing = [c for c in INTAKE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing intake column(s): {', '.join(missing)}")
    cols = [*INTAKE_COLUMNS, *(c for c in STATUS_INPUT_COLUMNS if c in frame.columns)]
    out = {}
    for name in cols:
        values = frame[name].reset_index(drop=True)
        if name in _DATE_COLUMNS:
            dates = pd.to_datetime(values, errors="raise")
            out[name] = dates.dt.strftime("%Y-%m-%d").astype(object).where(dates.notna(), None)
        elif _kind(name) in ("str", "category"):
            out[name] = values.astype(object)
        else:
            try:
                out[name] = pd.to_numeric(values, errors="raise").astype("float64")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"column {name} must be numeric: {exc}") from None
    return pd.DataFrame(out)


def _kind(name: str) -> str:
    table = "snapshots" if name in STATUS_INPUT_COLUMNS else "projects"
    return column(table, name).kind


class FamilyPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow wrapper of a fitted `training.family.FamilyModel` (joblib artifact)."""

    def load_context(self, context) -> None:
        import joblib

        # Loaded once per process; the LightGBM boosters carry their own TreeSHAP, so no
        # explainer has to be built per request.
        self.model = joblib.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Forecasts for raw contract rows; `params={"shap": False}` skips SHAP values."""
        shap = True if params is None else bool(params.get("shap", True))
        return self.model.predict(model_input, shap=shap)
