"""The tables of the service's database (SQLAlchemy Core), as the newest migration leaves them.

A change here needs a migration in `migrations/versions/` too; tests/test_database.py checks
that the migrated schema and these definitions agree. The naming convention gives constraints
stable names that later migrations (and SQLite's batch mode) can refer to.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, MetaData, String, Table

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Candidates scored and kept for intake: one row per project id (a later keep replaces it);
# closing sets closed_at instead of deleting, so the decision stays on record.
intake_pipeline = Table(
    "intake_pipeline", metadata,
    Column("project_id", String(200), primary_key=True),
    Column("name", String(200)),
    Column("scorecard_version", String(50), nullable=False),
    Column("scorecard_digest", String(80), nullable=False),
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
