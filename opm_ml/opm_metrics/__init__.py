"""OPM metrics: earned value (EVM) and earned schedule (ES) for one project or many snapshots.

`evm_single` (one snapshot, used per request by serving) and `evm_frame` (a DataFrame of
snapshots, vectorised) share one numpy core, as does `evm_columns` (aligned arrays in and out,
for the models' features and forecasts). Undefined values come back as null with a reason,
never as inf/NaN or an exception; inconsistent inputs raise ValueError naming the field.
"""

from opm_ml.opm_metrics.api import (
    INPUT_COLUMNS,
    EvmResult,
    evm_columns,
    evm_frame,
    evm_single,
)
from opm_ml.opm_metrics.consistency import REL_TOL
from opm_ml.opm_metrics.formulas import METRIC_COLUMNS
from opm_ml.opm_metrics.schedule import earned_schedule_days

__all__ = [
    "INPUT_COLUMNS",
    "METRIC_COLUMNS",
    "REL_TOL",
    "EvmResult",
    "earned_schedule_days",
    "evm_columns",
    "evm_frame",
    "evm_single",
]
