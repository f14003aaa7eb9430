"""What the API shows of notifications."""
from __future__ import annotations

from pydantic import Field

from chime.models import Level
from chime.schemas.common import Instant, Sent, Text


class NotificationRead(Sent):
    id: int = Field(ge=1)
    task_id: int | None = Field(ge=1)
    execution_id: int | None = Field(ge=1)
    level: Level
    title: str
    message: Text
    read: bool
    created_at: Instant
    count: int = Field(ge=1, description="How many times it happened: repeats of the same task, level and title "
                                            "within the grouping window update one unread notification")
    last_at: Instant | None = Field(description="When it last happened (null: only once, at created_at)")


class ReadAllResult(Sent):
    marked_read: int = Field(ge=0, description="How many notifications were unread")
