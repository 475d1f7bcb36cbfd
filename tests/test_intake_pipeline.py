"""The open intake pipeline: keep, replace, close, and each candidate's place in it.

Real scored candidates (the example file on the session's small registry) in a real SQLite
database per test; places are recomputed by hand from the stored scores.
"""

import contextlib
import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from pg_cluster import postgres_cluster, server_bin
from sqlalchemy import text
from test_intake_batch import AHP, CRM
from test_intake_scoring import CANDIDATES
from typer.testing import CliRunner

from opm_ml import database
from opm_ml.intake import cli as intake_cli
from opm_ml.intake.ahp import priorities
from opm_ml.intake.candidates import parse_candidates, read_candidates
from opm_ml.intake.pipeline import Pipeline
from opm_ml.intake.risk import model_forecaster
from opm_ml.intake.scorecard import CRITERIA, DEFAULT_CONFIG, load_config
from opm_ml.intake.scoring import score_candidates
from opm_ml.model_set import load_model_set
from serving.app import create_app
from serving.model_store import ModelStore


@pytest.fixture(scope="module")
def forecaster(small_registry):
    settings = small_registry[0]
    return model_forecaster(load_model_set(settings).family_models())


@pytest.fixture(scope="module")
def scored(forecaster):
    return score_candidates(read_candidates(CANDIDATES), forecaster)


@pytest.fixture
def pipeline(tmp_path):
    return Pipeline.from_url(f"sqlite:///{tmp_path / 'pipeline.db'}")


def hand_place(score, others):
    """(rank, percentile) of `score` among the other open scores, ties counted half."""
    others = np.asarray(others)
    percentile = 100 * ((others < score).sum() + (others == score).sum() / 2) / len(others)
    return int((others > score).sum() + 1), round(percentile, 1)


def test_kept_candidates_are_placed_among_each_other(pipeline, scored):
    view = pipeline.view(scored, keep=True)
    assert view.kept == scored.candidates.ids and view.summary()["open"] == 20
    t, place = scored.table, view.frame.set_index("project_id")
    for pid, score in zip(t["project_id"], t["score"]):
        others = t.loc[t["project_id"] != pid, "score"]
        assert (place.loc[pid, "pipeline_rank"], place.loc[pid, "pipeline_percentile"]) == \
            hand_place(score, others)
        assert place.loc[pid, "pipeline_size"] == 20
    listing, stale = pipeline.listing(scored.config)
    assert stale == 0 and listing["project_id"].tolist() == t.sort_values(
        ["score", "project_id"], ascending=[False, True])["project_id"].tolist()
    assert listing["current_score"].tolist() == listing["score"].tolist()  # same weights


def test_keeping_an_id_again_replaces_it_and_closing_takes_it_out(pipeline, scored, forecaster):
    pipeline.keep(scored)
    frame = pd.read_csv(CANDIDATES, dtype={"project_id": str})
    # C003 comes back with a bigger business case: one entry, the new figures.
    changed = frame[frame["project_id"] == "C003"].copy()
    changed[[c for c in frame.columns if c.startswith("benefit_year_")]] *= 3
    again = score_candidates(parse_candidates(changed), forecaster)
    view = pipeline.view(again, keep=True)
    entries = pipeline.entries()
    assert len(entries) == 20 and view.kept == ["C003"]
    stored = entries.set_index("project_id").loc["C003"]
    assert stored["score"] == again.table["score"][0] > scored.table.set_index(
        "project_id").loc["C003", "score"]
    others = entries.loc[entries["project_id"] != "C003", "score"]
    assert view.frame.iloc[0]["pipeline_rank"] == hand_place(stored["score"], others)[0]
    closed = pipeline.close("C003", "approved")
    assert closed["close_reason"] == "approved" and closed["closed_at"] is not None
    assert pipeline.close("C003") is None  # no longer open
    assert "C003" not in pipeline.entries()["project_id"].tolist()
    assert len(pipeline.entries(include_closed=True)) == 20  # the decision stays on record
    # A candidate not kept is placed among the open ones without entering the pipeline.
    view = pipeline.view(again, keep=False)
    assert view.kept == [] and view.frame.iloc[0]["pipeline_size"] == 20
    pipeline.view(again, keep=True)  # kept again: open again
    assert "C003" in pipeline.entries()["project_id"].tolist()


def test_places_use_the_calls_weights_on_the_stored_criterion_scores(pipeline, scored,
                                                                    forecaster):
    pipeline.keep(scored)
    weighted = score_candidates(scored.candidates, forecaster,
                                scored.config.with_weights(criteria_comparisons=AHP))
    same, _ = pipeline.comparable(weighted.config)
    w = priorities(AHP, CRITERIA).weights
    by_hand = {r.project_id: round(sum(100 * w[c] * r.criterion_scores[c] for c in CRITERIA), 2)
               for r in same.itertuples()}
    assert dict(zip(same["project_id"], same["current_score"])) == pytest.approx(by_hand, abs=0.01)
    assert dict(zip(weighted.table["project_id"], weighted.table["score"])) == pytest.approx(
        by_hand, abs=0.01)


