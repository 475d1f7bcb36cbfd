"""The tables of the service's database (SQLAlchemy Core), as the newest migration leaves them.

A change here needs a migration in `migrations/versions/` too; tests/test_database.py checks
that the migrated schema and these definitions agree. The naming convention gives constraints
stable names that later migrations (and SQLite's batch mode) can refer to.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Candidates scored and kept for intake: one row per project id (a later keep replaces it);
# closing sets closed_at instead of deleting, so the decision stays on record. Entries compare
# only when scored with the same scorecard and the same reference population (migration 0003).
intake_pipeline = Table(
    "intake_pipeline", metadata,
    Column("project_id", String(200), primary_key=True),
    Column("name", String(200)),
    Column("scorecard_version", String(50), nullable=False),
    Column("scorecard_digest", String(80), nullable=False),
    # The population its percentile scales compared with: the scorecard's reference or a
    # profile's past projects; null: none (neutral); 'unknown': kept before 0003, not knowable.
    Column("reference_digest", String(80)),
    Column("criterion_scores", JSON, nullable=False),  # criterion -> 0..1, weight-free
    Column("alignment", JSON),  # objective -> 0..10; null: the contract's strategic_fit
    Column("score", Float, nullable=False),  # as answered when kept
    Column("moscow", String(10), nullable=False),
    Column("mandatory", Boolean, nullable=False),
    Column("risk_adjusted_npv", Float, nullable=False),
    Column("kept_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    Column("close_reason", String(200)),
)

# Every forecast served (API or `opm-ml score`), one row per project and request: the feature
# values the models saw, so drift is measured on exactly what they read. Ids are made by the
# writer (uuid4 hex), so a batch inserts without a round trip per row.
prediction_log = Table(
    "prediction_log", metadata,
    Column("id", String(32), primary_key=True),
    Column("logged_at", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),  # api | score
    Column("project_id", String(200)),
    Column("stage", String(10), nullable=False),  # intake | inflight
    Column("status_date", Date),
    Column("progress", Float),  # percent complete at the forecast (in flight)
    Column("project_type", String(100)),  # the reference class the report groups by
    Column("features", JSON, nullable=False),  # feature -> value (category codes as floats)
    Index("ix_prediction_log_logged_at", "logged_at"),
    Index("ix_prediction_log_project_id", "project_id"),
)

# Per family of a logged forecast: which model version answered and what it said.
prediction_log_forecast = Table(
    "prediction_log_forecast", metadata,
    Column("prediction_id", String(32), ForeignKey("prediction_log.id", ondelete="CASCADE"),
           primary_key=True),
    Column("family", String(20), primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("planned", Float, nullable=False),  # the planned value the forecast scales
    Column("p10", Float),
    Column("p50", Float),
    Column("p90", Float),
    Column("probability_late", Float),
    Column("late_threshold", Float),
)

# What a finished project really did, per family (actual vs planned); ingesting the project
# again replaces its row.
project_outcomes = Table(
    "project_outcomes", metadata,
    Column("project_id", String(200), primary_key=True),
    Column("family", String(20), primary_key=True),
    Column("project_type", String(100)),
    Column("planned", Float, nullable=False),
    Column("actual", Float, nullable=False),
    Column("finished_on", Date),
    Column("source", String(500), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
    Index("ix_project_outcomes_ingested_at", "ingested_at"),
)
