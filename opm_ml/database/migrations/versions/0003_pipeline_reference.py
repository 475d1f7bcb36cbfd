"""Intake pipeline: the reference population each kept entry was scored against.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A criterion score depends on the scorecard (`scorecard_digest`) and on the population its
percentile scales compared with: the scorecard's pinned `[reference]` for the contract, a
dataset profile's own past projects, or none (NULL: the percentile criteria scored neutral).
Entries are compared only when both digests match, so each entry now records the second.

Backfill of the rows kept before this revision, which did not record it: until profiles kept
their past projects every candidate was scored against its scorecard's pinned reference, and a
scorecard digest is the sha256 of the file's bytes, which name the reference's sha256. So
where a row's scorecard digest equals that of the scorecard the service scores with
(models/intake_scorecard.toml, read here once), that file's `[reference] sha256` is exactly
what the row was scored against and is filled in; this is never a guess, whenever the
migration runs. Any other row (a scorecard file since changed, or another one given with
`--config`) is set to 'unknown', which equals neither a digest nor NULL: it is counted as not
comparable until kept again, never ranked on a scale it may not share.

The table is otherwise untouched (no import of opm_ml.intake: the migration stays what it was).
"""

import hashlib
import tomllib

import sqlalchemy as sa
from alembic import op

from opm_ml.settings import PROJECT_ROOT

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCORECARD = PROJECT_ROOT / "models" / "intake_scorecard.toml"
UNKNOWN = "unknown"  # kept before 0003 with a scorecard this migration could not read


def _scorecard() -> tuple[str, str | None] | None:
    """(digest, pinned reference digest or None) of the service's scorecard; None: unreadable."""
    try:
        raw = SCORECARD.read_bytes()
        reference = tomllib.loads(raw.decode()).get("reference", {}).get("sha256")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return None
    return "sha256:" + hashlib.sha256(raw).hexdigest(), (str(reference) if reference else None)


def upgrade() -> None:
    op.add_column("intake_pipeline", sa.Column("reference_digest", sa.String(80)))
    pipeline = sa.table("intake_pipeline", sa.column("scorecard_digest", sa.String),
                        sa.column("reference_digest", sa.String))
    op.execute(pipeline.update().values(reference_digest=UNKNOWN))
    known = _scorecard()
    if known is not None:
        digest, reference = known
        op.execute(pipeline.update().where(pipeline.c.scorecard_digest == digest)
                   .values(reference_digest=reference))


def downgrade() -> None:
    with op.batch_alter_table("intake_pipeline") as batch:
        batch.drop_column("reference_digest")
