"""Realistic synthetic project histories: the default data every opm-ml model trains on.

`generate_history` draws a portfolio whose overruns follow documented causes plus noise.
`expected_log_overrun` and `oracle_forecast` give the generator's own conditional expectations
from intake fields, and `floor_metrics` their errors: the achievable floor that a model's
accuracy is judged against (see data/README.md).
"""

from opm_ml.synthetic.floor import floor_metrics
from opm_ml.synthetic.history import History, generate_history, write_history, write_sample
from opm_ml.synthetic.oracle import expected_log_overrun, oracle_forecast
from opm_ml.synthetic.params import TRUE_EFFECTS

__all__ = [
    "History",
    "TRUE_EFFECTS",
    "expected_log_overrun",
    "floor_metrics",
    "generate_history",
    "oracle_forecast",
    "write_history",
    "write_sample",
]
