"""`opm-ml train` end to end: one MLflow parent run, a nested run per model family.

Per family: read the spec, build targets, the time-ordered project split and in-flight examples,
fit the intake and in-flight pipelines (fit on train, calibrate on calibration), evaluate on
the held-out newest projects against the baselines, log everything, register the model as
`challenger` if it beats its baselines and judge it against the champion. Aliases move last,
once every family is decided: a failure part-way moves none. Given a `distributed.Client`
the LightGBM fits run on that Dask cluster (`training.distributed`); nothing else changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mlflow
import numpy as np
import pandas as pd

from opm_ml import mlflow_access
from opm_ml.contract_manifest import NAME as CONTRACT
from opm_ml.features import contract_manifest
from opm_ml.forecasting import FAMILY_NAMES, FamilyModel
from opm_ml.forecasting import pyfunc
from opm_ml.forecasting.families import LEVELS, STAGES, family
from opm_ml.forecasting.role_profile import RoleProfile
from opm_ml.intake import past_projects
from opm_ml.manifest import FeatureManifest
from opm_ml.real_data.dataset import MAX_MISSING_SHARE
from opm_ml.settings import Settings, get_settings
from training import tracking
from training.datasets import SPLITS, TrainingData, build_training_data, role_share_targets
from training.estimators import fit_stage, model_features, stage_estimator
from training.evaluation import Check, Evaluation, evaluate_family, heldout_frame
from training.registry import (
    Decision,
    log_decision,
    profile_digest_of_champion,
    promote,
    register_and_judge,
    settle_profile_set,
)
from training.specs import ModelSpec, load_spec

Progress = Callable[[str, str], None]


@dataclass
class FamilyResult:
    family: str
    run_id: str
    metrics: dict[str, float]
    checks: list[Check]
    decision: Decision
    seconds: float
    model_uri: str  # the logged pyfunc (registered or not)
    model: FamilyModel = field(repr=False)
    data: TrainingData = field(repr=False)
    metric: str = "mape"  # what the champion gate compared


@dataclass
class TrainingResult:
    parent_run_id: str
    experiment_id: str
    results: list[FamilyResult]
    n_rejected_rows: int


def train_family(spec: ModelSpec, history, seed: int, fitter=None,
                 manifest: FeatureManifest | None = None) -> tuple[FamilyModel, TrainingData]:
    """Fit one family's intake and, given snapshots, in-flight estimators (no MLflow).

    `fitter`: where the LightGBM models are fitted (default: this machine's threads; training's
    Dask fitter for a cluster). `manifest`: what the models read (default: the contract's).
    What training decides about the data (features dropped, rows left out) is in `notes`.
    """
    manifest = manifest or contract_manifest()
    data = build_training_data(history.projects, history.snapshots, spec, manifest.roles,
                               manifest.group)
    notes = list(data.notes)
    roles = _role_shares(spec, manifest, data, notes)
    targets = [spec.target, *(["late"] if spec.classifier else []), *roles]
    stages = {}
    for stage in STAGES:
        part = data.intake if stage == "intake" else data.inflight
        if len(part.train) == 0 or len(part.calibration) == 0:
            if stage == "intake":
                raise ValueError(f"{spec.family}: no {stage} examples to train or calibrate on")
            if manifest.snapshot_columns:
                points = ", ".join(f"{p:g}" for p in spec.progress_points)
                notes.append(f"no in-flight model: no snapshot near {points}% progress in the "
                             "training or calibration slice")
            continue
        features = model_features(manifest, stage, spec.exclude)
        features, dropped = sparse_features(part.train, features, manifest)
        if dropped:
            notes.append(f"{stage}: dropped as missing in over {MAX_MISSING_SHARE:.0%} of the "
                         f"training rows: {', '.join(dropped)}")
        anchor = _anchor(spec, manifest, features)
        estimator = stage_estimator(stage, spec, seed, anchor, roles, n_rows=len(part.train),
                                    reference=manifest.reference_class,
                                    calendar=manifest.calendar_features)
        stages[stage] = fit_stage(estimator, manifest, stage, features, part.train,
                                  part.calibration, targets, fitter)
        start = {"loglinear": "the log-linear size law",
                 "refclass": "the reference class's median",
                 "weighted": "the anchor with its weight learned"}.get(stages[stage].base_choice_)
        if start:
            notes.append(f"{stage}: trees start from {start} (chosen on the calibration "
                         "slice)")
    profile = None
    if roles and len(history.resource_usage):
        group = manifest.reference_class
        train_projects = data.intake.train[["project_id", group]]
        profile = RoleProfile(spec.profile_bins).fit(history.resource_usage, train_projects,
                                                     manifest.roles, group)
    model = FamilyModel(spec.family, manifest, stages, spec.late_threshold, profile,
                        tuple(notes))
    if spec.family == past_projects.FAMILY and manifest.profile != CONTRACT:
        # What intake scoring ranks this profile's effort forecasts among: its own history.
        model.intake_reference = past_projects.PastProjects.of(history.projects)
    return model, data


def _gate_metric(spec: ModelSpec, manifest: FeatureManifest) -> ModelSpec:
    """The spec with the profile's accuracy metric for the champion gate (MAPE for the
    contract; organisation profiles default to MAE, what a median forecast minimises)."""
    from dataclasses import replace

    if manifest.metric == spec.promotion_metric:
        return spec
    return replace(spec, promotion_metric=manifest.metric, greater_is_better=False)


def _role_shares(spec: ModelSpec, manifest: FeatureManifest, data: TrainingData,
                 notes: list[str]) -> tuple:
    """The role-share targets, when the spec asks for them and every training and calibration
    project has them (else a note says how many lack them)."""
    if not spec.role_shares or not manifest.roles:
        return ()
    targets = list(role_share_targets(manifest.roles))
    frames = (data.intake.train, data.intake.calibration)
    lacking = sum(int(f.reindex(columns=targets).isna().any(axis=1).sum()) for f in frames)
    if lacking:
        notes.append(f"no effort by role: {lacking} training or calibration project(s) lack "
                     f"the effort of a role ({', '.join(manifest.roles)})")
        return ()
    return tuple(targets)


def _anchor(spec: ModelSpec, manifest: FeatureManifest, features: list[str]) -> str | None:
    """The in-flight anchor: the spec's where the profile computes it, else the profile's."""
    for anchor in (spec.inflight_anchor, manifest.anchor(spec.family)):
        if anchor and anchor in features:
            return anchor
    return None


def sparse_features(train: pd.DataFrame, features: list[str],
                    manifest: FeatureManifest) -> tuple[list[str], list[str]]:
    """(features kept, features dropped): a raw column missing in most training rows."""
    dropped = [f for f in features if f in train.columns
               and manifest.has(f) and train[f].isna().mean() > MAX_MISSING_SHARE]
    return [f for f in features if f not in dropped], dropped


def train_models(history, families=None, seed: int = 42,
                 settings: Settings | None = None, data_source: str = "",
                 spec_dir: Path | None = None, specs: dict[str, ModelSpec] | None = None,
                 progress: Progress | None = None, client=None,
                 manifest: FeatureManifest | None = None) -> TrainingResult:
    """Train, evaluate, log and gate the given families on a validated `History`.

    `manifest`: what the models read (a profile's; default the contract's); `families`
    defaults to every family it can train. `specs` overrides the spec files per family
    (tests, benchmarks); `progress(family, step)` is called as work advances; `client` (a
    `distributed.Client`) fits the models on its cluster, and the runs log param `backend`
    (`local` or `dask`) and the cluster they used.
    """
    manifest = manifest or contract_manifest()
    # The models are registered under the profile they read, whatever the settings serve.
    settings = (settings or get_settings()).model_copy(update={"profile": manifest.profile})
    families = list(manifest.families if families is None else families)
    progress = progress or (lambda family, step: None)
    unknown = sorted(set(families) - set(FAMILY_NAMES))
    if unknown:
        raise ValueError(f"unknown model famil(ies) {unknown}; expected "
                         f"{', '.join(FAMILY_NAMES)}")
    untrainable = [f for f in families if f not in manifest.families]
    if untrainable:
        raise ValueError(f"profile {manifest.profile} cannot train {', '.join(untrainable)}: "
                         "its planned value or actual outcome is not mapped")
    backend = _backend_params(client)
    fitter = None
    if client is not None:
        from training.distributed import dask_fitter

        fitter = dask_fitter(client)
    results = []
    with mlflow_access.tracking(settings):
        experiment_id = tracking.setup_experiment(settings)
        with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
            mlflow.set_tags({**tracking.git_tags(), "opm_ml.kind": "train"})
            mlflow.log_params({"seed": seed, "families": ",".join(families),
                               "data_source": data_source or "in-memory",
                               "profile": manifest.profile,
                               "profile_digest": manifest.profile_digest, **backend})
            if history.notes:
                mlflow.log_text("\n".join(history.notes), "history_notes.txt")
            for table in ("projects", "snapshots", "resource_usage"):
                frame = getattr(history, table)
                tracking.log_dataset(frame, table, data_source, context="history")
                mlflow.log_metric(f"data/{table}_rows", len(frame))
            rejected = history.rejections
            mlflow.log_metric("data/rejected_rows", len(rejected))
            tracking.log_rejections(rejected)
            for name in families:
                spec = (specs or {}).get(name) or load_spec(name, spec_dir)
                results.append(_run_family(spec, history, seed, settings, experiment_id,
                                           data_source, progress, fitter, backend, manifest))
            _promote(results, families, manifest, settings)
    return TrainingResult(parent.info.run_id, experiment_id, results, len(rejected))


def _promote(results: list[FamilyResult], families: list[str], manifest: FeatureManifest,
             settings: Settings) -> None:
    """Move the aliases once every family is decided, so a failure part-way moves none and
    the served set stays on one profile; each decision is logged to its family's run."""
    client = mlflow_access.client(settings)
    others = {f: profile_digest_of_champion(client, settings,
                                            mlflow_access.registered_name(f, settings))
              for f in manifest.families if f not in families}
    decisions = settle_profile_set([r.decision for r in results], others,
                                   manifest.profile_digest)
    for result, decision in zip(results, decisions):
        result.decision = decision
        promote(decision, mlflow_access.registered_name(result.family, settings), settings)
        with mlflow.start_run(run_id=result.run_id, nested=True):
            log_decision(decision, result.metric)


