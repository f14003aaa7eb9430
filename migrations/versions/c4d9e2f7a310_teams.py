"""teams: user roles, tokens owned by users, the audit trail, paused tasks, tracebacks and per-run arguments

Revision ID: c4d9e2f7a310
Revises: e3a5f1c8d207
Create Date: 2026-11-30 12:20:00

Users who existed before roles keep what they could do (admin); users made afterwards start as
viewers. Tokens made before tokens had owners are given to the oldest user, if there is one.
"""
from alembic import op
import sqlalchemy as sa

revision = "c4d9e2f7a310"
down_revision = "e3a5f1c8d207"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=16), server_default="admin", nullable=False))
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("role", server_default="viewer", existing_type=sa.String(length=16))

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_api_tokens_user_id", ["user_id"], unique=False)
        batch_op.create_foreign_key("fk_api_tokens_user_id_users", "users", ["user_id"], ["id"], ondelete="CASCADE")
    op.execute("UPDATE api_tokens SET user_id = (SELECT MIN(id) FROM users)")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("paused_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_tasks_resume_at", ["resume_at"], unique=False)

    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceback", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("args", sa.JSON(), nullable=True))

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("object_name", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_audit_events_actor_id", ["actor_id"], unique=False)
        batch_op.create_index("ix_audit_events_action", ["action"], unique=False)
        batch_op.create_index("ix_audit_events_object", ["object_type", "object_id", "id"], unique=False)


def downgrade():
    op.drop_table("audit_events")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_column("args")
        batch_op.drop_column("traceback")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_resume_at")
        batch_op.drop_column("resume_at")
        batch_op.drop_column("paused_at")
        batch_op.drop_column("paused_by")
        batch_op.drop_column("paused_reason")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint("fk_api_tokens_user_id_users", type_="foreignkey")
        batch_op.drop_index("ix_api_tokens_user_id")
        batch_op.drop_column("user_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("role")