def test_entries_of_another_scorecard_are_counted_not_compared(pipeline, scored, forecaster,
                                                               tmp_path):
    pipeline.keep(scored)
    shutil.copy(DEFAULT_CONFIG.parent / "intake_reference.csv", tmp_path)
    other = tmp_path / "scorecard.toml"
    other.write_text(DEFAULT_CONFIG.read_text().replace('"2026.2"', '"2027.1"'))
    newer = score_candidates(parse_candidates(scored.candidates.frame.iloc[:1]), forecaster,
                             load_config(other))
    view = pipeline.view(newer)
    assert view.summary() == {"kept": [], "open": 20, "compared": 0, "not_comparable": 20}
    assert view.frame.iloc[0]["pipeline_size"] == 1 and np.isnan(
        view.frame.iloc[0]["pipeline_percentile"])


def against(scored, reference):
    """`scored` as if its percentile scales had compared with population `reference` (a
    profile's past projects; None: none, the criterion neutral), scores unchanged."""
    return replace(scored, config=replace(scored.config, reference_digest=reference))


def test_entries_scored_against_another_reference_population_are_counted_not_compared(
        pipeline, scored, forecaster):
    frame = scored.candidates.frame
    pair = score_candidates(parse_candidates(frame.iloc[:2]), forecaster)
    other = score_candidates(parse_candidates(frame.iloc[2:4]), forecaster)
    assert pair.config.digest == other.config.digest and pair.config.reference_digest
    pipeline.keep(pair)  # the scorecard's own reference
    own = against(other, "sha256:" + "ab" * 32)  # the same scorecard, a profile's projects
    view = pipeline.view(own, keep=True)
    assert view.summary() == {"kept": other.candidates.ids, "open": 4, "compared": 2,
                              "not_comparable": 2}
    assert view.frame["pipeline_size"].tolist() == [2, 2]  # each placed beside the other only
    stored = pipeline.entries().set_index("project_id")["reference_digest"]
    assert stored.to_dict() == {**dict.fromkeys(pair.candidates.ids, pair.config.reference_digest),
                                **dict.fromkeys(other.candidates.ids, own.config.reference_digest)}
    listing, not_comparable = pipeline.listing(pair.config)
    assert listing["project_id"].tolist() == sorted(
        pair.candidates.ids, key=dict(zip(pair.table["project_id"], -pair.table["score"])).get)
    assert not_comparable == 2 and set(listing["reference_digest"]) == {
        pair.config.reference_digest}
    # No reference at all (a profile without past projects): only None matches None.
    neutral = against(pair, None)
    assert pipeline.view(neutral).summary()["compared"] == 0
    pipeline.view(neutral, keep=True)  # the pair kept again, scored neutrally
    view = pipeline.view(neutral)
    assert view.summary() == {"kept": [], "open": 4, "compared": 2, "not_comparable": 2}
    assert pipeline.entries()["reference_digest"].isna().sum() == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_entries_kept_before_references_were_recorded(backend, tmp_path, scored):
    """Migration 0003 fills in the reference a 0002 entry was scored against when its
    scorecard is the service's (whose file pins it); others are 'unknown', never compared."""
    if backend == "postgresql":
        try:
            server_bin()
        except RuntimeError as exc:
            pytest.skip(str(exc))
        cluster = postgres_cluster("opm")
    else:
        cluster = contextlib.nullcontext(f"sqlite:///{tmp_path / 'old.db'}")
    config = load_config()
    with cluster as url:
        engine = database.engine.create(url)
        database.upgrade(engine, "0002")  # a database from before the reference was recorded
        rows = [(pid, digest, score) for pid, digest, score in (
            ("OLD-1", config.digest, 0.9), ("OLD-2", config.digest, 0.2),
            ("OLD-3", "sha256:" + "0" * 64, 0.5))]
        with engine.begin() as conn:
            for pid, digest, score in rows:
                conn.execute(text(
                    "INSERT INTO intake_pipeline (project_id, scorecard_version, scorecard_digest,"
                    " criterion_scores, score, moscow, mandatory, risk_adjusted_npv, kept_at) "
                    "VALUES (:pid, :version, :digest, :scores, 1, 'could', false, 1, "
                    "'2026-01-01T00:00:00+00:00')"), {
                        "pid": pid, "version": config.version, "digest": digest,
                        "scores": json.dumps(dict.fromkeys(CRITERIA, score))})
        database.upgrade(engine)
        assert database.current_revision(engine) == "0003"
        pipeline = Pipeline(engine)
        stored = pipeline.entries().set_index("project_id")["reference_digest"].to_dict()
        assert stored == {"OLD-1": config.reference_digest, "OLD-2": config.reference_digest,
                          "OLD-3": "unknown"}
        same, not_comparable = pipeline.comparable(config)
        assert same["project_id"].tolist() == ["OLD-1", "OLD-2"] and not_comparable == 1
        # A new contract entry is placed among the migrated ones of its scorecard.
        view = pipeline.view(scored)
        assert view.summary()["compared"] == 2 and view.summary()["not_comparable"] == 1
        assert pipeline.comparable(against(scored, None).config)[1] == 3  # neutral: none
        engine.dispose()


