"""The models-from-code file MLflow stores with every activity-duration model (`pyfunc.py`)."""

import mlflow.models

from opm_ml.schedule.pyfunc import ActivityDurationPyfunc

mlflow.models.set_model(ActivityDurationPyfunc())
