"""The models-from-code file MLflow stores with every family model (see `pyfunc.py`)."""

import mlflow.models

from opm_ml.forecasting.pyfunc import FamilyPyfunc

mlflow.models.set_model(FamilyPyfunc())
