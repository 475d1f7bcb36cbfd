"""Batch scoring (`opm-ml score`): forecasts, SHAP explanations and OPM metrics for many rows.

`inputs` reads and validates rows (the API's schema), `scoring` loads the registered models and
scores validated rows, `runs` drives the chunk loop on this machine or one Dask task per Parquet
part, `cli` is the command. The CLI and the benchmark use only the names exported here.
"""

from opm_ml.batch_scoring.inputs import REPORT_COLUMNS, ScoringInputError, validate_rows
from opm_ml.batch_scoring.runs import Outcome, score_dask, score_files
from opm_ml.batch_scoring.scoring import ModelsUnavailable, ScoringModels, load_models, score_frame

__all__ = [
    "REPORT_COLUMNS",
    "ModelsUnavailable",
    "Outcome",
    "ScoringInputError",
    "ScoringModels",
    "load_models",
    "score_dask",
    "score_files",
    "score_frame",
    "validate_rows",
]
