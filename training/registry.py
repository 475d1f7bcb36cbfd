"""Registry and promotion gate: challenger vs champion on the same held-out projects.

A model that does not beat its baselines is not registered (when its spec says
`must_beat_baselines`). Otherwise it becomes a new version with alias `challenger`. The gate then
loads the current `champion` from the registry, scores it on this run's held-out rows with the
spec's promotion metric, and moves `champion` to the challenger only if it is better by the
spec's relative margin. With no champion yet, the challenger is promoted. A champion that
cannot score the held-out rows (e.g. an older input schema) is reported and replaced. The
decision and both scores are logged to the run and tagged on the model version.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from opm_ml import mlflow_access
from opm_ml.settings import Settings
from training.evaluation import score_predictions


@dataclass
class Decision:
    family: str
    registered: bool
    promoted: bool
    reason: str
    version: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    champion_version: str | None = None


def is_better(challenger: float, champion: float, margin: float, greater_is_better: bool) -> bool:
    """True when the challenger beats the champion by at least the relative `margin`."""
    if greater_is_better:
        return challenger >= champion * (1 + margin) if champion >= 0 else challenger > champion
    return challenger <= champion * (1 - margin)


def champion_score(client, settings: Settings, name: str, family: str, metric: str,
                   heldout: pd.DataFrame):
    """(version, score) of the current champion on `heldout`; (None, None) without champion."""
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, None
    model = mlflow_access.load_family_model(client, name, champion.version,
                                            settings.mlflow_tracking_uri, settings.signing_key())
    output = model.predict(heldout, shap=False).to_frame(shap=False)
    return champion.version, score_predictions(family, output, heldout)[metric]


def register_and_gate(model_uri: str, name: str, spec, heldout: pd.DataFrame,
                      challenger_metric: float, failed_checks: list[str],
                      settings: Settings) -> Decision:
    """Register the model as `challenger` and promote it to `champion` if the gate allows.

    Runs inside `mlflow_access.tracking(settings)` (registration is MLflow's fluent API).
    """
    family = spec.family
    if spec.must_beat_baselines and failed_checks:
        return Decision(family, registered=False, promoted=False,
                        reason="not registered: did not beat " + "; ".join(failed_checks),
                        challenger_score=challenger_metric)
    client = mlflow_access.client(settings)
    version = mlflow.register_model(model_uri, name).version
    if settings.model_signing_key is not None:  # signed before any alias can point at it
        mlflow_access.sign_version(client, name, version, settings.mlflow_tracking_uri,
                                   settings.signing_key())
    client.set_registered_model_alias(name, "challenger", version)
    try:
        champ_version, champ = champion_score(client, settings, name, family,
                                              spec.promotion_metric, heldout)
    except Exception as exc:  # noqa: BLE001 - any failure to score means the champion is unusable
        champ_version, champ = client.get_model_version_by_alias(name, "champion").version, None
        promoted, reason = True, f"champion v{champ_version} could not score the held-out set: {exc}"
    else:
        if champ is None:
            promoted = True
            reason = (f"no champion yet: challenger v{version} (held-out {spec.promotion_metric} "
                      f"{challenger_metric:.4g}) promoted")
        else:
            promoted = is_better(challenger_metric, champ, spec.margin, spec.greater_is_better)
            verdict = "promoted" if promoted else f"kept champion (needs {spec.margin:.1%} better)"
            reason = (f"held-out {spec.promotion_metric}: challenger v{version} "
                      f"{challenger_metric:.4g} vs champion v{champ_version} {champ:.4g}; {verdict}")
    if promoted:
        client.set_registered_model_alias(name, "champion", version)
    decision = Decision(family, True, promoted, reason, version, challenger_metric, champ,
                        champ_version)
    for key, value in _tags(decision).items():
        client.set_model_version_tag(name, version, key, value)
    return decision


def registry_listing(client, names: list[str]) -> list[dict]:
    """Every version of the given registered models with aliases and promotion tags."""
    rows = []
    for name in names:
        try:
            aliases = client.get_registered_model(name).aliases  # {alias: version}
        except MlflowException:
            continue  # not registered yet
        for mv in client.search_model_versions(f"name = '{name}'"):
            rows.append({
                "name": name, "version": int(mv.version),
                "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms"),
                "run_id": mv.run_id,
                "promoted": mv.tags.get("promotion.promoted", ""),
                "reason": mv.tags.get("promotion.reason", ""),
            })
    return sorted(rows, key=lambda r: (r["name"], -r["version"]))


def log_decision(decision: Decision, metric: str) -> None:
    """Decision and both scores on the active run (tags + metrics)."""
    mlflow.set_tags(_tags(decision))
    if decision.challenger_score is not None:
        mlflow.log_metric(f"promotion/challenger_{metric}", decision.challenger_score)
    if decision.champion_score is not None:
        mlflow.log_metric(f"promotion/champion_{metric}", decision.champion_score)


def _tags(decision: Decision) -> dict[str, str]:
    return {
        "promotion.registered": str(decision.registered).lower(),
        "promotion.promoted": str(decision.promoted).lower(),
        "promotion.reason": decision.reason,
        "promotion.version": decision.version or "",
        "promotion.champion_version": decision.champion_version or "",
    }