def _backend_params(client) -> dict[str, str]:
    """What a run logs about where its models were fitted."""
    if client is None:
        return {"backend": "local"}
    from opm_ml.dask_cluster import describe

    return {"backend": "dask", "dask_cluster": describe(client)}


def _run_family(spec: ModelSpec, history, seed: int, settings: Settings, experiment_id: str,
                data_source: str, progress: Progress, fitter, backend: dict[str, str],
                manifest: FeatureManifest) -> FamilyResult:
    started = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id, run_name=spec.family,
                          nested=True) as run:
        mlflow.set_tags({**tracking.git_tags(), "opm_ml.family": spec.family})
        progress(spec.family, "fitting")
        mlflow.log_params(backend)
        model, data = train_family(spec, history, seed, fitter, manifest)
        if model.notes:
            mlflow.log_text("\n".join(model.notes), "notes.txt")
        fit_seconds = time.perf_counter() - started
        progress(spec.family, "evaluating")
        evaluation = evaluate_family(model, spec, data)
        progress(spec.family, "logging")
        _log_run(spec, model, data, evaluation, seed, data_source, fit_seconds)
        tracking.log_reference(model, data, evaluation)  # drift reference, in the model file
        if model.intake_reference is not None:
            mlflow.log_text(model.intake_reference.csv, past_projects.ARTIFACT)
        model_info = tracking.log_family_model(model, _example_rows(model, data))
        progress(spec.family, "promotion gate")
        heldout = heldout_frame(data.intake.test, data.inflight.test)
        failed = [f"{c.name} ({c.metric} {c.model:.4g} vs {c.baseline:.4g})"
                  for c in evaluation.checks if c.gate and not c.passed]
        spec = _gate_metric(spec, manifest)
        score = evaluation.metrics[f"heldout/{spec.promotion_metric}"]
        decision = register_and_judge(model_info.model_uri,
                                      mlflow_access.registered_name(spec.family, settings),
                                      spec, heldout, score, failed, settings,
                                      manifest.profile_digest)
        seconds = time.perf_counter() - started
        mlflow.log_metric("time/total_seconds", seconds)
    return FamilyResult(spec.family, run.info.run_id, evaluation.metrics, evaluation.checks,
                        decision, seconds, model_info.model_uri, model, data,
                        spec.promotion_metric)


