"""`opm-ml retrain --if-needed`: retrain the families whose champion the monitor finds stale.

The decision is the monitoring report's (`opm_ml.monitoring.decision`): drifted features, the
champion's own predictions drifting, realised error above held-out error, or enough projects
finished since it was trained, each against the spec's `[monitoring]` thresholds. The
decision and its reasons (also why not) go to MLflow as a `retrain` run linked to the
champions; the families that need it are trained on the history folder with `train_models`,
whose promotion gate decides whether the new version replaces the champion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from opm_ml import database
from opm_ml.forecasting.families import FAMILY_NAMES
from opm_ml.model_set import load_model_set
from opm_ml.monitoring.report import build_report, served_heldout
from opm_ml.monitoring.tracking import log_monitoring_run, registry_heldout
from opm_ml.settings import Settings
from training.pipeline import TrainingResult, train_models
from training.specs import ModelSpec, load_spec


@dataclass
class RetrainOutcome:
    """What `retrain_if_needed` decided and did."""

    decisions: dict[str, dict]  # family -> {"retrain", "reasons", "checks"}
    retrained: list[str]
    decision_run_id: str | None
    training: TrainingResult | None = None
    report: dict = field(default_factory=dict, repr=False)


def retrain_if_needed(settings: Settings, data: Path, families=FAMILY_NAMES,
                      if_needed: bool = True, since: datetime | None = None, seed: int = 42,
                      specs: dict[str, ModelSpec] | None = None, allow_rejects: bool = False,
                      progress=None) -> RetrainOutcome:
    """Decide per family from the monitoring report, record why, and retrain those that need
    it (all of `families` when `if_needed` is False). ValueError for unusable data or specs."""
    specs = {f: (specs or {}).get(f) or load_spec(f) for f in families}
    try:
        model_set = load_model_set(settings, families)
    except LookupError:
        model_set = None  # nothing served yet: train them all
    report, decisions = {}, {}
    if model_set is not None:
        engine = database.connect(settings.database_url)
        report = build_report(engine, model_set.models,
                              {f: specs[f].monitoring for f in model_set.models}, since,
                              registry_heldout(settings, served_heldout(model_set.models)))
        decisions = {f: item["decision"] for f, item in report["families"].items()}
    for f in families:
        decisions.setdefault(f, {"retrain": True, "reasons": ["no champion yet"], "checks": []})
        if not if_needed and not decisions[f]["retrain"]:
            decisions[f] = {**decisions[f], "retrain": True,
                            "reasons": ["retrain requested (without --if-needed)"]}
    needed = [f for f in families if decisions[f]["retrain"]]
    run_id = (log_monitoring_run(settings, report, kind="retrain",
                                 extra_tags={"retrain.families": ",".join(needed) or "-"})
              if report else None)
    outcome = RetrainOutcome(decisions, needed, run_id, report=report)
    if not needed:
        return outcome
    history = _history(data, allow_rejects)
    outcome.training = train_models(history, needed, seed=seed, settings=settings,
                                    data_source=str(Path(data).resolve()), specs=specs,
                                    progress=progress)
    if run_id is not None:  # the decision run names the training run it started
        from opm_ml import mlflow_access

        client = mlflow_access.client(settings)
        client.set_tag(run_id, "retrain.training_run_id", outcome.training.parent_run_id)
        for r in outcome.training.results:
            client.set_tag(run_id, f"retrain.{r.family}.promotion", r.decision.reason[:5000])
    return outcome


def _history(data: Path, allow_rejects: bool):
    """The validated history to train on; ValueError naming the problem."""
    from opm_ml.validation import ContractError, load_history

    try:
        history = load_history(data)
    except ContractError as exc:
        raise ValueError(str(exc)) from None
    rejected = history.rejections
    if len(rejected) and not allow_rejects:
        raise ValueError(f"{rejected['row'].nunique():,} rejected row(s) in {data} (see opm-ml "
                         "data validate); fix them or pass --allow-rejects")
    if history.projects.empty:
        raise ValueError(f"no valid projects to train on in {data}")
    return history
