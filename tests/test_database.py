"""The service database: migrations applied at first use, idempotent, matching tables.py."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from opm_ml import database
from opm_ml.database import engine as db_engine
from opm_ml.database.tables import metadata
from opm_ml.settings import PROJECT_ROOT, Settings

HEAD = "0003"  # the newest migration


def test_first_use_migrates_and_a_second_upgrade_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'sub' / 'opm-ml.db'}"  # the folder is created too
    engine = database.connect(url)
    assert database.current_revision(engine) == HEAD
    tables = set(inspect(engine).get_table_names())
    assert tables == {"intake_pipeline", "prediction_log", "prediction_log_forecast",
                      "project_outcomes", db_engine.VERSION_TABLE}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO intake_pipeline (project_id, scorecard_version, "
                          "scorecard_digest, criterion_scores, score, moscow, mandatory, "
                          "risk_adjusted_npv, kept_at) VALUES ('P1', 'v', 'd', '{}', 1, 'could', "
                          "0, 1, '2026-01-01')"))
    database.upgrade(engine)  # applying again is a no-op: same revision, tables, data
    fresh = create_engine(url)
    assert database.current_revision(fresh) == HEAD
    assert set(inspect(fresh).get_table_names()) == tables
    with fresh.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM intake_pipeline")).scalar() == 1
        versions = conn.execute(text(f"SELECT version_num FROM {db_engine.VERSION_TABLE}")).all()
    assert versions == [(HEAD,)]
    assert database.connect(url) is engine  # one engine (and one migration) per URL


def test_migrated_schema_matches_the_table_definitions(tmp_path):
    """A table changed in tables.py without a migration (or the reverse) fails here."""
    engine = database.connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": db_engine.VERSION_TABLE})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_shares_a_database_with_another_alembic_user(tmp_path):
    """MLflow keeps its own `alembic_version`; ours is a separate table, so neither clobbers."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with create_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('mlflow-head')"))
    engine = database.connect(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("mlflow-head",)]
    assert database.current_revision(engine) == HEAD


@pytest.mark.parametrize("url, message", [
    ("not a url", "is not a database URL"),
    ("nosuchdialect://host/db", "nosuchdialect"),
])
def test_bad_urls_are_named_errors(url, message):
    with pytest.raises(database.DatabaseUnavailable, match=message):
        database.connect(url)


def test_unreachable_database_hides_the_password():
    with pytest.raises(database.DatabaseUnavailable) as caught:
        database.connect("postgresql+psycopg2://opm:s3cret@127.0.0.1:1/opm?connect_timeout=2")
    assert "127.0.0.1" in str(caught.value) and "s3cret" not in str(caught.value)


def test_default_database_is_a_file_in_the_project_folder(monkeypatch):
    monkeypatch.delenv("OPM_ML_DATABASE_URL", raising=False)
    assert Settings(_env_file=None).database_url == f"sqlite:///{PROJECT_ROOT / 'var' / 'opm-ml.db'}"
    monkeypatch.setenv("OPM_ML_DATABASE_URL", "postgresql+psycopg2://h/db")
    assert Settings(_env_file=None).database_url == "postgresql+psycopg2://h/db"
