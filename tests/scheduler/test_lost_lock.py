"""A scheduler that lost its lock moves nothing: a stall longer than the lock's life (a GC or VM pause,
SIGSTOP) lets a standby take over, and what the stalled one read or planned before must not be pushed."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from chime.redis_keys import SCHEDULER_LOCK_KEY
from scheduler.dispatch import ChimeScheduler
from tests.engine.helpers import create
from tests.scheduler.test_lookahead import at, planned_ahead, queued, whole_second_after


def holding_the_lock(scheduler: ChimeScheduler) -> ChimeScheduler:
    scheduler.active = scheduler.lock.acquire_or_extend()
    assert scheduler.active
    return scheduler


def test_a_planned_move_is_not_made_once_a_standby_holds_the_lock(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = holding_the_lock(planned_ahead(app, start))
    connection.set(SCHEDULER_LOCK_KEY, "the-standby", px=5000)  # our lock expired; the standby took it

    scheduler.follow_plan(at(start))

    assert queued(connection) == []


def test_a_due_occurrence_is_not_moved_once_a_standby_holds_the_lock(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = holding_the_lock(ChimeScheduler(connection, app))
    connection.set(SCHEDULER_LOCK_KEY, "the-standby", px=5000)

    scheduler.dispatch_due(start + timedelta(seconds=0.1))

    assert queued(connection) == []


def test_the_lock_holder_moves_what_is_due(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = holding_the_lock(ChimeScheduler(connection, app))

    scheduler.dispatch_due(start + timedelta(seconds=0.1))

    assert len(queued(connection)) == 1
