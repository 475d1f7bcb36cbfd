"""`opm-ml schedule train`: the activity-duration model, tracked, registered and gated like the
model families.

One MLflow run per training: read `models/activity-duration.toml`, build the activity history
(synthetic, generated with `opm_ml.synthetic.schedules`, or the real SiP tasks), split it by
project (the newest share held out, a project never straddling two slices), fit
`ActivityDurationModel` (its last training projects conformalise the P10 and P90), score it on
the held-out activities against "the estimate is right" (ratio 1) and the reference class (the
class's training P10/P50/P90), then log params, metrics, the baselines', the SHAP summary,
feature importance and residual plots, the data lineage (content digests of the train and
test tables) and the model as an MLflow pyfunc with its signature. It is registered (as
`challenger`) only when its pinball loss beats both baselines, and becomes `champion` only
when it beats the current champion on the same held-out activities by the spec's margin.

Sources: `synthetic` registers `<prefix>-activity-duration`, the model `schedule risk` and the
API use; `sip` registers `<prefix>-sip-activity-duration` (SiP's features are its own:
estimate, priority, category, subcategory, year; a schedule file has none of them), the
organisation's task history measured and tracked the same way.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from opm_ml import mlflow_access
from opm_ml.schedule import pyfunc
from opm_ml.schedule.activity_features import ACTIVITY_COLUMNS
from opm_ml.schedule.evaluation import baseline_quantiles, ratio_metrics
from opm_ml.schedule.served import MODEL_ARTIFACT
from opm_ml.schedule.uncertainty import ActivityDurationModel
from opm_ml.settings import Settings, get_settings
from training import tracking
from training.registry import Decision, log_decision, register_and_gate
from training.specs import SPEC_DIR, SpecReader

SPEC_FILE = SPEC_DIR / "activity-duration.toml"
SOURCES = ("synthetic", "sip")
FEATURE_SETS = ("activity", "project")
METRICS = ("mae_log", "median_ae_log", "within_25pct", "pinball_log", "p10_p90_coverage")
BASELINES = {"ratio_one": "the estimate is right (ratio 1)",
             "refclass": "reference class (its training P10/P50/P90)"}
_KNOWN = {"features": {"synthetic"}, "data": {"projects", "min_activities", "max_activities"},
          "split": {"calibration", "test"},
          "promotion": {"metric", "greater_is_better", "margin", "must_beat_baselines"}}
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ActivitySpec:
    """`models/activity-duration.toml` (see the file for each field's meaning)."""

    description: str
    features: str
    projects: int
    min_activities: int
    max_activities: int
    calibration_fraction: float
    test_fraction: float
    hyperparameters: dict
    promotion_metric: str
    greater_is_better: bool
    margin: float
    must_beat_baselines: bool
    source: str = ""
    family: str = mlflow_access.ACTIVITY_DURATION


def load_activity_spec(path: Path | None = None) -> ActivitySpec:
    """Read and check the activity-duration spec; errors name the file and field."""
    path = path or SPEC_FILE
    with Path(path).open("rb") as fh:
        raw = tomllib.load(fh)
    r = SpecReader(raw, str(path), _KNOWN)
    r.check_keys()
    if r.get("family", str) != mlflow_access.ACTIVITY_DURATION:
        r.fail("family", f'must be "{mlflow_access.ACTIVITY_DURATION}"')
    features = r.get("features.synthetic", str)
    if features not in FEATURE_SETS:
        r.fail("features.synthetic", f"must be one of {', '.join(FEATURE_SETS)}")
    sizes = [r.get(f"data.{k}", int) for k in ("projects", "min_activities", "max_activities")]
    if sizes[0] < 10 or not 8 <= sizes[1] <= sizes[2]:
        r.fail("data", "needs projects >= 10 and 8 <= min_activities <= max_activities")
    fractions = [r.get(f"split.{k}", float) for k in ("calibration", "test")]
    if not all(0 < f < 0.5 for f in fractions):
        r.fail("split", "calibration and test are shares of projects in (0, 0.5)")
    metric = r.get("promotion.metric", str)
    if metric not in METRICS or metric in ("within_25pct", "p10_p90_coverage"):
        r.fail("promotion.metric", "must be pinball_log, mae_log or median_ae_log")
    margin = r.get("promotion.margin", float)
    if not 0 <= margin < 1:
        r.fail("promotion.margin", "is a relative improvement in [0, 1)")
    return ActivitySpec(
        description=r.get("description", str), features=features, projects=sizes[0],
        min_activities=sizes[1], max_activities=sizes[2], calibration_fraction=fractions[0],
        test_fraction=fractions[1], hyperparameters=dict(r.get("hyperparameters", dict)),
        promotion_metric=metric, greater_is_better=r.get("promotion.greater_is_better", bool),
        margin=margin, must_beat_baselines=r.get("promotion.must_beat_baselines", bool),
        source=str(path))


@dataclass
class ActivityData:
    """Activities with their features, duration ratio (actual / planned) and project."""

    source: str
    X: pd.DataFrame
    ratio: np.ndarray
    groups: np.ndarray  # project of each activity, in split order (the newest last)
    reference: str  # the reference class's column
    description: str
    location: str = ""  # where the data came from (a folder), "" when generated


def activity_data(source: str, spec: ActivitySpec, seed: int, root: Path | None = None
                  ) -> ActivityData:
    """The activity history of `source` (`synthetic` or `sip`, read from `root`)."""
    if source == "synthetic":
        from opm_ml.synthetic.schedules import FEATURES, generate_schedules

        history = generate_schedules(spec.projects, seed=seed,
                                     activities=(spec.min_activities, spec.max_activities))
        columns = list(ACTIVITY_COLUMNS if spec.features == "activity" else FEATURES)
        rows = history.activities
        return ActivityData(source, rows[columns].reset_index(drop=True),
                            rows["ratio"].to_numpy(float), rows["project_id"].to_numpy(),
                            "activity_type",
                            f"{len(history.projects)} generated projects (seed {seed}), "
                            f"{len(rows):,} activities; features: {spec.features}")
    if source == "sip":
        from opm_ml.real_data.dataset import default_root
        from opm_ml.real_data.sip import sip_overrun

        root = Path(root or default_root())
        data = sip_overrun(root)
        X = data.X.reset_index(drop=True)
        groups = pd.Series(data.groups).astype(str).to_numpy()
        # Projects in time order (the year of their first estimate), so the newest are held out.
        first_year = pd.Series(X["estimate_year"].to_numpy(), index=groups).groupby(level=0).min()
        order = np.lexsort((groups, first_year.reindex(groups).to_numpy()))
        return ActivityData(source, X.iloc[order].reset_index(drop=True),
                            np.asarray(data.y, float)[order], groups[order], "category",
                            f"SiP: {data.n:,} finished tasks of {len(first_year)} projects "
                            "(effort ratio actual / estimated hours)", str(root))
    raise ValueError(f"unknown activity source {source!r}; expected {', '.join(SOURCES)}")


def split_by_project(groups: np.ndarray, test_fraction: float) -> np.ndarray:
    """True for the held-out activities: those of the last `test_fraction` of the projects in
    their order of appearance (at least one project on each side)."""
    unique = pd.unique(groups)
    if len(unique) < 3:
        raise ValueError(f"need at least 3 projects to train, calibrate and test, got "
                         f"{len(unique)}")
    n_test = min(len(unique) - 2, max(1, int(round(len(unique) * test_fraction))))
    return np.isin(groups, unique[-n_test:])


@dataclass
class ActivityTrainingResult:
    source: str
    name: str  # registered model name
    run_id: str
    experiment_id: str
    model: ActivityDurationModel = field(repr=False)
    metrics: dict[str, float]
    checks: list[dict]
    decision: Decision
    seconds: float
    model_uri: str
    data: ActivityData = field(repr=False)


def train_activity_model(source: str = "synthetic", settings: Settings | None = None,
                         seed: int = 42, spec: ActivitySpec | None = None,
                         root: Path | None = None, progress: Progress | None = None
                         ) -> ActivityTrainingResult:
    """Fit, evaluate, log, register and gate the activity-duration model of `source`."""
    settings = settings or get_settings()
    spec = spec or load_activity_spec()
    progress = progress or (lambda step: None)
    started = time.perf_counter()
    progress("reading data")
    data = activity_data(source, spec, seed, root)
    test = split_by_project(data.groups, spec.test_fraction)
    train = ~test
    name = mlflow_access.activity_model_name(settings, source)
    with mlflow_access.tracking(settings):
        experiment_id = tracking.setup_experiment(settings)
        with mlflow.start_run(experiment_id=experiment_id,
                              run_name=f"schedule-train-{source}") as run:
            mlflow.set_tags({**tracking.git_tags(), "opm_ml.kind": "schedule-train",
                             "opm_ml.family": spec.family, "opm_ml.source": source})
            progress("fitting")
            model = ActivityDurationModel(
                **spec.hyperparameters, calibration_fraction=spec.calibration_fraction,
                random_state=seed).fit(data.X[train], data.ratio[train], data.groups[train])
            fit_seconds = time.perf_counter() - started
            progress("evaluating")
            log_true = np.log(data.ratio[test])
            predicted = model.predict_log_quantiles(data.X[test])
            metrics, checks = evaluate(predicted, log_true, baseline_quantiles(
                data.X[data.reference][train], np.log(data.ratio[train]),
                data.X[data.reference][test]), spec)
            progress("logging")
            _log_run(spec, source, seed, data, train, test, model, metrics, checks, fit_seconds)
            example = _plain(data.X[test].head(5))
            info = tracking.log_pyfunc(model, MODEL_ARTIFACT, pyfunc.CODE_FILE, pyfunc.signature(
                example, pyfunc.predict_frame(model, example)), example)
            progress("promotion gate")
            failed = [f"{c['baseline']} ({spec.promotion_metric} {c['model']:.4g} vs "
                      f"{c['baseline_value']:.4g})" for c in checks if not c["passed"]]
            score = metrics[f"heldout/{spec.promotion_metric}"]

            def score_champion(version: str) -> float:
                champion = mlflow_access.load_family_model(
                    mlflow_access.client(settings), name, version, settings.mlflow_tracking_uri,
                    settings.signing_key(), MODEL_ARTIFACT)
                return ratio_metrics(champion.predict_log_quantiles(data.X[test]),
                                     log_true)[spec.promotion_metric]

            decision = register_and_gate(info.model_uri, name, spec, data.X[test], score,
                                         failed, settings, score_champion, MODEL_ARTIFACT)
            log_decision(decision, spec.promotion_metric)
            seconds = time.perf_counter() - started
            mlflow.log_metric("time/total_seconds", seconds)
    return ActivityTrainingResult(source, name, run.info.run_id, experiment_id, model, metrics,
                                  checks, decision, seconds, info.model_uri, data)


def evaluate(predicted: np.ndarray, log_true: np.ndarray, baselines: dict[str, np.ndarray],
             spec: ActivitySpec) -> tuple[dict[str, float], list[dict]]:
    """Held-out metrics of the model and each baseline, and the gate's checks: the model's
    promotion metric must beat every baseline's."""
    metrics = {f"heldout/{k}": v for k, v in ratio_metrics(predicted, log_true).items()}
    checks = []
    for baseline, log_q in baselines.items():
        scores = ratio_metrics(log_q, log_true)
        metrics.update({f"heldout/baseline_{baseline}/{k}": v for k, v in scores.items()})
        ours, theirs = metrics[f"heldout/{spec.promotion_metric}"], scores[spec.promotion_metric]
        passed = ours > theirs if spec.greater_is_better else ours < theirs
        checks.append({"baseline": baseline, "metric": spec.promotion_metric, "model": ours,
                       "baseline_value": theirs, "passed": bool(passed)})
    metrics["heldout/n_activities"] = float(len(log_true))
    return metrics, checks


def _log_run(spec: ActivitySpec, source: str, seed: int, data: ActivityData, train, test,
             model: ActivityDurationModel, metrics: dict, checks: list[dict],
             fit_seconds: float) -> None:
    mlflow.log_params({
        "source": source, "seed": seed, "data": data.description,
        "data_source": data.location or "generated in memory",
        "features": ",".join(data.X.columns), "reference_class": data.reference,
        "target": "log(actual / planned duration)", "quantiles": "0.1,0.5,0.9",
        "split": f"projects: newest {spec.test_fraction:g} held out; calibration "
                 f"{spec.calibration_fraction:g} of the rest",
        "promotion_metric": spec.promotion_metric, "promotion_margin": spec.margin,
        **({"synthetic_features": spec.features, "synthetic_projects": spec.projects}
           if source == "synthetic" else {}),
        **{f"lgbm.{k}": v for k, v in spec.hyperparameters.items()},
    })
    mlflow.log_artifact(spec.source, artifact_path="spec")
    frame = data.X.assign(ratio=data.ratio, project=data.groups)
    for split, mask in (("train", train), ("test", test)):
        tracking.log_dataset(frame[mask], f"{split}_activities", data.location, context=split)
        mlflow.log_metric(f"data/{split}_activities", int(mask.sum()))
        mlflow.log_metric(f"data/{split}_projects", len(pd.unique(data.groups[mask])))
    mlflow.log_metric("time/fit_seconds", fit_seconds)
    for level, booster in zip(("p10", "p50", "p90"), model.models_):
        mlflow.log_metric(f"trees/{level}", booster.booster_.num_trees())
    mlflow.log_metrics(metrics)
    mlflow.log_metrics({f"check/beats_{c['baseline']}": float(c["passed"]) for c in checks})
    mlflow.log_dict(checks, "baseline_checks.json")
    _log_plots(model, data.X[test], data.ratio[test], source)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as plain strings: what MLflow's signature and input example take."""
    return frame.reset_index(drop=True).astype(
        {c: str for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])})


def _log_plots(model: ActivityDurationModel, X: pd.DataFrame, ratio: np.ndarray,
               source: str) -> None:
    sample = tracking.sample(len(X))
    X, ratio = X.iloc[sample], ratio[sample]
    shown = X.copy()
    for column in shown.columns:
        if not pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = pd.Categorical(shown[column].astype(str))
    tracking.log_figure(tracking.shap_summary_figure(
        model.explain(X).to_numpy(), shown,
        f"SHAP summary: activity duration ({source}), P50 of log(actual / planned)"),
        "plots/shap_summary.png")
    tracking.log_figure(tracking.importance_figure(
        model.models_[1].booster_, f"Feature importance: activity duration ({source}, P50)"),
        "plots/feature_importance.png")
    tracking.log_figure(tracking.residual_figure(
        {"held out": (model.predict(X), ratio)},
        f"Residuals vs forecast: activity duration ({source}, held-out activities)",
        "ratio actual / planned"), "plots/residuals_vs_prediction.png")
