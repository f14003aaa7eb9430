"""What the API shows of the execution log: one entry, and the manual run a request queued."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from chime import audit
from chime.errors import ValidationError
from chime.lifecycle import MAX_TRACEBACK_CHARS
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
    args: dict[str, Any] | None = Field(
        description="The arguments this run was given instead of its task's (a run now with arguments, and "
                    "its retries); null: the task's own; secrets masked below the admin role",
        json_schema_extra={"nullable": True})

    @field_serializer("args")
    def _shown_args(self, args: dict[str, Any] | None) -> dict[str, Any] | None:
        return audit.shown_args(args)


class ExecutionDetail(ExecutionRead):
    """One execution-log entry with its traceback (GET /api/logs/{execution_id}/; lists leave it out)."""

    traceback: str | None = Field(
        description=f"A failed run's traceback (the job raised or timed out), from the job's own frames; at most "
                    f"{MAX_TRACEBACK_CHARS} characters: a longer one keeps its end after a line saying it was cut",
        json_schema_extra={"nullable": True})


class RunResult(Sent):
    """A manual run queued by POST /api/tasks/{task_id}/run/."""

    job_id: str
    task_id: int = Field(ge=1)
    trigger: Literal[Trigger.MANUAL]


class RunInput(BaseModel):
    """The optional body of POST /api/tasks/{task_id}/run/: arguments for this run only."""

    model_config = ConfigDict(extra="forbid")

    args: dict[str, Any] | None = Field(
        None, description="Arguments for this run (and its retries) instead of the task's own, checked against "
                          "its job's parameters as the task's are; the task keeps its own. Absent or null: the task's")


class RetryResult(Sent):
    """A new attempt of a failed run's occurrence, queued by POST /api/logs/{execution_id}/retry/."""

    job_id: str
    execution_id: int = Field(ge=1, description="The failed run that is retried")
    task_id: int = Field(ge=1)
    attempt: int = Field(ge=2, description="The new attempt's number: the failed run's + 1")
    trigger: Literal[Trigger.RETRY]


def run_input_args(body: Any) -> dict[str, Any] | None:
    """The arguments a run request's body overrides (None: the task's own); ValidationError names bad fields.
    Only the body's shape is checked here: the arguments themselves are checked against the task's job."""
    if not isinstance(body, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    unknown = {str(key)[:100]: "unknown field" for key in body if key != "args"}
    if unknown:
        raise ValidationError(unknown)
    return body.get("args")
