"""Schedule risk (`/v1/schedules/...`): what a check and a Monte Carlo risk analysis return.

Dates are the schedule's local date-times as `YYYY-MM-DDTHH:MM` (the file's own calendar
time, no time zone); durations are working hours or working days of the project's default
calendar. Numbers that do not exist (no float for a finished activity) are null.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

STAMP = "YYYY-MM-DDTHH:MM, the schedule's local time"


class ScheduleSummary(BaseModel):
    name: str
    format: str = Field(description="xer (P6), pmxml (P6 XML) or mspdi (MS Project XML)")
    activities: int
    relationships: int
    calendars: int
    data_date: str | None = Field(description=f"progress is as of this instant ({STAMP})")
    finish: str | None = Field(description=f"deterministic CPM finish ({STAMP})")
    critical_activities: int = Field(description="activities with total float <= 0")


class PathActivity(BaseModel):
    """One activity of the longest (driving) path, first to last."""

    activity_id: str
    name: str
    start: str | None = Field(description=f"actual or early start ({STAMP})")
    finish: str | None = Field(description=f"actual or early finish ({STAMP})")
    total_float_hours: float | None
    remaining_hours: float | None
    criticality_index: float | None = Field(
        None, description="risk only: share of iterations in which it was critical")


class DcmaCheck(BaseModel):
    number: int = Field(description="1..14 of the DCMA 14-point assessment")
    name: str
    threshold: str
    value: float | None
    passed: bool | None = Field(description="null: not applicable (e.g. no baseline)")
    offender_count: int
    offenders: list[str] = Field(description="offending activities or relationships "
                                             "(the first 100)")


class Agreement(BaseModel):
    """How many of the dates and floats the writing tool stored agree with our CPM."""

    compared: int
    agree: int
    activities: int


class ScheduleCheck(BaseModel):
    """`POST /v1/schedules/check`: CPM, DCMA 14 points, agreement with the file's dates."""

    schedule: ScheduleSummary
    warnings: list[str] = Field(description="what was read with a caveat (e.g. a skipped "
                                            "broken calendar no activity uses)")
    critical_path: list[PathActivity]
    dcma: list[DcmaCheck]
    agreement: Agreement | None = Field(description="null: the file stores no dates of its own")


class UncertaintyInfo(BaseModel):
    """Where the activity distributions came from: never hidden."""

    source: str = Field(description='"activity-duration model", "template" or '
                                    '"planner estimates"')
    description: str
    model: dict[str, str] | None = Field(
        description="the registered model used {name, version, alias}; null if none")
    note: str = Field(description="why the served model was not used, when it was not")
    activities: dict[str, int] = Field(
        description="remaining activities by where their distribution came from")
    correlation: float = Field(description="Gaussian-copula correlation within a group")
    group_by: str = Field(description="correlation groups: wbs, type or none")
    risk_events: int


class Percentiles(BaseModel):
    deterministic: str | None
    p10: str | None
    p50: str | None
    p80: str | None
    p90: str | None


class DurationPercentiles(BaseModel):
    deterministic: float | None
    p10: float | None
    p50: float | None
    p80: float | None
    p90: float | None


class RatioPercentiles(BaseModel):
    p10: float | None
    p50: float | None
    p80: float | None
    p90: float | None


class MilestoneFinish(BaseModel):
    activity_id: str
    name: str
    p10: str | None
    p50: str | None
    p80: str | None
    p90: str | None


class SCurvePoint(BaseModel):
    finish: str | None
    probability: float | None = Field(description="share of iterations finished by then")


class HistogramBin(BaseModel):
    start: str | None
    end: str | None
    count: int
    share: float | None


class ActivityRisk(BaseModel):
    activity_id: str
    name: str
    criticality_index: float | None = Field(description="share of iterations on a critical "
                                                        "path (total float <= 0)")
    cruciality: float | None = Field(description="correlation of its duration with the finish")
    schedule_sensitivity_index: float | None = Field(
        description="criticality x sd(duration) / sd(finish)")
    mean_duration_hours: float | None
    sd_duration_hours: float | None


class TornadoBar(BaseModel):
    input: str = Field(description="activity id or risk name")
    kind: str = Field(description="activity or risk")
    name: str
    p80_swing_days: float | None = Field(
        description="P80 finish when the input is high (top decile / risk occurred) minus "
                    "when low, in days")
    correlation: float | None


class ScheduleRisk(BaseModel):
    """`POST /v1/schedules/risk`: the Monte Carlo schedule risk analysis of the file."""

    schedule: ScheduleSummary
    warnings: list[str]
    iterations: int
    seed: int
    uncertainty: UncertaintyInfo
    finish: Percentiles = Field(description=f"project finish ({STAMP})")
    duration_working_days: DurationPercentiles = Field(
        description="from the data date, working days of the default calendar")
    duration_ratio: RatioPercentiles = Field(
        description="simulated / deterministic remaining duration")
    milestones: list[MilestoneFinish]
    s_curve: list[SCurvePoint] = Field(description="101 points, probability 0 to 1")
    histogram: list[HistogramBin] = Field(description="30 bins of the finish")
    activities: list[ActivityRisk] = Field(description="the 50 most critical activities")
    tornado: list[TornadoBar] = Field(description="what drives the P80 finish, largest first")
    critical_path: list[PathActivity] = Field(
        description="the deterministic longest path with each activity's criticality index")