def _log_run(spec: ModelSpec, model: FamilyModel, data: TrainingData, evaluation: Evaluation,
             seed: int, data_source: str, fit_seconds: float) -> None:
    mlflow.log_params({
        "seed": seed, "target": spec.target, "quantiles": ",".join(map(str, spec.quantiles)),
        "late_threshold": spec.late_threshold, "calibration": spec.calibration,
        "split": f"{spec.train_fraction}/{spec.calibration_fraction}/{spec.test_fraction}",
        "progress_points": ",".join(f"{p:g}" for p in spec.progress_points),
        "progress_tolerance": spec.progress_tolerance,
        "promotion_metric": spec.promotion_metric, "promotion_margin": spec.margin,
        "early_stopping_rounds": spec.early_stopping_rounds,
        **{f"lgbm.{stage}.{k}": v for stage in STAGES for k, v in spec.params_for(stage).items()},
    })
    for stage, estimator in model.stages.items():
        mlflow.log_param(f"{stage}.base", estimator.base_choice_)
        regressor = estimator.regressor_
        for level, booster in zip(LEVELS, regressor.models_):
            mlflow.log_metric(f"trees/{stage}_{level}", booster.booster_.num_trees())
    if spec.source:
        mlflow.log_artifact(spec.source, artifact_path="spec")
    for split in SPLITS:
        projects = data.intake[split]
        tracking.log_dataset(projects[[*model.manifest.intake_columns, "project_id"]],
                             f"{split}_projects", data_source, context=split)
        mlflow.log_metric(f"data/{split}_projects", len(projects))
        mlflow.log_metric(f"data/{split}_inflight_examples", len(data.inflight[split]))
    mlflow.log_metric("data/inflight_projects_not_trained", data.n_inflight_projects)
    mlflow.log_metric("time/fit_seconds", fit_seconds)
    mlflow.log_metrics({k: v for k, v in evaluation.metrics.items()
                        if np.isfinite(v) and _reported(spec, k)})
    mlflow.log_metrics({f"check/{_slug(c.name)}": float(c.passed) for c in evaluation.checks})
    mlflow.log_dict([{"check": c.name, "metric": c.metric, "model": c.model,
                      "baseline": c.baseline, "beats": c.beats, "passed": c.passed}
                     for c in evaluation.checks],
                    "baseline_checks.json")
    _log_plots(spec, model, data, evaluation)


