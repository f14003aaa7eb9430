"""What /api/stats/ and the dashboard show: counts, the next runs and the engine's state."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chime.schemas.common import Instant, Sent

NEXT_RUNS_COUNT = 10

Count = Annotated[int, Field(ge=0)]
CountByStatus = Annotated[dict[str, Count], Field(description="Count per status (statuses with none are left out)")]


class TaskCounts(Sent):
    total: Count
    enabled: Count
    by_status: CountByStatus


class ExecutionCounts(Sent):
    total: Count
    by_status: CountByStatus
    last_24h: Count = Field(description="Executions created in the last 24 hours")


class NextRun(Sent):
    task_id: int = Field(ge=1)
    name: str
    next_run_at: Instant


class Workers(Sent):
    count: Count | None
    names: list[str]


class SchedulerState(Sent):
    alive: bool
    last_heartbeat: Instant | None


class ReconcilerState(Sent):
    last_run_at: Instant | None = Field(description="When the last reconcile pass finished")
    last_report: dict[str, Any] | None


class NotificationCounts(Sent):
    unread: Count


class Stats(Sent):
    """Counts, next runs and engine state; the parts read from Redis are null (or empty) while it is down."""

    tasks: TaskCounts
    executions: ExecutionCounts
    next_runs: list[NextRun] = Field(max_length=NEXT_RUNS_COUNT, description="The soonest enabled runs, soonest first")
    queues: dict[str, Count] | None = Field(description="Jobs waiting per queue; null when Redis is down")
    workers: Workers
    scheduler: SchedulerState
    reconciler: ReconcilerState
    notifications: NotificationCounts
