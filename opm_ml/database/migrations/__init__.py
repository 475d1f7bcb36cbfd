"""Alembic migrations of the service database (applied by opm_ml.database.upgrade)."""
