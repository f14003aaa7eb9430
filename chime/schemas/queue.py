"""What the API shows of the RQ queues (the jobs waiting on each) and of the workers."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chime.schemas.common import Instant, Sent

Count = Annotated[int, Field(ge=0)]


class QueueRead(Sent):
    """One RQ queue Chime's workers listen on, and how many jobs wait on it."""

    name: str
    count: Count = Field(description="Jobs waiting on the queue")


class QueuedJobRead(Sent):
    """One job waiting on a queue; for an occurrence of a task, its task and occurrence (from the job id)."""

    job_id: str
    queue: str
    position: int = Field(ge=1, description="1 is the next job a worker takes from this queue")
    kind: Literal["occurrence", "periodic", "other"] = Field(
        description="A task's occurrence, one of Chime's periodic jobs (reconcile, retention), or a foreign job")
    task_id: int | None = Field(ge=1, description="The task (occurrences only)")
    task_name: str | None = Field(description="The task's name; null when it is not an occurrence or is deleted")
    scheduled_for: Instant | None = Field(description="The occurrence's scheduled time")
    attempt: int | None = Field(ge=1)
    trigger: str | None = Field(description="SCHEDULE, MANUAL, RETRY or RECOVERY (occurrences only)")
    enqueued_at: Instant | None
    description: str | None


class WorkerRead(Sent):
    """One RQ worker registered in Redis, as RQ keeps it, with the run it is busy with."""

    name: str
    state: str = Field(description="busy, idle, suspended (RQ's words; `started` while it starts up)")
    hostname: str | None
    pid: int | None
    queues: list[str]
    birth: Instant | None = Field(description="When the worker started")
    last_heartbeat: Instant | None
    successful_job_count: Count
    failed_job_count: Count
    total_working_seconds: float = Field(ge=0)
    current_job_id: str | None
    current_job_started_at: Instant | None
    current_execution_id: int | None = Field(ge=1, description="The run of a task the worker is running")
    current_task_id: int | None = Field(ge=1)
    current_task_name: str | None
