"""The family registry: everything opm-ml knows about delay, overrun and resource demand.

Name, URL slug, model spec file, the planned column a forecast scales, the forecast quantity
and its unit, the training target, the earned-value index forecasts it is compared with, and
the family's extra outputs. Every other module asks this registry instead of spelling a family
out, so a family has one name per purpose and one place to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

LEVELS = ("p10", "p50", "p90")
STAGES = ("intake", "inflight")


@dataclass(frozen=True)
class Output:
    """One family output: `kind` says how it is stored and written (frame and JSON).

    levels: (n, 3) P10/P50/P90; scalar: (n,); dates: (n, 3) datetime64[D];
    role_levels: (n, roles, 3), frame columns `frame_name.format(role=...)`;
    profile: a list of JSON-ready dicts; constant: one value for every row (JSON only).
    """

    name: str
    kind: str
    frame_name: str = ""


@dataclass(frozen=True)
class Family:
    """One model family; see the module docstring for what each field is used for."""

    name: str  # as in specs, CLI options and frame prefixes: delay, overrun, resource
    slug: str  # URL path and served task name
    spec_file: str  # in models/
    planned: str  # the planned value the forecast ratio multiplies
    quantity: str  # what is forecast, in `unit`
    unit: str
    actual: str  # the outcome column the training target is built from
    target: str  # log(actual / planned)
    ratio_output: str  # label of P50 / planned in the served-prediction metrics
    evm_scale: str  # the planned value the EVM index forecasts are a ratio of
    evm_baselines: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""

    @property
    def output_space(self) -> str:
        return f"log({self.quantity} / {self.planned})"

    def outputs(self, has_roles: bool = False, has_profile: bool = False,
                has_dates: bool = False, has_late: bool = False) -> tuple[Output, ...]:
        """The outputs a fitted model of this family gives (by what it was trained with)."""
        main = (Output(self.quantity, "levels", self.quantity),)
        return main + self._extras(has_roles, has_profile, has_dates, has_late)

    def extras(self, quantiles: np.ndarray, planned: np.ndarray, stage_out: dict,
               start: np.ndarray | None) -> dict[str, np.ndarray]:
        """The family's extra output arrays from its quantiles (n, 3) and the stage outputs."""
        return {}

    def _extras(self, has_roles, has_profile, has_dates, has_late) -> tuple[Output, ...]:
        return ()


class _Delay(Family):
    def _extras(self, has_roles, has_profile, has_dates, has_late):
        out = [Output("delay_days", "levels", "delay_days")]
        if has_late:
            out += [Output("probability_late", "scalar", "probability_late"),
                    Output("late_threshold", "constant")]
        if has_dates:
            out.append(Output("finish_date", "dates", "finish_date"))
        return tuple(out)

    def extras(self, quantiles, planned, stage_out, start):
        out = {"delay_days": quantiles - planned[:, None]}
        if "probability_late" in stage_out:
            out["probability_late"] = stage_out["probability_late"]
        if start is not None:
            # Capped so the sum cannot overflow: anything past 9999-12-31 becomes null anyway.
            # (`fmin` caps a NaN too; its date is replaced by NaT below. `nan_to_num` cost
            # ~12 µs on one project's three values.)
            days = np.rint(np.fmin(quantiles, MAX_DAYS))
            finish = start[:, None] + days.astype(np.int64).astype("timedelta64[D]")
            out["finish_date"] = np.where(np.isnan(quantiles), np.datetime64("NaT"), finish)
        return out


class _Overrun(Family):
    def _extras(self, has_roles, has_profile, has_dates, has_late):
        return (Output("overrun_pct", "levels", "overrun_pct"),)

    def extras(self, quantiles, planned, stage_out, start):
        return {"overrun_pct": 100 * (quantiles / planned[:, None] - 1)}


class _Resource(Family):
    def _extras(self, has_roles, has_profile, has_dates, has_late):
        out = []
        if has_roles:
            out.append(Output("effort_by_role", "role_levels", "effort_{role}_hours"))
        if has_profile:
            out.append(Output("monthly_profile", "profile", "monthly_profile"))
        return tuple(out)

    def extras(self, quantiles, planned, stage_out, start):
        if "role_ratios" not in stage_out:
            return {}
        return {"effort_by_role": stage_out["role_ratios"] * planned[:, None, None]}


# More days than lie between any start date and 9999-12-31 (~11,000 years).
MAX_DAYS = 4_000_000
_COST_EAC = MappingProxyType({"eac_cpi": "eac_cpi", "eac_cpi_spi": "eac_cpi_spi"})

FAMILIES: MappingProxyType = MappingProxyType({
    "delay": _Delay(
        name="delay", slug="delay", spec_file="delay.toml",
        planned="planned_duration_days", quantity="duration_days", unit="calendar days",
        actual="actual_duration_days", target="log_duration_ratio",
        ratio_output="duration_ratio", evm_scale="planned_duration_days",
        evm_baselines=MappingProxyType({"ieac_t": "ieac_t_days"}),
        description="duration at completion and the probability of finishing late",
    ),
    "overrun": _Overrun(
        name="overrun", slug="overrun", spec_file="overrun.toml",
        planned="budget_at_completion", quantity="cost", unit="currency",
        actual="actual_cost", target="log_cost_ratio", ratio_output="cost_ratio",
        evm_scale="budget_at_completion", evm_baselines=_COST_EAC,
        description="cost at completion against the budget",
    ),
    # Effort tracks cost in earned value: planned effort x the cost EAC / BAC.
    "resource": _Resource(
        name="resource", slug="resource-demand", spec_file="resource_demand.toml",
        planned="planned_effort_hours", quantity="effort_hours", unit="hours",
        actual="actual_effort_hours", target="log_effort_ratio", ratio_output="effort_ratio",
        evm_scale="budget_at_completion", evm_baselines=_COST_EAC,
        description="total effort, effort by role and its monthly profile",
    ),
})
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)
BY_SLUG: MappingProxyType = MappingProxyType({f.slug: f for f in FAMILIES.values()})


def family(name: str) -> Family:
    """The family called `name` (or by its slug); ValueError naming the known ones."""
    found = FAMILIES.get(name) or BY_SLUG.get(name)
    if found is None:
        raise ValueError(f"unknown model family {name!r}; expected one of "
                         f"{', '.join(FAMILY_NAMES)}")
    return found


def parse_families(text: str) -> list[str]:
    """The families a `--models` option names (`delay,overrun`), in the order given."""
    return check_families([f.strip() for f in text.split(",") if f.strip()])


def check_families(names: list[str]) -> list[str]:
    """`names` unchanged; ValueError naming the allowed ones when empty or one is unknown."""
    if not names or set(names) - set(FAMILY_NAMES):
        raise ValueError(f"--models takes {', '.join(FAMILY_NAMES)}; got {', '.join(names)}")
    return names
