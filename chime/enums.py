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
    CANCELLED = "CANCELLED"  # an operator cancelled it while queued, or stopped it while running


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


class Role(enum.StrEnum):
    """What a user (and every API token of theirs) may do; each role includes the ones before it."""

    VIEWER = "viewer"  # reads everything
    OPERATOR = "operator"  # runs, retries, cancels, pauses, enables and disables
    ADMIN = "admin"  # edits tasks, channels, users and tokens

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def includes(self, other: Role) -> bool:
        """True when this role may do what `other` may."""
        return self.rank >= other.rank


class Source(enum.StrEnum):
    """Where an audited change came from."""

    ADMIN = "admin"  # a signed-in user in the admin pages
    API = "api"  # a bearer token on the JSON API
    CLI = "cli"  # the command line on the server
    ENGINE = "engine"  # Chime itself (a pause that ended, retention)


class ChannelKind(enum.StrEnum):
    """Where an alert goes."""

    WEBHOOK = "webhook"  # a signed JSON POST (X-Chime-Signature)
    EMAIL = "email"  # a plain-text e-mail over SMTP
    SLACK = "slack"  # a Slack-style incoming webhook (Mattermost and Rocket.Chat accept it too)


class DeliveryStatus(enum.StrEnum):
    """Where one alert's delivery to one channel stands."""

    PENDING = "pending"  # not yet delivered; an attempt is due at next_attempt_at
    DELIVERED = "delivered"  # the channel accepted it
    FAILED = "failed"  # every attempt of its retry budget failed (or the channel is gone)
