"""What one reconcile pass reports (scheduler.reconcile writes it; the API and the dashboard show it)."""
from __future__ import annotations

from typing import Annotated

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
