"""Schedule risk benchmark: Monte Carlo speed, vectorised vs a plain loop, and SiP accuracy.

Run by hand: `.venv/bin/python benchmarks/schedule.py [iterations] [activities]` (about a
minute on 2 cores). Target: 10,000 iterations over a 2,000-activity schedule in <= 10 s.
The schedule is generated (two calendars, FS/SS/FF links with lags, WBS areas), its
uncertainty comes from an `ActivityDurationModel` fitted on generated history, with a 0.3
copula correlation inside each WBS area and ten risk events. The plain loop runs the same
passes one iteration at a time (sampling one scenario, forward, backward); it is timed on
a few iterations and scaled to the full count. Then the same schedule through the API
(`POST /v1/schedules/check` and `/risk`, in process), and the learned model on the real SiP
tasks against "the estimate is right" and the reference class, with the date and git commit.
"""

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opm_ml.real_data.dataset import default_root  # noqa: E402
from opm_ml.schedule.activity_features import activity_features  # noqa: E402
from opm_ml.schedule.distributions import RiskEvent, Uncertainty, sample_durations  # noqa: E402
from opm_ml.schedule.evaluation import evaluate_ratio_model  # noqa: E402
from opm_ml.schedule.montecarlo import (  # noqa: E402
    _distribution_arrays,
    _groups,
    correlated_normals,
    run_monte_carlo,
)
from opm_ml.schedule.network import compile_network  # noqa: E402
from opm_ml.schedule.passes import PassPlan  # noqa: E402
from opm_ml.schedule.uncertainty import ActivityDurationModel  # noqa: E402
from opm_ml.synthetic.schedules import (  # noqa: E402
    FEATURES,
    generate_schedules,
    project_fields,
)
from training.schedule import load_activity_spec  # noqa: E402

LOOP_ITERATIONS = 40


def _inputs(n_activities: int):
    history = generate_schedules(60, seed=1, activities=(20, 60))
    model = ActivityDurationModel().fit(history.activities[list(FEATURES)],
                                        history.activities["ratio"],
                                        history.activities["project_id"])
    target = generate_schedules(1, seed=2, activities=(n_activities, n_activities))
    schedule = next(iter(target.schedules.values()))
    features = activity_features(schedule, project_fields(target.projects.iloc[0]))
    estimates = model.estimates(features, np.exp(features["log_planned_hours"]))
    rng = np.random.default_rng(3)
    ids = list(features.index)
    risks = [RiskEvent(f"risk {r}", float(rng.uniform(0.05, 0.4)),
                       tuple(rng.choice(ids, 3, replace=False)), (16.0, 40.0, 120.0))
             for r in range(10)]
    groups = {a.id: a.wbs_id for a in schedule.activities}
    return schedule, Uncertainty(estimates, groups, 0.3, risks)


def _plain_loop(schedule, uncertainty, iterations: int) -> float:
    """Seconds for `iterations` scenarios run one at a time through the same passes."""
    net = compile_network(schedule)
    plan = PassPlan(net)
    kind, params = _distribution_arrays(net, uncertainty)
    group, n_groups = _groups(net, uncertainty)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for _ in range(iterations):
        dur = sample_durations(kind, params, correlated_normals(rng, group, n_groups,
                                                                uncertainty.correlation, 1))
        _, _, finish = plan.forward(dur)
        plan.backward(dur, plan.project_finish(finish))
    return time.perf_counter() - started


