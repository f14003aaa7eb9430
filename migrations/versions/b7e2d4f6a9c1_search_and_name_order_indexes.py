"""indexes for the task list at scale (issue 14): its order by name, and the task search on Postgres

The admin lists tasks by lower(name), id: an index on that expression gives the order without sorting
every task for each page. On Postgres, GIN trigram indexes (pg_trgm) on tasks.name and tasks.job answer
the task search's ILIKE '%text%' without reading every task; where the extension cannot be created they
are left out, with a warning, and the search reads the table as before (chime.database.TRIGRAM_INDEXES).

Revision ID: b7e2d4f6a9c1
Revises: c5e8a1f40b27
Create Date: 2026-11-30 21:40:00
"""
import logging

import sqlalchemy as sa
from alembic import op

from chime.database import TRIGRAM_INDEXES, create_trigram_indexes

revision = "b7e2d4f6a9c1"
down_revision = "c5e8a1f40b27"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tasks_lower_name_id", "tasks", [sa.text("lower(name)"), "id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and not create_trigram_indexes(bind):
        logging.getLogger("alembic").warning(
            "pg_trgm is not available to this role: the task search will read every task (no trigram index)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_tasks_lower_name_id", table_name="tasks")
