"""Database models: Task, Execution, Notification, User, ApiToken, AuditEvent, Channel, Delivery, DeliveryAttempt,
AlertRule, AlertOutbox, AlertState, Setting."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Enum, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from chime import redis_keys
from chime.enums import ChannelKind, DeliveryStatus, Level, NotifyPolicy, Overlap, Role, ScheduleType, Source, Status, Trigger  # noqa: F401 (re-exported)
from chime.extensions import db
from chime.timeutil import as_utc, utcnow


class UTCDateTime(TypeDecorator):
    """Store instants as UTC and always read them back aware (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        value = as_utc(value)
        if value is not None and dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value)


FINAL_STATUSES = (Status.SUCCESS, Status.FAILED, Status.SKIPPED, Status.CANCELLED)


QUEUE_NAMES = redis_keys.QUEUE_NAMES  # a task runs on one of the RQ queues Chime's workers listen on


def enum_column(kind: type[enum.StrEnum], length: int) -> Enum:
    """A column of an enum, stored as its values in a VARCHAR(length) (no native type, no CHECK):
    the strings stored before the columns were typed read back as members, unchanged."""
    return Enum(kind, native_enum=False, length=length, values_callable=lambda members: [m.value for m in members])

task_dependencies = Table(
    "task_dependencies",
    db.metadata,
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", ForeignKey("tasks.id", ondelete="RESTRICT"), primary_key=True),
)


class Task(db.Model):
    __tablename__ = "tasks"
    # AUTOINCREMENT: SQLite never hands a deleted task's id to a new task (Postgres never does),
    # so a job queued for a deleted task cannot run the task that would have taken its id.
    __table_args__ = (
        Index("ix_tasks_lower_name_id", text("lower(name)"), "id"),  # the admin's task list, by name
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    job: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedule_type: Mapped[ScheduleType] = mapped_column(enum_column(ScheduleType, 16))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str | None] = mapped_column(String(200))
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(default=True, index=True)
    max_retries: Mapped[int] = mapped_column(default=3)
    retry_backoff_seconds: Mapped[int] = mapped_column(default=60)
    timeout_seconds: Mapped[int] = mapped_column(default=300)
    overlap: Mapped[Overlap] = mapped_column(enum_column(Overlap, 8), default=Overlap.SKIP)
    misfire_grace_seconds: Mapped[int] = mapped_column(default=300)
    queue: Mapped[str] = mapped_column(String(16), default="default")
    notify: Mapped[NotifyPolicy] = mapped_column(enum_column(NotifyPolicy, 16), default=NotifyPolicy.ALWAYS)
    status: Mapped[Status] = mapped_column(enum_column(Status, 16), default=Status.PENDING, index=True)
    last_status: Mapped[Status | None] = mapped_column(enum_column(Status, 16))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a person last changed the definition (services set it); the engine's own writes
    # (status, last_run_at, next_run_at) leave it alone.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A paused task is disabled with a reason; it resumes by itself at resume_at when that is set.
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_by: Mapped[str | None] = mapped_column(String(100))
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Alerts of this task are muted (suppressed and counted) until then (chime.rules).
    alerts_muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    parents: Mapped[list[Task]] = relationship(
        secondary=task_dependencies,
        primaryjoin=lambda: Task.id == task_dependencies.c.task_id,
        secondaryjoin=lambda: Task.id == task_dependencies.c.parent_id,
        back_populates="children",
        order_by=lambda: Task.id,
    )
    children: Mapped[list[Task]] = relationship(
        secondary=task_dependencies,
        primaryjoin=lambda: Task.id == task_dependencies.c.parent_id,
        secondaryjoin=lambda: Task.id == task_dependencies.c.task_id,
        back_populates="parents",
        order_by=lambda: Task.id,
    )

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.name!r}>"


class Execution(db.Model):
    """One run of one attempt of one occurrence of a task: the execution log."""

    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("task_id", "scheduled_for", "attempt", name="uq_executions_occurrence"),
        Index("ix_executions_task_id_id", "task_id", "id"),
        Index("ix_executions_status_created_at", "status", "created_at"),
        Index("ix_executions_status_id", "status", "id"),  # the log by status, newest first
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    task_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[Status] = mapped_column(enum_column(Status, 16))
    attempt: Mapped[int] = mapped_column(default=1)
    trigger: Mapped[Trigger] = mapped_column(enum_column(Trigger, 16))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(200), index=True)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    traceback: Mapped[str | None] = mapped_column(Text)  # of a failed run, bounded in size
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # arguments overridden for this run only

    task: Mapped[Task | None] = relationship()


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_read_id", "read", "id"),
        Index("ix_notifications_execution_id", "execution_id"),  # deleting an execution looks its notifications up
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    execution_id: Mapped[int | None] = mapped_column(ForeignKey("executions.id", ondelete="SET NULL"))
    level: Mapped[Level] = mapped_column(enum_column(Level, 16))
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text, default="")
    read: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # The bell groups repeats: an unread notification of the same task, level and title within the window
    # is updated (count + 1, the latest message and time) instead of a new row (services.add_notification).
    count: Mapped[int] = mapped_column(default=1, server_default="1")
    last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A disabled user cannot sign in, and the cookies signed in before are refused.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Stored in the session at sign-in; bumped on sign-out, password change and disabling, so
    # every cookie issued before (a copied or replayed one too) stops working at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    role: Mapped[Role] = mapped_column(enum_column(Role, 16), default=Role.VIEWER, server_default=Role.VIEWER.value)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # written once per sign-in


