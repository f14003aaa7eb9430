"""indexes for the task list at scale (issue 14): its order by name, and the task search on Postgres

The admin lists tasks by lower(name), id: an index on that expression gives the order without sorting
every task for each page. On Postgres, GIN trigram indexes (pg_trgm) on tasks.name and tasks.job answer
the task search's ILIKE '%text%' without reading every task; where the extension cannot be created (or
used) they are left out, with a warning, and the search reads the table as before. autogenerate leaves
them alone (chime.database.TRIGRAM_INDEXES, migrations/env.py).

Revision ID: b7e2d4f6a9c1
Revises: c5e8a1f40b27
Create Date: 2026-11-30 21:40:00
"""
import logging

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "b7e2d4f6a9c1"
down_revision = "c5e8a1f40b27"
branch_labels = None
depends_on = None

TRIGRAM_INDEXES = {"ix_tasks_name_trgm": ("tasks", "name"), "ix_tasks_job_trgm": ("tasks", "job")}


def upgrade():
    op.create_index("ix_tasks_lower_name_id", "tasks", [sa.text("lower(name)"), "id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not create_trigram_indexes(bind):
        logging.getLogger("alembic").warning(
            "pg_trgm cannot be created or used by this role: the task search will read every task "
            "(README: Task search at scale)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_tasks_lower_name_id", table_name="tasks")


def create_trigram_indexes(connection):
    """Create TRIGRAM_INDEXES, with the pg_trgm extension (in `public` where it can go, else in the current
    schema) unless it is there already; False, changing nothing, where that cannot be done. Each attempt is
    a savepoint: a refusal does not abort the migration's transaction. (bench/api_scale.py calls this too.)"""
    schema = _trigram_schema(connection)
    for statement in ("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public", "CREATE EXTENSION IF NOT EXISTS pg_trgm"):
        if schema is not None:
            break
        _try(connection, [statement])  # refused: no such extension, no right, no schema public, a concurrent CREATE
        schema = _trigram_schema(connection)
    if schema is None:
        return False
    return _try(connection, [f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} {schema}.gin_trgm_ops)"
                             for name, (table, column) in TRIGRAM_INDEXES.items()])


def _try(connection, statements):
    try:
        with connection.begin_nested():
            for statement in statements:
                connection.exec_driver_sql(statement)
    except DBAPIError:
        return False
    return True


def _trigram_schema(connection):
    """The schema pg_trgm is installed in (quoted where it needs to be), or None."""
    return connection.exec_driver_sql(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'").scalar()