def speed(iterations: int, n_activities: int) -> None:
    schedule, uncertainty = _inputs(n_activities)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_monte_carlo(schedule, uncertainty, iterations, seed=0)
    vectorised, cpu = time.perf_counter() - started, time.process_time() - cpu
    loop = _plain_loop(schedule, uncertainty, LOOP_ITERATIONS) * iterations / LOOP_ITERATIONS
    p = result.finish_percentiles()
    print(f"\n{n_activities:,} activities, {len(schedule.relationships):,} relationships, "
          f"{len(schedule.calendars)} calendars; {iterations:,} iterations\n")
    print("| engine | seconds | ms / iteration | speed-up |")
    print("|---|---|---|---|")
    print(f"| vectorised (chunks of iterations) | {vectorised:.2f} | "
          f"{1000 * vectorised / iterations:.3f} | {loop / vectorised:.0f}x |")
    print(f"| plain per-iteration loop (timed on {LOOP_ITERATIONS}, scaled) | {loop:.1f} | "
          f"{1000 * loop / iterations:.2f} | 1x |")
    print(f"\nP10 {p[10]:%Y-%m-%d}, P50 {p[50]:%Y-%m-%d}, P80 {p[80]:%Y-%m-%d}, "
          f"P90 {p[90]:%Y-%m-%d}; P50 / deterministic duration {result.duration_ratio():.3f}; "
          f"target <= 10 s: {'met' if vectorised <= 10 else 'MISSED'} (vectorised CPU time "
          f"{cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def sip_accuracy() -> None:
    from opm_ml.real_data.sip import sip_overrun

    root = default_root()
    if not (root / "eseur_Sip-task-info.csv").is_file():
        print(f"\nSiP skipped: {root} has no eseur_Sip-task-info.csv")
        return
    data = sip_overrun(root)
    table = evaluate_ratio_model(data.X, data.y, data.groups, "category", folds=5,
                                 **load_activity_spec().hyperparameters)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    print(f"\nSiP tasks: {data.n:,} finished tasks, 5-fold grouped by project, the "
          "registered model's hyper-parameters (models/activity-duration.toml); "
          f"{date.today()}, commit {commit}\n")
    print("| forecast | MAE log | median AE log | within 25 % | pinball (log) | P10-P90 cover |")
    print("|---|---|---|---|---|---|")
    for row in table.itertuples(index=False):
        coverage = "" if np.isnan(row.p10_p90_coverage) else f"{row.p10_p90_coverage:.1%}"
        print(f"| {row.forecast} | {row.mae_log:.3f} | {row.median_ae_log:.3f} | "
              f"{row.within_25pct:.1%} | {row.pinball_log:.4f} | {coverage} |")


def api_latency(n_activities: int) -> None:
    """POST /v1/schedules/check and /risk with a generated XER of `n_activities` through the
    app in process (no models loaded: the default template), default settings and limits."""
    import tempfile

    from fastapi.testclient import TestClient

    from opm_ml.schedule.files import write_schedule
    from opm_ml.settings import Settings
    from serving.app import create_app
    from serving.model_store import ModelStore

    target = generate_schedules(1, seed=2, activities=(n_activities, n_activities))
    schedule = next(iter(target.schedules.values()))
    with tempfile.TemporaryDirectory() as tmp:
        body = write_schedule(schedule, Path(tmp) / "plan.xer").read_bytes()
        settings = Settings(_env_file=None, registry_poll_seconds=0,
                            mlflow_tracking_uri=f"sqlite:///{tmp}/none.db",
                            database_url=f"sqlite:///{tmp}/opm-ml.db")
        client = TestClient(create_app(settings, ModelStore(settings)))
        print(f"\nAPI, {n_activities:,}-activity XER ({len(body) / 1e6:.1f} MB), in process:\n")
        print("| request | seconds | CPU seconds | status |")
        print("|---|---|---|---|")
        for path in ("check", "risk?iterations=1000", "risk"):
            started, cpu = time.perf_counter(), time.process_time()
            response = client.post(f"/v1/schedules/{path}", content=body)
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            runs = response.json().get("iterations", "") if path.startswith("risk") else ""
            print(f"| POST /v1/schedules/{path.split('?')[0]}"
                  f"{f' ({runs:,} iterations)' if runs else ''} | {took:.1f} | {cpu:.1f} | "
                  f"{response.status_code} |")
        print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    speed(*(args + [10_000, 2_000][len(args):]))
    api_latency((args + [10_000, 2_000][len(args):])[1])
    sip_accuracy()
