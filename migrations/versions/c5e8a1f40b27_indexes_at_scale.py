"""indexes at scale (issue 14): the log by status newest first; an execution's notifications and deliveries

Deleting an execution (log retention) makes the database look for the notifications and deliveries that
point at it (ON DELETE SET NULL): without an index on their execution_id each deleted row read both
tables whole.

Revision ID: c5e8a1f40b27
Revises: a9d3c5e7f112
Create Date: 2026-11-30 15:40:00
"""
from alembic import op

revision = "c5e8a1f40b27"
down_revision = "a9d3c5e7f112"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_executions_status_id", "executions", ["status", "id"])
    op.create_index("ix_notifications_execution_id", "notifications", ["execution_id"])
    op.create_index("ix_deliveries_execution_id", "deliveries", ["execution_id"])


def downgrade():
    op.drop_index("ix_deliveries_execution_id", table_name="deliveries")
    op.drop_index("ix_notifications_execution_id", table_name="notifications")
    op.drop_index("ix_executions_status_id", table_name="executions")
