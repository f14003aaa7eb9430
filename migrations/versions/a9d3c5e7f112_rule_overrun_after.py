"""alert rules: a rule's own overrun threshold (alert_rules.overrun_after_seconds; null: the global one)

Revision ID: a9d3c5e7f112
Revises: f2b8c61d9e04
Create Date: 2026-11-30 15:30:00
"""
from alembic import op
import sqlalchemy as sa

revision = "a9d3c5e7f112"
down_revision = "f2b8c61d9e04"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overrun_after_seconds", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_column("overrun_after_seconds")
