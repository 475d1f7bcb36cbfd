"""Schedule risk from the planner's own schedule: read P6/MS Project files, CPM, DCMA, Monte Carlo.

`read_schedule` / `write_schedule` (XER, P6 XML, MSPDI), `run_cpm`, `assess` (DCMA 14 points),
`run_monte_carlo` with an `Uncertainty` (distributions, copula groups, risk events), and the
learned `ActivityDurationModel`. See docs/schedule-risk.md.
"""

from opm_ml.schedule.cpm import CPMResult, run_cpm
from opm_ml.schedule.dcma import assess
from opm_ml.schedule.distributions import Estimate, RiskEvent, Uncertainty
from opm_ml.schedule.files import read_schedule, write_schedule
from opm_ml.schedule.model import Schedule, ScheduleError
from opm_ml.schedule.montecarlo import RiskResult, run_monte_carlo
from opm_ml.schedule.uncertainty import ActivityDurationModel

__all__ = [
    "ActivityDurationModel",
    "CPMResult",
    "Estimate",
    "RiskEvent",
    "RiskResult",
    "Schedule",
    "ScheduleError",
    "Uncertainty",
    "assess",
    "read_schedule",
    "run_cpm",
    "run_monte_carlo",
    "write_schedule",
]
