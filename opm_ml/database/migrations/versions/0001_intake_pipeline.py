"""Intake pipeline: the candidates scored and kept, open until closed.

Revision ID: 0001
Revises:
Create Date: 2026-02-01

Written out in full (not imported from tables.py) so the revision stays what it was when
tables.py changes later.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "intake_pipeline",
        sa.Column("project_id", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("scorecard_version", sa.String(50), nullable=False),
        sa.Column("scorecard_digest", sa.String(80), nullable=False),
        sa.Column("criterion_scores", sa.JSON, nullable=False),
        sa.Column("alignment", sa.JSON),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("moscow", sa.String(10), nullable=False),
        sa.Column("mandatory", sa.Boolean, nullable=False),
        sa.Column("risk_adjusted_npv", sa.Float, nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("close_reason", sa.String(200)),
        sa.PrimaryKeyConstraint("project_id", name="pk_intake_pipeline"),
    )


def downgrade() -> None:
    op.drop_table("intake_pipeline")