class ApiToken(db.Model):
    """An API token; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The user whose role the token carries (tokens made before users owned tokens have none: admin).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)

    user: Mapped[User | None] = relationship()


class AuditEvent(db.Model):
    """One change to a task, channel, user or token, or one operator action: who, when, from where,
    and for edits the fields before and after (secrets masked by chime.audit)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_object", "object_type", "object_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_name: Mapped[str] = mapped_column(String(200))  # kept when the user is deleted
    source: Mapped[Source] = mapped_column(enum_column(Source, 16))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(200), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Channel(db.Model):
    """Where alerts go: a webhook, an e-mail address list or a Slack-style incoming webhook.

    `config` holds the settings that may be shown; `secrets` the Fernet-encrypted JSON of the ones that
    may not (a webhook's signing secret, an SMTP password, a Slack URL that embeds its token), read only
    by chime.channel_secrets and never sent back by the API or the admin."""

    __tablename__ = "channels"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[ChannelKind] = mapped_column(enum_column(ChannelKind, 16))
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets: Mapped[str | None] = mapped_column(Text)  # Fernet token of the secret settings' JSON
    secret_names: Mapped[list[str]] = mapped_column(JSON, default=list)  # which secrets are set (never values)
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Channel {self.id} {self.name!r}>"


class Delivery(db.Model):
    """One alert (an event) to one channel: delivered once, retried with backoff until its budget ends.

    `delivery_id` is sent as X-Chime-Delivery and stays the same on every attempt, so a receiver can
    drop a duplicate. The channel's name is kept when the channel is deleted."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_deliveries_channel_id_id", "channel_id", "id"),
        Index("ix_deliveries_execution_id", "execution_id"),  # deleting an execution looks its deliveries up
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    channel_name: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(40))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"), index=True)
    execution_id: Mapped[int | None] = mapped_column(ForeignKey("executions.id", ondelete="SET NULL"))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus, 16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer)  # the last HTTP status or SMTP reply code
    error: Mapped[str | None] = mapped_column(Text)  # the last failure, bounded, never a secret
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the event as sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    channel: Mapped[Channel | None] = relationship()
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        order_by=lambda: DeliveryAttempt.id, lazy="selectin", cascade="all, delete-orphan", passive_deletes=True)


class DeliveryAttempt(db.Model):
    """One attempt of a delivery: when, its outcome, the HTTP status or SMTP reply, the error."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column()
    response_status: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(String(500))  # the SMTP reply text, bounded
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)


class AlertRule(db.Model):
    """Which events of a task go to which channels (chime.rules). task_id NULL: the default rule, for every
    task without a rule of its own, and for the engine's events."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    channel_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    failing_threshold: Mapped[int] = mapped_column(default=3, server_default="3")  # N of `failing`
    repeat_every_hours: Mapped[float | None] = mapped_column()  # None: a failing task alerts once
    group_window_seconds: Mapped[int] = mapped_column(default=600, server_default="600")
    overrun_after_seconds: Mapped[int | None] = mapped_column(Integer)  # None: the global overrun threshold
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AlertOutbox(db.Model):
    """Something that may deserve an alert, written in the transaction that made it (a run's record, an
    engine event); the alerts worker evaluates the rules and deletes it with the deliveries it makes."""

    __tablename__ = "alert_outbox"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: a deleted task's alert still goes
    execution_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str | None] = mapped_column(String(16))  # a run's final status (the event is derived)
    event: Mapped[str | None] = mapped_column(String(40))  # an explicit event (chime.rules.emit)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertState(db.Model):
    """Noise control of one rule, task and event: when it last went out, what the window holds back."""

    __tablename__ = "alert_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)  # "<rule id>:<task id or ->:<event>"
    rule_id: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pending_count: Mapped[int] = mapped_column(default=0)  # grouped, sent as "N more" when the window ends
    pending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    suppressed_count: Mapped[int] = mapped_column(default=0)  # held back by a mute or maintenance
    last_payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Setting(db.Model):
    """One switch stored in the database (e.g. `alerts.maintenance`)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
