"""The runtime forecasting core: what a served model is and the one way into a prediction.

* `families`: the family registry (delay, overrun, resource): names, quantities, units, extras;
* `inputs.ProjectInputs`: projects as column arrays, from a frame or API requests;
* `model.FamilyModel.predict(inputs)` -> `result.ForecastBatch` (`to_frame()`, `to_json()`);
* `assessment`: the three families side by side with the OPM metrics;
* `estimators`: the fitted LightGBM pieces a family model is made of;
* `pyfunc`: the MLflow model wrapping a `FamilyModel`.
"""

from opm_ml.forecasting.families import FAMILIES, FAMILY_NAMES, Family, family
from opm_ml.forecasting.inputs import ProjectInputs
from opm_ml.forecasting.model import FamilyModel
from opm_ml.forecasting.result import ForecastBatch

__all__ = ["FAMILIES", "FAMILY_NAMES", "Family", "FamilyModel", "ForecastBatch",
           "ProjectInputs", "family"]
