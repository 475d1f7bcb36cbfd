"""The generator's parameters: one profile per project type plus the true causal effects.

Every number the generator draws from lives here, so `data/README.md` can cite it and the oracle
(`opm_ml.synthetic.oracle`) and the tests use exactly what the generator used.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from opm_ml.contract import METHODOLOGIES, PROJECT_TYPES, REGIONS, ROLES, SECTORS


@dataclass(frozen=True)
class TypeProfile:
    """Intake distributions and outcome parameters of one project type (a reference class)."""

    share: float  # of the portfolio
    bac_median: float  # currency
    bac_sigma: float  # sd of log BAC
    duration_median_days: float  # planned duration at the median BAC
    duration_exponent: float  # planned duration ~ BAC ** exponent
    duration_sigma: float
    labour_share: float  # share of BAC spent on labour
    rate_multiplier: float  # times the regional blended hourly rate
    role_mix: tuple[float, ...]  # expected planned effort share per role (ROLES order)
    complexity_offset: float  # shifts the latent complexity score
    volatility_offset: float
    vendors_mean: float  # at the median BAC
    dependencies_mean: float
    sector_probs: tuple[float, ...]  # SECTORS order
    region_probs: tuple[float, ...]  # REGIONS order
    method_probs_2012: tuple[float, ...]  # METHODOLOGIES order; drifts linearly to 2025
    method_probs_2025: tuple[float, ...]
    roi_log_mean: float  # mean of log(1 + ROI) in the business case
    roi_sigma: float
    risks_mean: float  # identified risks of a typical project when a register is kept
    cost_base: float  # log cost ratio of a typical project, body of the distribution
    schedule_base: float
    cost_trouble: float  # loading of the shared latent "trouble" factor
    schedule_trouble: float
    cost_noise: float  # sd of the unexplained normal noise
    schedule_noise: float
    swan_prob: float  # black-swan probability of a typical project
    swan_cost: tuple[float, float, float]  # tail overrun = min + Lomax(scale, alpha)
    swan_schedule: tuple[float, float, float]
    effort_elasticity: float  # log effort ratio per unit log cost ratio


# Type mix, sizes and overruns follow published reference classes (see data/README.md):
# IT ~1 in 6 black swans (Flyvbjerg & Budzier 2011); transport infrastructure ~9 in 10 over
# budget, 20-45 % on average (Flyvbjerg et al. 2002/2003); routine building lower and less often.
TYPE_PROFILES: dict[str, TypeProfile] = {
    "it_software": TypeProfile(
        share=0.30, bac_median=1.5e6, bac_sigma=1.1,
        duration_median_days=300, duration_exponent=0.33, duration_sigma=0.30,
        labour_share=0.70, rate_multiplier=1.00,
        role_mix=(0.10, 0.15, 0.12, 0.35, 0.20, 0.08),
        complexity_offset=0.2, volatility_offset=0.4, vendors_mean=1.5, dependencies_mean=3.0,
        sector_probs=(0.15, 0.25, 0.06, 0.10, 0.15, 0.07, 0.15, 0.07),
        region_probs=(0.35, 0.30, 0.22, 0.07, 0.06),
        method_probs_2012=(0.30, 0.50, 0.20), method_probs_2025=(0.60, 0.12, 0.28),
        roi_log_mean=0.45, roi_sigma=0.45, risks_mean=12,
        cost_base=0.065, schedule_base=0.104, cost_trouble=0.12, schedule_trouble=0.14,
        cost_noise=0.14, schedule_noise=0.16,
        swan_prob=0.120, swan_cost=(0.5, 1.17, 2.5), swan_schedule=(0.1, 0.27, 2.5),
        effort_elasticity=0.90,
    ),
    "construction": TypeProfile(
        share=0.20, bac_median=8e6, bac_sigma=1.1,
        duration_median_days=540, duration_exponent=0.30, duration_sigma=0.25,
        labour_share=0.35, rate_multiplier=0.70,
        role_mix=(0.10, 0.05, 0.15, 0.55, 0.08, 0.07),
        complexity_offset=-0.3, volatility_offset=-0.6, vendors_mean=4.0, dependencies_mean=1.5,
        sector_probs=(0.30, 0.05, 0.08, 0.12, 0.03, 0.15, 0.12, 0.15),
        region_probs=(0.30, 0.28, 0.25, 0.09, 0.08),
        method_probs_2012=(0.02, 0.88, 0.10), method_probs_2025=(0.05, 0.75, 0.20),
        roi_log_mean=0.25, roi_sigma=0.30, risks_mean=15,
        cost_base=0.098, schedule_base=0.177, cost_trouble=0.08, schedule_trouble=0.10,
        cost_noise=0.10, schedule_noise=0.12,
        swan_prob=0.022, swan_cost=(0.15, 0.22, 3.0), swan_schedule=(0.1, 0.05, 3.0),
        effort_elasticity=0.60,
    ),
    "infrastructure": TypeProfile(
        share=0.10, bac_median=6e7, bac_sigma=1.3,
        duration_median_days=1280, duration_exponent=0.30, duration_sigma=0.30,
        labour_share=0.25, rate_multiplier=0.80,
        role_mix=(0.10, 0.06, 0.18, 0.52, 0.07, 0.07),
        complexity_offset=0.4, volatility_offset=-0.4, vendors_mean=7.0, dependencies_mean=4.0,
        sector_probs=(0.44, 0.01, 0.20, 0.03, 0.07, 0.04, 0.01, 0.20),
        region_probs=(0.22, 0.25, 0.28, 0.10, 0.15),
        method_probs_2012=(0.01, 0.92, 0.07), method_probs_2025=(0.03, 0.80, 0.17),
        roi_log_mean=0.35, roi_sigma=0.40, risks_mean=30,
        cost_base=0.187, schedule_base=0.264, cost_trouble=0.10, schedule_trouble=0.14,
        cost_noise=0.12, schedule_noise=0.18,
        swan_prob=0.051, swan_cost=(0.3, 0.42, 2.5), swan_schedule=(0.1, 0.08, 2.5),
        effort_elasticity=0.55,
    ),
    "manufacturing": TypeProfile(
        share=0.10, bac_median=5e6, bac_sigma=1.0,
        duration_median_days=420, duration_exponent=0.30, duration_sigma=0.30,
        labour_share=0.30, rate_multiplier=0.70,
        role_mix=(0.08, 0.07, 0.15, 0.45, 0.15, 0.10),
        complexity_offset=-0.1, volatility_offset=-0.3, vendors_mean=3.0, dependencies_mean=2.0,
        sector_probs=(0.03, 0.01, 0.12, 0.08, 0.04, 0.55, 0.12, 0.05),
        region_probs=(0.28, 0.27, 0.33, 0.07, 0.05),
        method_probs_2012=(0.05, 0.75, 0.20), method_probs_2025=(0.12, 0.55, 0.33),
        roi_log_mean=0.35, roi_sigma=0.35, risks_mean=12,
        cost_base=0.092, schedule_base=0.168, cost_trouble=0.08, schedule_trouble=0.10,
        cost_noise=0.10, schedule_noise=0.12,
        swan_prob=0.030, swan_cost=(0.15, 0.28, 3.0), swan_schedule=(0.1, 0.10, 3.0),
        effort_elasticity=0.60,
    ),
    "rnd": TypeProfile(
        share=0.15, bac_median=2e6, bac_sigma=1.1,
        duration_median_days=480, duration_exponent=0.30, duration_sigma=0.35,
        labour_share=0.60, rate_multiplier=1.10,
        role_mix=(0.08, 0.25, 0.20, 0.30, 0.12, 0.05),
        complexity_offset=0.6, volatility_offset=0.7, vendors_mean=1.0, dependencies_mean=1.5,
        sector_probs=(0.15, 0.05, 0.12, 0.25, 0.13, 0.25, 0.02, 0.03),
        region_probs=(0.35, 0.32, 0.25, 0.04, 0.04),
        method_probs_2012=(0.35, 0.35, 0.30), method_probs_2025=(0.50, 0.15, 0.35),
        roi_log_mean=0.60, roi_sigma=0.70, risks_mean=14,
        cost_base=0.069, schedule_base=0.129, cost_trouble=0.14, schedule_trouble=0.16,
        cost_noise=0.18, schedule_noise=0.20,
        swan_prob=0.071, swan_cost=(0.4, 0.59, 2.5), swan_schedule=(0.1, 0.44, 2.5),
        effort_elasticity=0.85,
    ),
    "business_change": TypeProfile(
        share=0.15, bac_median=8e5, bac_sigma=1.0,
        duration_median_days=270, duration_exponent=0.30, duration_sigma=0.30,
        labour_share=0.65, rate_multiplier=1.05,
        role_mix=(0.15, 0.25, 0.10, 0.20, 0.10, 0.20),
        complexity_offset=0.0, volatility_offset=0.5, vendors_mean=1.5, dependencies_mean=4.0,
        sector_probs=(0.25, 0.25, 0.08, 0.12, 0.10, 0.05, 0.12, 0.03),
        region_probs=(0.33, 0.33, 0.20, 0.07, 0.07),
        method_probs_2012=(0.15, 0.55, 0.30), method_probs_2025=(0.35, 0.25, 0.40),
        roi_log_mean=0.40, roi_sigma=0.50, risks_mean=12,
        cost_base=0.079, schedule_base=0.139, cost_trouble=0.12, schedule_trouble=0.14,
        cost_noise=0.14, schedule_noise=0.16,
        swan_prob=0.054, swan_cost=(0.3, 0.39, 2.5), swan_schedule=(0.1, 0.23, 2.5),
        effort_elasticity=0.85,
    ),
}

# Blended hourly labour rate by region (currency per hour), before the type multiplier.
REGION_RATES: dict[str, float] = {
    "north_america": 95.0, "europe": 85.0, "asia_pacific": 55.0,
    "latin_america": 45.0, "middle_east_africa": 50.0,
}


@dataclass(frozen=True)
class IntakeLinks:
    """How intake fields depend on each other (size, type and methodology drive the rest)."""

    rate_sigma: float = 0.15  # sd of log hourly rate around the regional rate
    ordinal_cuts: tuple[float, ...] = (-1.3, -0.45, 0.45, 1.3)  # latent score -> 1..5
    complexity_per_size_sd: float = 0.45  # bigger projects are more complex
    volatility_per_complexity_score: float = 0.25
    volatility_method_shift: tuple[float, ...] = (0.3, -0.2, 0.0)  # agile chosen for churn
    vendors_per_log_size: float = 0.4
    dependencies_per_log_size: float = 0.25
    dependencies_per_complexity: float = 0.15
    dependencies_public_factor: float = 1.3
    count_dispersion_shape: float = 2.0  # gamma-Poisson shape of vendor/dependency counts
    pm_years_gamma: tuple[float, float] = (4.0, 2.2)  # shape, scale: mean 8.8 years
    pm_years_per_size_sd: float = 0.12  # bigger projects get more experienced managers
    strategic_fit_beta: tuple[float, float] = (4.0, 3.0)  # times 10


INTAKE_LINKS = IntakeLinks()
HOURS_PER_FTE_YEAR = 1650.0
PEAK_TO_MEAN_STAFFING = 1.3  # planned peak head-count over average head-count
ROLE_MIX_CONCENTRATION = 80.0  # Dirichlet concentration around a type's role mix
NO_RISK_REGISTER_PROB = 0.08  # projects that keep no risk register (0 risks, severity 0)


@dataclass(frozen=True)
class Effects:
    """True coefficients of one outcome's linear predictor (log ratio, or black-swan logit).

    Drivers are centred so the type intercept describes a typical project: complexity and
    volatility minus 3, vendors/dependencies as log1p minus log1p of the type's mean, PM
    experience as log((years + 1) / 10), size as log(BAC / type median BAC).
    """

    complexity: float
    volatility_waterfall: float  # slope per volatility point, by methodology
    volatility_hybrid: float
    volatility_agile: float
    method_agile: float  # offsets against hybrid
    method_waterfall: float
    log_vendors: float
    log_dependencies: float
    log_pm_experience: float  # negative: experience protects
    log_size: float
    public_sector: float
    latent_trouble: float  # multiplies the type loading (log ratios) or T itself (swan logit)


# Agile dampens, waterfall amplifies the effect of volatility on schedule (and, less, on cost).
TRUE_EFFECTS: dict[str, Effects] = {
    "cost": Effects(
        complexity=0.05, volatility_waterfall=0.06, volatility_hybrid=0.045,
        volatility_agile=0.03, method_agile=0.0, method_waterfall=0.0, log_vendors=0.04,
        log_dependencies=0.02, log_pm_experience=-0.08, log_size=0.03, public_sector=0.04,
        latent_trouble=1.0,
    ),
    "schedule": Effects(
        complexity=0.05, volatility_waterfall=0.09, volatility_hybrid=0.055,
        volatility_agile=0.02, method_agile=0.02, method_waterfall=-0.02, log_vendors=0.03,
        log_dependencies=0.06, log_pm_experience=-0.08, log_size=0.04, public_sector=0.05,
        latent_trouble=1.0,
    ),
    "black_swan": Effects(
        complexity=0.25, volatility_waterfall=0.20, volatility_hybrid=0.20,
        volatility_agile=0.20, method_agile=0.0, method_waterfall=0.0, log_vendors=0.10,
        log_dependencies=0.10, log_pm_experience=-0.30, log_size=0.15, public_sector=0.20,
        latent_trouble=0.6,
    ),
}
COST_SCHEDULE_NOISE_CORRELATION = 0.3  # of the normal noise terms; T and swans add more


@dataclass(frozen=True)
class LatentSignals:
    """How the unobserved trouble factor T ~ N(0, 1) leaks into intake fields (partially)."""

    roi_per_trouble: float = 0.15  # optimism bias: troubled business cases promise more
    roi_per_fit_point: float = 0.06  # strategic fit raises claimed ROI (fit has no outcome effect)
    risks_per_trouble: float = 0.35  # log-rate of identified risks
    risks_per_complexity: float = 0.20
    risks_per_volatility: float = 0.10
    risks_per_log_size: float = 0.25
    risks_per_log_pm: float = 0.15  # experienced PMs register more risks
    severity_base: float = -0.2  # logit scale; severity = 1 + 4 * sigmoid(z)
    severity_per_trouble: float = 0.45
    severity_per_complexity: float = 0.25
    severity_risk_sd: float = 0.9  # per-risk spread; the mean of n risks has sd 0.9 / sqrt(n)


LATENT_SIGNALS = LatentSignals()

# Role effort multipliers (log scale) per volatility point and per unit log schedule ratio:
# rework inflates analysis and testing; management books hours for as long as the project runs.
ROLE_VOLATILITY_EFFECT = dict(zip(ROLES, (0.0, 0.08, 0.03, 0.0, 0.10, 0.02)))
ROLE_SCHEDULE_EFFECT = dict(zip(ROLES, (0.8, 0.0, 0.0, 0.0, 0.2, 0.0)))
ROLE_EFFORT_NOISE = 0.10
EFFORT_NOISE = 0.08

# Phase profiles: Kumaraswamy(a, b) densities over the fraction of actual duration elapsed.
ROLE_PHASE_SHAPES: dict[str, tuple[float, float]] = {
    "management": (1.0, 1.0),  # flat
    "analysis": (1.2, 4.5),  # early
    "design": (1.8, 5.0),  # early-mid
    "build": (2.5, 4.0),  # middle
    "testing": (3.5, 2.5),  # mid-late
    "deployment": (8.0, 1.5),  # at the end
}
MONTHLY_HOURS_NOISE = 0.12
SWAN_TAIL_RANK_CORRELATION = 0.7  # big cost blow-outs come with long delays (Gaussian copula)

# Outcome bounds: sane physical limits, rarely binding (see data/README.md).
COST_RATIO_BOUNDS = (0.4, 25.0)
SCHEDULE_RATIO_BOUNDS = (0.5, 5.0)
MAX_ACTUAL_DURATION_DAYS = 18_000  # keeps month_index within the contract's 600

# Earned-value dynamics.
S_CURVE_A = (1.7, 2.3)  # Kumaraswamy shape ranges of the planned S-curve, per project
S_CURVE_B = (2.0, 3.0)
UNIFORM_SLIPPAGE_BETA = (1.2, 4.0)  # weight of "slow from day one" vs "drifts late" slippage
EV_NOISE = 0.06  # logit scale
AC_NOISE = 0.01
CPI_EARLY_BIAS = 0.5  # early CPI = final CPI * exp(bias * log cost ratio * h(progress))
CPI_EARLY_NOISE = 0.06
CPI_SETTLE_PROGRESS = 0.08  # h(p) = exp(-p / 0.08): within a few % of final by 20 % complete
CPI_DRIFT_NOISE = 0.04  # plus a per-project deviation shrinking linearly to 0 at completion


@dataclass(frozen=True)
class LateCpiDrift:
    """Systematic late worsening of the cumulative CPI, larger for troubled projects.

    After `onset_progress` the cumulative CPI falls from final CPI x exp(size) to the final CPI,
    linearly in progress (Christensen & Payne 1992; Christensen & Heise 1993: stable within
    10 % after 20 % complete, and when it moves it mostly worsens). size = max_size x
    expit(base + slopes x centred drivers + N(0, noise^2)); drivers as in `Effects`.
    """

    max_size: float = 0.30  # log CPI: an upper bound, so the drift stays a drift
    base: float = -2.8  # logit of size / max_size for a typical hybrid project
    volatility: float = 0.60  # per point: late scope churn
    log_vendors: float = 0.50  # supplier claims and integration at the end
    log_dependencies: float = 0.35
    complexity: float = 0.30
    method_agile: float = -0.20  # churn absorbed sprint by sprint rather than at the end
    method_waterfall: float = 0.20  # integration and test surprises come late
    noise: float = 0.5  # per-project logit noise: the unpredictable part of the drift
    onset_progress: float = 0.2


LATE_CPI_DRIFT = LateCpiDrift()

FIRST_START = np.datetime64("2012-01-01")
START_WINDOW_END_GAP_DAYS = 90  # last start is this many days before as_of
METHOD_DRIFT_YEARS = (2012, 2025)


def type_array(name: str) -> np.ndarray:
    """One TypeProfile field as an array in PROJECT_TYPES order (index = type code)."""
    return np.array([getattr(TYPE_PROFILES[t], name) for t in PROJECT_TYPES], dtype=float)


def _check_profiles() -> None:
    """Fail at import if a table does not match the contract's category lists."""
    if (tuple(TYPE_PROFILES), tuple(REGION_RATES), tuple(ROLE_PHASE_SHAPES)) != (
            PROJECT_TYPES, REGIONS, ROLES):
        raise ValueError("synthetic params: type/region/role tables must follow the contract")
    sizes = {"role_mix": len(ROLES), "sector_probs": len(SECTORS), "region_probs": len(REGIONS),
             "method_probs_2012": len(METHODOLOGIES), "method_probs_2025": len(METHODOLOGIES)}
    for t, profile in TYPE_PROFILES.items():
        for f in fields(profile):
            value = getattr(profile, f.name)
            if f.name in sizes and (len(value) != sizes[f.name] or abs(sum(value) - 1) > 1e-9):
                raise ValueError(f"synthetic params: {t}.{f.name} must have {sizes[f.name]} "
                                 f"entries summing to 1, got {value}")
    if abs(sum(p.share for p in TYPE_PROFILES.values()) - 1) > 1e-9:
        raise ValueError("synthetic params: type shares must sum to 1")


_check_profiles()
