"""Monte Carlo schedule risk analysis, vectorised over iterations.

Iterations run in chunks: each chunk samples all activity durations at once (Gaussian copula,
inverse CDFs), adds the risk events that occur, then runs the forward and backward passes of
`passes.PassPlan` over every iteration of the chunk together (one loop over the activities in
topological order, computed once). Outputs: the finish and milestone percentiles, histogram
and S-curve, criticality index, cruciality and schedule sensitivity index, and a tornado of
what moves the P80 finish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from opm_ml.schedule.calendars import from_minutes
from opm_ml.schedule.distributions import KINDS, Uncertainty, sample_durations, triangular_ppf
from opm_ml.schedule.model import Schedule, ScheduleError
from opm_ml.schedule.network import COMPLETE, Network, compile_network
from opm_ml.schedule.passes import PassPlan

PERCENTILES = (10, 50, 80, 90)
CHUNK = 2048  # iterations per vectorised block: bounded memory, large array operations
TORNADO_SIZE = 15
MAX_ITERATIONS = 100_000  # sampled durations are kept: 2,000 activities x 100k = 0.8 GB


@dataclass
class RiskResult:
    """What a Monte Carlo run found; instants are minutes since the epoch (see calendars)."""

    network: Network
    finish: np.ndarray  # (N,) project finish instants
    deterministic_finish: float
    milestones: pd.DataFrame  # P10..P90 finish per milestone
    activities: pd.DataFrame  # criticality, cruciality, SSI per activity
    tornado: pd.DataFrame  # inputs ranked by their swing of the P80 finish (days)
    working_days: np.ndarray  # (N,) project duration in working days of the default calendar
    deterministic_days: float

    def finish_percentiles(self) -> dict[int, pd.Timestamp]:
        return {p: pd.Timestamp(from_minutes(np.percentile(self.finish, p)))
                for p in PERCENTILES}

    def duration_ratio(self, q: float = 50) -> float:
        """Percentile q of simulated / deterministic project working duration."""
        return float(np.percentile(self.working_days, q) / self.deterministic_days)

    def histogram(self, bins: int = 30) -> pd.DataFrame:
        """Finish-date histogram: bin start date, count, share of iterations."""
        counts, edges = np.histogram(self.finish, bins=bins)
        return pd.DataFrame({"from": [from_minutes(e) for e in edges[:-1]],
                             "to": [from_minutes(e) for e in edges[1:]], "count": counts,
                             "share": counts / len(self.finish)})

    def s_curve(self, points: int = 101) -> pd.DataFrame:
        """Cumulative probability of finishing by each date (the S-curve)."""
        probability = np.linspace(0, 1, points)
        dates = np.quantile(self.finish, probability)
        return pd.DataFrame({"finish": [from_minutes(d) for d in dates],
                             "probability": probability})


def run_monte_carlo(schedule: Schedule, uncertainty: Uncertainty, iterations: int = 10_000,
                    seed: int = 0, chunk: int = CHUNK) -> RiskResult:
    """Simulate `iterations` schedules; raises `ScheduleError` on bad input."""
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ScheduleError(f"iterations must be between 1 and {MAX_ITERATIONS:,}, "
                            f"got {iterations}")
    net = compile_network(schedule)
    plan = PassPlan(net)
    kind, params = _distribution_arrays(net, uncertainty)
    group, n_groups = _groups(net, uncertainty)
    risk_rows, risk_params, risk_prob = _risk_arrays(net, uncertainty)
    rng = np.random.default_rng(seed)
    n = net.n
    durations = np.empty((n, iterations), dtype=np.float32)
    occurred = np.zeros((len(risk_prob), iterations), dtype=bool)
    finish = np.empty(iterations)
    critical_count = np.zeros(n)
    milestone_rows = np.flatnonzero([a.is_milestone and net.status[i] != COMPLETE
                                     for i, a in enumerate(net.activities)])
    milestone_finish = np.empty((len(milestone_rows), iterations))
    # As the CPM dates them: a start milestone at the next working start, a finish milestone
    # at the close of the working time before it.
    milestone_instant = [net.timelines[net.cal[i]].start_at
                         if net.activities[i].kind == "start_milestone"
                         else net.timelines[net.cal[i]].finish_at for i in milestone_rows]
    rho = uncertainty.correlation
    for lo in range(0, iterations, chunk):
        k = min(chunk, iterations - lo)
        dur = sample_durations(kind, params, correlated_normals(rng, group, n_groups, rho, k))
        if len(risk_prob):
            hit = rng.random((len(risk_prob), k)) < risk_prob[:, None]
            impact = triangular_ppf(rng.random((len(risk_prob), k)), *risk_params.T[:, :, None])
            np.add.at(dur, risk_rows[:, 0], (hit * impact)[risk_rows[:, 1]] * 60.0)
            occurred[:, lo:lo + k] = hit
        dur[net.status == COMPLETE] = 0.0
        _, _, end = plan.forward(dur)
        instant = plan.project_finish(end)
        _, late_finish = plan.backward(dur, instant)
        finish[lo:lo + k] = instant
        critical_count += np.nansum(late_finish - end <= 1e-6, axis=1)
        for m, i in enumerate(milestone_rows):
            milestone_finish[m, lo:lo + k] = milestone_instant[m](end[i])
        durations[:, lo:lo + k] = dur
    return _summarise(net, plan, durations, occurred, finish, critical_count / iterations,
                      milestone_rows, milestone_finish, uncertainty)


def correlated_normals(rng: np.random.Generator, group: np.ndarray, n_groups: int,
                       rho: float, k: int) -> np.ndarray:
    """(n, k) standard normals; rows of one group correlate `rho` (one shared factor each)."""
    z = rng.standard_normal((len(group), k))
    if rho > 0:
        z = np.sqrt(rho) * rng.standard_normal((n_groups, k))[group] + np.sqrt(1 - rho) * z
    return z


def _distribution_arrays(net: Network, uncertainty: Uncertainty):
    """(n,) kind codes and (n, 3) parameters in working minutes; unknown ids are an error."""
    unknown = sorted(set(uncertainty.estimates) - set(net.ids))
    if unknown:
        raise ScheduleError(f"estimates name activities not in the schedule: "
                            f"{', '.join(unknown[:5])}")
    kind = np.zeros(net.n, dtype=np.int8)
    params = np.repeat(net.remaining[:, None], 3, axis=1)
    for i, activity_id in enumerate(net.ids):
        estimate = uncertainty.estimates.get(activity_id)
        if estimate is None or net.status[i] == COMPLETE:
            continue
        kind[i] = KINDS.index(estimate.kind)
        scale = (60.0, 1.0, 1.0) if estimate.kind == "lognormal" else (60.0, 60.0, 60.0)
        params[i] = np.array([estimate.a, estimate.b, estimate.c]) * scale
    return kind, params


def _groups(net: Network, uncertainty: Uncertainty) -> tuple[np.ndarray, int]:
    """Copula group index per activity: named groups share one factor, others their own."""
    names = sorted({g for g in uncertainty.groups.values()})
    index = {g: i for i, g in enumerate(names)}
    out = np.array([index.get(uncertainty.groups.get(a), -1) for a in net.ids])
    alone = np.flatnonzero(out < 0)
    out[alone] = len(names) + np.arange(len(alone))
    return out, len(names) + len(alone)


def _risk_arrays(net: Network, uncertainty: Uncertainty):
    """(pairs, 2) [activity row, risk row], (risks, 3) impact hours, (risks,) probabilities."""
    position = net.index()
    pairs, params, prob = [], [], []
    for r, risk in enumerate(uncertainty.risks):
        for activity_id in risk.activities:
            if activity_id not in position:
                raise ScheduleError(f"risk {risk.name!r} names activity {activity_id!r}, "
                                    "which is not in the schedule")
            pairs.append((position[activity_id], r))
        params.append(risk.impact_hours)
        prob.append(risk.probability)
    return (np.array(pairs, dtype=np.int64).reshape(-1, 2), np.array(params, float).reshape(-1, 3),
            np.array(prob, float))


def _summarise(net, plan, durations, occurred, finish, criticality, milestone_rows,
               milestone_finish, uncertainty) -> RiskResult:
    _, _, end = plan.forward(net.remaining[:, None])
    det_finish = float(plan.project_finish(end)[0])
    calendar = net.timelines[list(net.schedule.calendars).index(
        net.schedule.default_calendar_id)]
    origin = float(calendar.work_at(net.data_date))
    days = (calendar.work_at(finish) - origin) / 60.0 / calendar.calendar.hours_per_day
    det_days = float(calendar.work_at(det_finish) - origin) / 60.0 / \
        calendar.calendar.hours_per_day
    if det_days <= 0:
        raise ScheduleError("the schedule has no remaining work after the data date")
    sd_finish = finish.std()
    sd_dur = durations.std(axis=1).astype(float)
    centred = durations - durations.mean(axis=1, keepdims=True)
    cov = (centred @ (finish - finish.mean())) / len(finish)
    with np.errstate(invalid="ignore", divide="ignore"):
        cruciality = np.where(sd_dur > 0, cov / (sd_dur * sd_finish), 0.0) if sd_finish > 0 \
            else np.zeros(net.n)
        ssi = np.where(sd_finish > 0, criticality * sd_dur / sd_finish, 0.0)
    activities = pd.DataFrame({
        "name": [a.name for a in net.activities], "criticality_index": criticality,
        "cruciality": cruciality, "schedule_sensitivity_index": ssi,
        "mean_duration_hours": durations.mean(axis=1) / 60.0,
        "sd_duration_hours": sd_dur / 60.0}, index=pd.Index(net.ids, name="activity_id"))
    milestones = pd.DataFrame(
        [{"activity_id": net.ids[i], "name": net.activities[i].name,
          **{f"P{p}": from_minutes(np.percentile(milestone_finish[m], p)) for p in PERCENTILES}}
         for m, i in enumerate(milestone_rows)],
        columns=["activity_id", "name", *[f"P{p}" for p in PERCENTILES]])
    tornado = _tornado(net, durations, sd_dur, cruciality, occurred, finish, uncertainty)
    return RiskResult(net, finish, det_finish, milestones, activities, tornado, days, det_days)


def _tornado(net, durations, sd_dur, cruciality, occurred, finish, uncertainty) -> pd.DataFrame:
    """Swing of the P80 finish (days): input high (top decile / risk occurred) minus low."""
    rows = []
    p80 = lambda mask: np.percentile(finish[mask], 80) if mask.sum() else np.nan  # noqa: E731
    candidates = np.argsort(-np.abs(np.nan_to_num(cruciality)))[:3 * TORNADO_SIZE]
    for i in candidates:
        if sd_dur[i] <= 0:
            continue
        lo, hi = np.percentile(durations[i], (10, 90))
        swing = p80(durations[i] >= hi) - p80(durations[i] <= lo)
        rows.append({"input": net.ids[i], "kind": "activity", "name": net.activities[i].name,
                     "p80_swing_days": swing / 1440.0, "correlation": cruciality[i]})
    for r, risk in enumerate(uncertainty.risks):
        hit = occurred[r]
        swing = p80(hit) - p80(~hit)
        rows.append({"input": risk.name, "kind": "risk", "name": risk.name,
                     "p80_swing_days": swing / 1440.0,
                     "correlation": np.corrcoef(hit, finish)[0, 1] if 0 < hit.mean() < 1
                     else 0.0})
    frame = pd.DataFrame(rows, columns=["input", "kind", "name", "p80_swing_days",
                                        "correlation"])
    frame = frame.dropna(subset=["p80_swing_days"])
    return frame.sort_values("p80_swing_days", ascending=False, key=np.abs).head(
        TORNADO_SIZE).reset_index(drop=True)
