"""Alembic environment: runs on the connection `opm_ml.database.engine.upgrade` passes in.

There is no alembic.ini and no logging set-up here: the package applies its own migrations.
`render_as_batch` lets later migrations alter SQLite tables (SQLite has little ALTER TABLE).
"""

from alembic import context

from opm_ml.database.engine import VERSION_TABLE
from opm_ml.database.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("apply the migrations with opm_ml.database.upgrade(engine)")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