def _log_plots(spec: ModelSpec, model: FamilyModel, data: TrainingData,
               evaluation: Evaluation) -> None:
    fam = family(spec.family)
    residuals, late = {}, {}
    for stage in model.stages:
        test = data.intake.test if stage == "intake" else data.inflight.test
        if not len(test):
            continue
        estimator = model.stages[stage]
        sample = test.iloc[tracking.sample(len(test))]
        X = tracking.stage_features(model, stage, sample)
        tracking.log_figure(tracking.shap_summary_figure(
            estimator.predict(X, shap=True)["shap"], X,
            f"SHAP summary: {spec.family} {stage}, P50 of {spec.target}"),
            f"plots/shap_summary_{stage}.png")
        tracking.log_figure(tracking.importance_figure(
            estimator.regressor_.models_[1].booster_,
            f"Feature importance: {spec.family} {stage} (P50)"),
            f"plots/feature_importance_{stage}.png")
        out = evaluation.predictions[stage]
        residuals[stage] = (out[f"{fam.quantity}_p50"].to_numpy(float),
                            test[fam.actual].to_numpy(float))
        if spec.classifier:
            late[stage] = (test["late"].to_numpy(int), out["probability_late"].to_numpy(float))
    tracking.log_figure(tracking.residual_figure(
        residuals, f"Residuals vs forecast: {spec.family} (held-out projects)", fam.unit),
        "plots/residuals_vs_prediction.png")
    if late:
        tracking.log_figure(tracking.calibration_figure(
            late, f"Calibration of P(late > {spec.late_threshold:.0%}) on held-out projects"),
            "plots/calibration_curve.png")


def _example_rows(model: FamilyModel, data: TrainingData) -> pd.DataFrame:
    """Two intake and two in-flight held-out rows: the logged input example."""
    inflight = data.inflight.test.head(2)
    intake = data.intake.test.head(2)
    columns = [*model.manifest.intake_columns, *model.manifest.snapshot_columns]
    rows = pd.concat([intake, inflight], ignore_index=True).reindex(columns=columns)
    return pyfunc.as_signed(model.manifest, rows)


def _reported(spec: ModelSpec, key: str) -> bool:
    """Log a metric if the spec reports its kind; counts, baselines and the gate's always."""
    kind = key.rsplit("/", 1)[-1].split("_")[0]
    return (kind in spec.report or kind == "n" or "/baseline_" in key
            or key == f"heldout/{spec.promotion_metric}")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")
