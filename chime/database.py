"""Database wiring: SQLite pragmas for concurrent writers, and one engine per process."""
from __future__ import annotations

import os
import sqlite3
from typing import Any

from flask import Flask
from sqlalchemy import Integer, any_, event, literal, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine

from chime.config import SQLITE_BUSY_TIMEOUT_SECONDS
from chime.extensions import db, migrate

MIGRATIONS_DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Turn on WAL, a busy timeout and foreign keys for every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    dbapi_connection.create_function(UNICODE_LOWER_FUNCTION, 1, _unicode_lower, deterministic=True)


# SQLite's own lower() and LIKE fold ASCII letters only; searches call this one (Python's str.lower),
# so 'É' finds 'é' as on Postgres (webapp.queries).
UNICODE_LOWER_FUNCTION = "chime_lower"


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


READ_ONLY_OPTION = "chime_read_only"
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5


@event.listens_for(Engine, "begin")
def _begin_immediate(connection: Any) -> None:
    """Take SQLite's write lock at BEGIN, so busy_timeout applies instead of SQLITE_BUSY_SNAPSHOT.

    A transaction that promises to only read (execution option chime_read_only) begins DEFERRED
    and never waits for writers.
    """
    if connection.dialect.name == "sqlite":
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def begin_read_only() -> None:
    """Start the session's next transaction as a read-only one (no write lock on SQLite); inside a
    transaction already open (a caller's, e.g. a test's), the reads simply join it."""
    if not db.session().in_transaction():
        db.session.connection(execution_options={READ_ONLY_OPTION: True})


IN_LIST_BATCH = 5000  # ids per `IN (...)` list where the database takes one parameter per id


def on_postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def id_batches(ids: list[int]) -> list[list[int]]:
    """`ids` in the batches `one_of` takes: all at once on Postgres (one array parameter), IN_LIST_BATCH at a
    time elsewhere (SQLite binds one parameter per id)."""
    if on_postgres():
        return [ids] if ids else []
    return [ids[start:start + IN_LIST_BATCH] for start in range(0, len(ids), IN_LIST_BATCH)]


def one_of(column: Any, ids: list[int]) -> Any:
    """`column IN ids` as each database reads it best: `column = ANY(<one integer array>)` on Postgres (a
    100,000-id list is one parameter, not 100,000), an IN list elsewhere."""
    if on_postgres():
        return column == any_(literal(list(ids), ARRAY(Integer)))
    return column.in_(ids)


SCHEDULER_LOCK_WAIT = "2s"


def wait_briefly_for_row_locks() -> None:
    """In the current transaction, give up on a row lock after a moment instead of waiting for it.

    The scheduler's writes touch task rows a worker may hold; a worker paused inside its transaction
    must not stall dispatching for every task. (Postgres only; SQLite has one write lock anyway.)
    """
    if on_postgres():
        db.session.execute(text(f"SET LOCAL lock_timeout = '{SCHEDULER_LOCK_WAIT}'"))


# Postgres only, made by migration b7e2d4f6a9c1 (not by the models: they need the pg_trgm extension, which a
# database may not offer): GIN trigram indexes that answer the task search's `ILIKE '%text%'` from the index
# instead of reading every task (webapp.queries.task_query). Without them the search is the same, slower.
TRIGRAM_INDEXES = ("ix_tasks_name_trgm", "ix_tasks_job_trgm")


def include_in_autogenerate(_object: Any, name: str | None, type_: str, reflected: bool, _compare_to: Any) -> bool:
    """Alembic's include_object: the trigram indexes live in a migration, not in the models, so autogenerate
    (and the test that compares models and migrations) must not read them as indexes to drop."""
    return not (type_ == "index" and reflected and name in TRIGRAM_INDEXES)


def engine_options(uri: str) -> dict[str, Any]:
    """Return SQLAlchemy engine options suited to the database kind."""
    if uri.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}}
    # connect_timeout: an unreachable (blackholed) Postgres fails a request or a readiness check in
    # seconds instead of waiting for the operating system's TCP timeout.
    return {"pool_pre_ping": True, "pool_recycle": 1800, "connect_args": {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS}}


def init_db(app: Flask) -> None:
    """Bind Flask-SQLAlchemy and Flask-Migrate to the app."""
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIRECTORY, render_as_batch=True)


def dispose_after_fork(app: Flask) -> None:
    """Drop pooled connections inherited over fork(): a child must open its own."""
    with app.app_context():
        db.engine.dispose(close=False)
