"""ids are never reused: AUTOINCREMENT for tasks and executions on SQLite

A job queued for a deleted task must not run the task that takes its id, and a liveness key or
notification that names an execution must not name a later one. Postgres sequences never hand an
id out twice; SQLite does (max(rowid) + 1) unless the table is declared AUTOINCREMENT, which needs
the table rebuilt. Postgres: nothing to do.

Revision ID: b7e4d2a91c05
Revises: 6cac19c0e488
Create Date: 2026-11-30 06:10:00
"""
from alembic import op

revision = "b7e4d2a91c05"
down_revision = "6cac19c0e488"
branch_labels = None
depends_on = None

TABLES = ("tasks", "executions")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always",
                                  table_kwargs={"sqlite_autoincrement": autoincrement}) as batch:
            pass


def upgrade():
    _rebuild(True)


def downgrade():
    _rebuild(False)