@pytest.fixture
def client(small_registry, tmp_path):
    """The API on the session's models and a fresh pipeline database."""
    settings = small_registry[0].model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'api.db'}"})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    return TestClient(create_app(settings, store))


def test_api_keep_list_and_close(client):
    second = {**CRM, "project_id": "C-002", "name": "Second", "strategic_fit": 2.0,
              "alignment": {"customer_experience": 2, "cost_efficiency": 2, "compliance": 2}}
    first = client.post("/v1/intake/score?keep=true", json=[CRM]).json()
    assert first["pipeline"] == {"kept": ["C-001"], "open": 1, "compared": 1, "not_comparable": 0}
    assert first["items"][0]["pipeline"] == {"rank": 1, "size": 1, "percentile": None}
    answer = client.post("/v1/intake/score", json=[second]).json()  # not kept
    assert answer["pipeline"]["kept"] == [] and answer["pipeline"]["open"] == 1
    crm_score, second_score = first["items"][0]["score"], answer["items"][0]["score"]
    assert second_score < crm_score
    assert answer["items"][0]["pipeline"] == {"rank": 2, "size": 2, "percentile": 0.0}
    client.post("/v1/intake/score", params={"keep": "true"}, json=[second])
    listing = client.get("/v1/intake/pipeline").json()
    assert [e["project_id"] for e in listing["entries"]] == ["C-001", "C-002"]
    assert [e["score"] for e in listing["entries"]] == [crm_score, second_score]
    assert listing["scorecard_digest"] == load_config().digest
    reference = load_config().reference_digest  # the contract's: the scorecard's own
    assert listing["reference_digest"] == reference and reference.startswith("sha256:")
    assert [e["reference_digest"] for e in listing["entries"]] == [reference, reference]
    closed = client.delete("/v1/intake/pipeline/C-001", params={"reason": "approved"})
    assert closed.status_code == 200 and closed.json()["close_reason"] == "approved"
    assert closed.json()["closed_at"].endswith("+00:00")
    again = client.delete("/v1/intake/pipeline/C-001")
    assert again.status_code == 404 and "no open candidate 'C-001'" in again.json()["message"]
    assert [e["project_id"] for e in client.get("/v1/intake/pipeline").json()["entries"]] == [
        "C-002"]
    crm = client.post("/v1/intake/score", json=[CRM]).json()["items"][0]
    assert crm["score"] == crm_score  # the pipeline never changes a score
    assert crm["pipeline"] == {"rank": 1, "size": 2, "percentile": 100.0}


def test_api_answers_503_when_the_database_is_unreachable(small_registry):
    settings = small_registry[0].model_copy(update={
        "database_url": "postgresql+psycopg2://opm:secret@127.0.0.1:1/x?connect_timeout=2"})
    store = ModelStore(settings)
    assert store.reload(wait=True), store.last_error
    client = TestClient(create_app(settings, store))
    response = client.post("/v1/intake/score", json=[CRM])
    assert response.status_code == 503 and response.json()["error"] == "pipeline_unavailable"
    # Anonymous clients get a reference into the log, not the database's host (issue 13, #9).
    assert "reference" in response.json()["message"] and response.headers["Retry-After"]
    assert "127.0.0.1" not in response.text and "secret" not in response.text


def test_cli_keep_pipeline_and_close(small_registry, tmp_path, monkeypatch):
    settings = small_registry[0].model_copy(
        update={"database_url": f"sqlite:///{tmp_path / 'cli.db'}"})
    monkeypatch.setattr(intake_cli, "get_settings", lambda: settings)
    app = typer.Typer()
    for name in ("score", "pipeline", "close"):
        app.command(name)(getattr(intake_cli, f"intake_{name}"))
    runner = CliRunner()
    out = tmp_path / "ranked.csv"
    result = runner.invoke(app, ["score", str(CANDIDATES), "--out", str(out), "--keep"])
    assert result.exit_code == 0, result.output
    assert "pipeline: 20 kept, 20 open compared" in result.output
    ranked = pd.read_csv(out)
    assert ranked["pipeline_size"].eq(20).all() and ranked["pipeline_rank"].min() == 1
    assert ranked["scorecard_digest"].eq(load_config().digest).all()
    result = runner.invoke(app, ["close", "C001", "--reason", "approved"])
    assert result.exit_code == 0 and "closed C001 (approved)" in result.output
    result = runner.invoke(app, ["pipeline"])
    assert result.exit_code == 0 and "19 candidates" in result.output and "C001" not in result.output
    assert f"reference {load_config().reference_digest[:19]}...: 19" in result.output
    result = runner.invoke(app, ["close", "C001"])
    assert result.exit_code == 2 and result.output.strip() == (
        "error: no open candidate 'C001' in the pipeline")
    weights = tmp_path / "weights.toml"
    weights.write_text('criteria_comparisons = [["financial_value", "risk", 3]]\n')
    result = runner.invoke(app, ["score", str(CANDIDATES), "--out", str(out), "--weights",
                                 str(weights)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: criteria_comparisons: missing judgement(s)")
