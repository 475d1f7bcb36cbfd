"""The service's own database: SQLAlchemy tables migrated by Alembic, one engine per URL.

`connect(url)` gives an engine whose schema is at the newest migration; `tables` holds the
table definitions. Today it keeps the intake pipeline; later migrations add more tables (the
prediction log, outcomes) to the same database.
"""

from opm_ml.database.engine import DatabaseUnavailable, connect, current_revision, upgrade

__all__ = ["DatabaseUnavailable", "connect", "current_revision", "upgrade"]
