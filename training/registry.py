"""Registry and promotion gate: challenger vs champion on the same held-out projects.

A model that does not beat its baselines is not registered (when its spec says
`must_beat_baselines`). Otherwise it becomes a new version with alias `challenger`. The gate then
loads the current `champion` from the registry, scores it on this run's held-out rows with the
spec's promotion metric, and moves `champion` to the challenger only if it is better by the
spec's relative margin. With no champion yet, the challenger is promoted. A champion that
cannot score the held-out rows (e.g. an older input schema) is reported and replaced. The
decision and both scores are logged to the run and tagged on the model version. A training run
decides every family first and moves aliases last, so a failure part-way moves none, and a
changed profile replaces the served set whole or not at all (`settle_profile_set`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from opm_ml import mlflow_access
from opm_ml.forecasting.pyfunc import MODEL_ARTIFACT
from opm_ml.settings import Settings
from training.evaluation import score_predictions

PROFILE_TAG = "opm_ml.profile_digest"  # on every registered version: which profile it reads


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
    profile_digest: str = ""  # the challenger's
    champion_digest: str | None = None  # the champion's it was judged against


def is_better(challenger: float, champion: float, margin: float, greater_is_better: bool) -> bool:
    """True when the challenger beats the champion by at least the relative `margin`."""
    if greater_is_better:
        return challenger >= champion * (1 + margin) if champion >= 0 else challenger > champion
    return challenger <= champion * (1 - margin)


def champion_version(client, name: str) -> str | None:
    """The version the `champion` alias points at; None without a champion."""
    try:
        return client.get_model_version_by_alias(name, "champion").version
    except MlflowException:
        return None


def family_score(client, settings: Settings, name: str, version: str, family: str,
                 metric: str, heldout: pd.DataFrame) -> tuple[float, str]:
    """(score on `heldout`, profile digest) of a registered family model version."""
    model = mlflow_access.load_family_model(client, name, version,
                                            settings.mlflow_tracking_uri, settings.signing_key())
    output = model.predict(heldout, shap=False).to_frame(shap=False)
    return score_predictions(family, output, heldout)[metric], model.manifest.profile_digest


def register_and_judge(model_uri: str, name: str, spec, heldout: pd.DataFrame,
                       challenger_metric: float, failed_checks: list[str],
                       settings: Settings, profile_digest: str = "",
                       score_champion: Callable[[str], float] | None = None,
                       artifact: str = MODEL_ARTIFACT) -> Decision:
    """Register the model as `challenger` and decide whether it should become `champion`.

    `spec` gives the family, `promotion_metric`, `greater_is_better`, `margin` and
    `must_beat_baselines` (a family's `ModelSpec`, or the activity-duration model's spec).
    `score_champion(version)` scores a registered version on this run's held-out data with that
    metric (default: a family model on the `heldout` rows); `artifact` names its joblib file
    (what a signing key signs). Moves no `champion` alias: `promote`
    does, once every family of the run is decided (see `settle_profile_set`). Runs inside
    `mlflow_access.tracking(settings)`.
    """
    family = spec.family
    if spec.must_beat_baselines and failed_checks:
        return Decision(family, registered=False, promoted=False,
                        reason="not registered: did not beat " + "; ".join(failed_checks),
                        challenger_score=challenger_metric, profile_digest=profile_digest)
    client = mlflow_access.client(settings)
    version = mlflow.register_model(model_uri, name).version
    if settings.model_signing_key is not None:  # signed before any alias can point at it
        mlflow_access.sign_version(client, name, version, settings.mlflow_tracking_uri,
                                   settings.signing_key(), artifact)
    client.set_registered_model_alias(name, "challenger", version)
    if profile_digest:
        client.set_model_version_tag(name, version, PROFILE_TAG, profile_digest)
    champ_version, champ, champ_digest = champion_version(client, name), None, None
    try:
        if champ_version is not None and score_champion is None:
            champ, champ_digest = family_score(client, settings, name, champ_version, family,
                                               spec.promotion_metric, heldout)
        elif champ_version is not None:
            champ = score_champion(champ_version)
    except Exception as exc:  # noqa: BLE001 - any failure to score means the champion is unusable
        champ = None
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
    return Decision(family, True, promoted, reason, version, challenger_metric, champ,
                    champ_version, profile_digest, champ_digest)


def promote(decision: Decision, name: str, settings: Settings) -> None:
    """Move `champion` to a promoted decision's version; tag the version with the decision."""
    if not decision.registered:
        return
    client = mlflow_access.client(settings)
    if decision.promoted:
        client.set_registered_model_alias(name, "champion", decision.version)
    for key, value in _tags(decision).items():
        client.set_model_version_tag(name, decision.version, key, value)


def register_and_gate(model_uri: str, name: str, spec, heldout: pd.DataFrame,
                      challenger_metric: float, failed_checks: list[str],
                      settings: Settings,
                      score_champion: Callable[[str], float] | None = None,
                      artifact: str = MODEL_ARTIFACT) -> Decision:
    """`register_and_judge` then `promote`: one model on its own (a family, or the schedule's
    activity-duration model with its own `score_champion` and `artifact`)."""
    decision = register_and_judge(model_uri, name, spec, heldout, challenger_metric,
                                  failed_checks, settings, score_champion=score_champion,
                                  artifact=artifact)
    promote(decision, name, settings)
    return decision


def settle_profile_set(decisions: list[Decision], other_champions: dict[str, str | None],
                       digest: str) -> list[Decision]:
    """Keep the served set on one profile: the API refuses champions of different profiles.

    When this run's profile (`digest`) differs from a champion's, the run's models move only
    as a set: every family of the profile trained in this run (`other_champions` maps the
    untrained ones to their champion's digest) and promoted by its own gate. Otherwise none
    is promoted, and each decision says why.
    """
    old = {d.champion_digest for d in decisions if d.champion_digest} | {
        v for v in other_champions.values() if v}
    if not old - {digest} or not any(d.promoted for d in decisions):
        return decisions
    held = [d.family for d in decisions if not d.promoted]
    held += [f"{f} (not trained in this run)" for f, v in other_champions.items()
             if v and v != digest]
    if not held:
        return decisions
    why = (f"; not promoted: the profile changed, and champions must share one profile, so "
           f"this run's models move only as a set; held back by {', '.join(held)}")
    return [replace(d, promoted=False, reason=d.reason + why) if d.promoted else d
            for d in decisions]


def profile_digest_of_champion(client, settings: Settings, name: str) -> str | None:
    """The profile digest of `name`'s champion (its version tag, else its model); None when
    there is no champion."""
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None
    if PROFILE_TAG in champion.tags:
        return champion.tags[PROFILE_TAG]
    model = mlflow_access.load_family_model(client, name, champion.version,
                                            settings.mlflow_tracking_uri)
    return model.manifest.profile_digest


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
