"""One SQLAlchemy engine per database URL, migrated to the newest revision at first use.

The URL comes from `Settings.database_url` (`OPM_ML_DATABASE_URL`): an SQLite file in the
project folder by default, `postgresql+psycopg2://user@host/db` for a team. `connect` applies
the Alembic migrations in `migrations/` programmatically (no alembic.ini) once per URL and
process; applying them again is a no-op. Alembic's bookkeeping table is `opm_ml_alembic_version`
rather than the default `alembic_version`, which MLflow's own store uses, so both schemas can
share one database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "opm_ml_alembic_version"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used; the message names it (password hidden)."""


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def alembic_config(connection=None) -> Config:
    """Alembic configuration pointing at the package's migrations, on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys are off by default in SQLite; later tables (outcomes -> predictions) need them.
    # WAL lets the API read while another process writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def create(url: str) -> Engine:
    """A new engine for `url`; an SQLite file's folder is created when missing."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"database_url {url!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except ArgumentError as exc:  # unknown dialect or driver
        raise DatabaseUnavailable(f"database_url {safe_url(url)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to `revision` in one transaction (a no-op when already there)."""
    with translate_errors(engine), engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first migration)."""
    with translate_errors(engine), engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def connect(url: str) -> Engine:
    """The process-wide engine for `url`, migrated to head the first time it is asked for."""
    with _lock:  # two first requests at once must not both migrate
        engine = _engines.get(url)
        if engine is None:
            engine = create(url)
            upgrade(engine)
            _engines[url] = engine
    return engine


@contextmanager
def translate_errors(engine: Engine) -> Iterator[None]:
    """SQLAlchemy errors as DatabaseUnavailable naming the database, never a raw driver trace."""
    try:
        yield
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
        where = engine.url.render_as_string(hide_password=True)
        raise DatabaseUnavailable(f"database {where}: {first}") from exc
