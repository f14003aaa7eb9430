"""users: active flag and session generation, so sign-out and disabling revoke cookies

Revision ID: e3a5f1c8d207
Revises: b7e4d2a91c05
Create Date: 2026-11-30 06:20:00
"""
from alembic import op
import sqlalchemy as sa

revision = "e3a5f1c8d207"
down_revision = "b7e4d2a91c05"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
        batch_op.drop_column("active")
