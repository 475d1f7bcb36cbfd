"""Prediction log and project outcomes: every served forecast, and what the project really did.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-10

`prediction_log` has one row per forecast project (time, source, id, stage, progress and the
feature values the models saw); `prediction_log_forecast` one row per family of it (model
version, planned value, P10/P50/P90, P(late)); `project_outcomes` one row per finished project
and family. Written out in full (not imported from tables.py) so the revision stays what it was.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("project_id", sa.String(200)),
        sa.Column("stage", sa.String(10), nullable=False),
        sa.Column("status_date", sa.Date),
        sa.Column("progress", sa.Float),
        sa.Column("project_type", sa.String(100)),
        sa.Column("features", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_log"),
    )
    op.create_index("ix_prediction_log_logged_at", "prediction_log", ["logged_at"])
    op.create_index("ix_prediction_log_project_id", "prediction_log", ["project_id"])
    op.create_table(
        "prediction_log_forecast",
        sa.Column("prediction_id", sa.String(32), nullable=False),
        sa.Column("family", sa.String(20), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(20), nullable=False),
        sa.Column("planned", sa.Float, nullable=False),
        sa.Column("p10", sa.Float),
        sa.Column("p50", sa.Float),
        sa.Column("p90", sa.Float),
        sa.Column("probability_late", sa.Float),
        sa.Column("late_threshold", sa.Float),
        sa.PrimaryKeyConstraint("prediction_id", "family", name="pk_prediction_log_forecast"),
        sa.ForeignKeyConstraint(["prediction_id"], ["prediction_log.id"], ondelete="CASCADE",
                                name="fk_prediction_log_forecast_prediction_id_prediction_log"),
    )
    op.create_table(
        "project_outcomes",
        sa.Column("project_id", sa.String(200), nullable=False),
        sa.Column("family", sa.String(20), nullable=False),
        sa.Column("project_type", sa.String(100)),
        sa.Column("planned", sa.Float, nullable=False),
        sa.Column("actual", sa.Float, nullable=False),
        sa.Column("finished_on", sa.Date),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "family", name="pk_project_outcomes"),
    )
    op.create_index("ix_project_outcomes_ingested_at", "project_outcomes", ["ingested_at"])


def downgrade() -> None:
    op.drop_table("project_outcomes")
    op.drop_table("prediction_log_forecast")
    op.drop_table("prediction_log")
