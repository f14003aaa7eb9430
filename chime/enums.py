"""The enums of Chime's domain, with no dependencies: the models, the schemas and the pure schedule
maths (chime.triggers, chime.policy) share them. StrEnums: each member is the string stored and sent."""
from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Status of a task (its latest run) and of one execution."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    SKIPPED = "SKIPPED"


class ScheduleType(enum.StrEnum):
    ONE_TIME = "ONE_TIME"
    CRON = "CRON"
    INTERVAL = "INTERVAL"


class Trigger(enum.StrEnum):
    """Why an execution happened."""

    SCHEDULE = "SCHEDULE"
    MANUAL = "MANUAL"
    RETRY = "RETRY"
    RECOVERY = "RECOVERY"


class Overlap(enum.StrEnum):
    SKIP = "SKIP"
    ALLOW = "ALLOW"


class NotifyPolicy(enum.StrEnum):
    ALWAYS = "ALWAYS"
    ON_FAILURE = "ON_FAILURE"
    NEVER = "NEVER"


class Level(enum.StrEnum):
    """Notification level."""

    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
