"""What one reconcile pass reports (scheduler.reconcile writes it; the API and the dashboard show it)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chime.schemas.common import Instant, Sent

Count = Annotated[int, Field(ge=0)]


class ReconcileCounts(Sent):
    """What the pass checked and repaired, one count per kind."""

    tasks_checked: Count
    pending_restored: Count
    missed_restored: Count
    one_time_recovered: Count
    stale_replaced: Count
    orphans_removed: Count
    executions_lost: Count
    retries_enqueued: Count


class ReconcileReport(ReconcileCounts):
    """What one reconcile pass found and repaired."""

    started_at: Instant
    finished_at: Instant
    duration_ms: Count


class ReconcileSkipped(Sent):
    """A pass that did not run: another one held the reconciler's lock."""

    skipped: Literal[True]
    reason: str


class ReconcileRequest(Sent):
    """Where a reconcile pass asked for through the API stands (GET its `location` until it has ended)."""

    id: str = Field(description="The pass's RQ job id (the same while one is queued or running)")
    status: Literal["queued", "running", "finished", "failed"]
    location: str = Field(json_schema_extra={"format": "uri-reference"},
                          description="Where to read this pass: GET it until `status` is finished or failed")
    report: ReconcileReport | ReconcileSkipped | None = Field(
        description="The pass's report once finished (a skipped pass says why), else null")
    error: str | None = Field(description="Why the pass failed, when it did, else null")
