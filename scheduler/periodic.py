"""Chime's own periodic jobs -- the reconcile pass and the log-retention prune -- pushed by the dispatcher.

Time is cut into slots of a job's interval, counted from the Unix epoch in UTC, so every scheduler
agrees on them; the dispatcher holding the lock pushes each job once per slot, at the slot's start (or at
its first housekeeping in the slot: at start-up, the current slot runs at once). The slot is in the job
id and in Redis (chime.redis_keys.PERIODIC_KEY), so two schedulers never push one slot twice, and a
job still queued or running from its last slot is not doubled up. Nothing drifts: a slot is a
function of the interval alone, not of when the last run happened.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from redis import Redis

from chime import occurrence as occ
from chime.occurrence import EPOCH, PeriodicJob
from scheduler.reconcile import LOCK_TTL_SECONDS as RECONCILE_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

# The reconcile pass's job, also queued on request (scheduler.reconcile_request); the functions are on
# the worker's allow-list (scheduler.boundary.ENTRY_POINTS).
RECONCILE_FUNC = "scheduler.reconcile.run_reconcile"
RECONCILE_QUEUE = "high"
PRUNE_TIMEOUT_SECONDS = 1800


def periodic_jobs(config: Mapping[str, Any]) -> tuple[PeriodicJob, ...]:
    """The periodic jobs, with their intervals from the app's config."""
    return (
        PeriodicJob("reconcile", RECONCILE_FUNC, RECONCILE_QUEUE,
                    int(config["RECONCILE_INTERVAL_SECONDS"]), RECONCILE_TIMEOUT_SECONDS),
        PeriodicJob("prune-logs", "scheduler.retention.run_prune", "low",
                    int(config["RETENTION_INTERVAL_SECONDS"]), PRUNE_TIMEOUT_SECONDS),
    )


def slot_start_at(interval_seconds: int, now: datetime) -> datetime:
    """The start of the slot `now` (aware) falls in: slots of `interval_seconds` counted from the epoch, UTC."""
    if interval_seconds < 1:
        raise ValueError(f"a periodic job's interval must be at least 1 s, not {interval_seconds}")
    elapsed_seconds = (now - EPOCH) // timedelta(seconds=1)
    return EPOCH + timedelta(seconds=elapsed_seconds - elapsed_seconds % interval_seconds)


def next_due_at(interval_seconds: int, now: datetime) -> datetime:
    """When the next slot after the one `now` falls in starts: the job's next due time."""
    return slot_start_at(interval_seconds, now) + timedelta(seconds=interval_seconds)


def push_due(connection: Redis, jobs: Sequence[PeriodicJob], now: datetime) -> list[str]:
    """Push each job whose current slot is not pushed yet; return the names of those this call pushed."""
    last_slots = occ.periodic_slots(connection)
    pushed = []
    for job in jobs:
        slot = int(slot_start_at(job.interval_seconds, now).timestamp())
        last_slot = last_slots.get(job.name)
        if last_slot is not None and last_slot >= slot:
            continue
        if occ.push_periodic(connection, job, slot, last_slot, now):
            pushed.append(job.name)
            log.debug("Pushed the periodic %s job (every %s s)", job.name, job.interval_seconds)
    return pushed


def remove_legacy_entries(connection: Redis) -> None:
    """Take an earlier Chime's rq-scheduler `repeat` entries of these jobs out of the schedule (once is enough)."""
    removed = occ.remove_legacy_periodic(connection)
    if removed:
        log.info("Removed %s periodic job(s) an earlier Chime kept in rq-scheduler's schedule", removed)
