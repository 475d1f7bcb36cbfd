"""When a snapshot contradicts its plan: the conditions the EVM core refuses, as row masks.

Written once here and used twice: `opm_metrics` raises on them, and `opm_ml.rules` reports
each offending row (history validation, API requests, batch scoring), so data that passes
validation never fails later inside the metrics.
"""

from __future__ import annotations

import numpy as np

# Relative to BAC: rounding noise (e.g. cents) in PV/EV is not an input error.
REL_TOL = 1e-6


def above_bac(amount: np.ndarray, bac: np.ndarray) -> np.ndarray:
    """PV or EV above the budget at completion (beyond rounding)."""
    return amount > bac * (1 + REL_TOL)


def short_of_bac_after_finish(pv: np.ndarray, bac: np.ndarray, at_days: np.ndarray,
                              duration_days: np.ndarray) -> np.ndarray:
    """PV below BAC on or after the planned finish: the baseline reaches BAC on that day."""
    return (at_days >= duration_days) & (pv < bac * (1 - REL_TOL))
