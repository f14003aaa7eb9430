"""What the API shows of the execution log: one entry, and the manual run a request queued."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from chime.models import Status, Trigger
from chime.schemas.common import Instant, Sent, Text


class ExecutionRead(Sent):
    """One execution-log entry: one attempt of one occurrence of a task."""

    id: int = Field(ge=1)
    task_id: int | None = Field(ge=1, description="Null once the task is deleted")
    task_name: str
    status: Status
    attempt: int = Field(ge=1)
    trigger: Trigger
    scheduled_for: Instant
    started_at: Instant | None
    finished_at: Instant | None
    duration_ms: int | None = Field(ge=0)
    message: Text
    result: Any = Field(description="The job's JSON result, if it returned one", json_schema_extra={"nullable": True})
    worker: str | None
    job_id: str | None
    retry_at: Instant | None
    created_at: Instant = Field(description="When the entry was recorded (the since/until filters apply to it)")


class RunResult(Sent):
    """A manual run queued by POST /api/tasks/{task_id}/run/."""

    job_id: str
    task_id: int = Field(ge=1)
    trigger: Literal[Trigger.MANUAL]
