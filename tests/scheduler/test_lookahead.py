"""The scheduler's look-ahead: occurrences due a moment later are planned in the pass that reads the database,
and each is then moved by one script at its due instant -- unless anything changed in between, which sends
it back to an ordinary pass that decides afresh. Time is passed in (`now`), never waited for."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event

from chime import occurrence as occ
from chime import services
from chime.extensions import db
from chime.models import Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.dispatch import ChimeScheduler
from tests.engine.helpers import create, executions


def whole_second_after(seconds: float) -> datetime:
    return (utcnow() + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)


def planned_ahead(app: Any, start: datetime) -> ChimeScheduler:
    """A scheduler whose last pass, a moment before `start`, planned what falls due then."""
    scheduler = ChimeScheduler(app.extensions["redis"], app)
    scheduler.dispatch_due(start - timedelta(seconds=0.2), lookahead_seconds=1.0)
    return scheduler


def at(instant: datetime, seconds: float = 0.01) -> float:
    return (instant + timedelta(seconds=seconds)).timestamp()


def queued(connection: Any, queue: str = "default") -> list[str]:
    return [j.decode() for j in connection.lrange(f"rq:queue:{queue}", 0, -1)]


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def update(task_id: int, **fields: Any) -> None:
    with unit_of_work():
        services.update_task(services.get_task(task_id), fields, partial=True, allow_shell=False)
    db.session.rollback()


def test_an_occurrence_planned_ahead_is_moved_at_its_due_instant_without_reading_the_database(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    assert queued(connection) == []

    with counted_statements() as statements:
        all_done = scheduler.follow_plan(at(start))

    assert all_done and statements == []
    assert queued(connection) == [occ.occurrence_job_id(task_id, start, 1, "SCHEDULE")]
    assert occ.pending_job_id(connection, task_id) == occ.occurrence_job_id(
        task_id, start + timedelta(seconds=60), 1, "SCHEDULE")
    assert scheduler.unsaved_next_run_at == {task_id: start + timedelta(seconds=60)}


def test_nothing_planned_is_moved_before_its_due_instant(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)

    assert scheduler.follow_plan(at(start, -0.05)) is False
    assert queued(connection) == []


def test_a_task_edited_after_the_plan_runs_as_edited(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    update(task_id, queue="high")

    assert scheduler.follow_plan(at(start)) is False
    assert queued(connection) == [] and queued(connection, "high") == []
    scheduler.dispatch_due(start + timedelta(seconds=0.01))
    assert queued(connection) == [] and len(queued(connection, "high")) == 1


def test_an_edit_whose_wake_up_another_scheduler_took_is_still_seen_by_the_task_version(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    update(task_id, queue="high")
    connection.delete(occ.WAKEUP_KEY)  # a standby scheduler's BLPOP took it

    assert scheduler.follow_plan(at(start)) is False
    assert queued(connection) == [] and queued(connection, "high") == []


def test_a_change_to_any_task_sends_the_whole_plan_back_to_the_database(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    create(name="another", interval_seconds=3600)  # pushes the wake-up list

    assert scheduler.follow_plan(at(start)) is False
    assert queued(connection) == [] and scheduler.planned == {}
    scheduler.dispatch_due(start + timedelta(seconds=0.01))
    assert len(queued(connection)) == 1


def test_a_task_that_became_busy_after_the_plan_has_its_occurrence_skipped_not_pushed(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="solo", interval_seconds=60, overlap="SKIP", start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    manual = services.run_task_now(db.session.get(Task, task_id))  # in flight from now on
    db.session.rollback()
    connection.delete(occ.WAKEUP_KEY)  # only the in-flight marker tells

    assert scheduler.follow_plan(at(start)) is False
    scheduler.dispatch_due(start + timedelta(seconds=0.01))

    assert queued(connection) == [manual]
    assert [(e.status, e.scheduled_for) for e in executions(task_id)] == [("SKIPPED", start)]


def test_a_planned_move_found_late_past_the_tasks_grace_is_recorded_missed_not_pushed(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="strict", interval_seconds=60, misfire_grace_seconds=1, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)

    assert scheduler.follow_plan(at(start, 5)) is False  # the scheduler was frozen for 5 s
    scheduler.dispatch_due(start + timedelta(seconds=5))

    assert queued(connection) == []
    assert [e.status for e in executions(task_id)] == ["SKIPPED"]


def test_an_occurrence_another_scheduler_moved_meanwhile_is_not_pushed_twice(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    scheduler = planned_ahead(app, start)
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.01))  # took over meanwhile

    assert scheduler.follow_plan(at(start)) is False
    assert len(queued(connection)) == 1
