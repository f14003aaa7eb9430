"""One watchdog pass against the database (SQLite and Postgres) and the private Redis: what it emits
through chime.rules (outbox rows), and that each event goes out once per episode, across passes."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from chime import occurrence as occ
from chime import watchdog
from chime.enums import Status, Trigger
from chime.extensions import db
from chime.models import AlertOutbox, Execution, Setting, Task
from chime.redis_keys import queue_key
from chime.timeutil import isoformat, utcnow
from chime.unit_of_work import unit_of_work
from scheduler import watchdog as edge
from tests.engine.helpers import create

ALIVE = watchdog.Observation("ok", task_workers=1)


def outbox() -> list[tuple[str, int | None]]:
    rows = db.session.scalars(select(AlertOutbox).where(AlertOutbox.status.is_(None)).order_by(AlertOutbox.id)).all()
    found = [(row.event, row.task_id) for row in rows]
    db.session.rollback()
    return found


def overdue(task_id: int, seconds: float) -> Any:
    """Set the task's next occurrence `seconds` in the past, as a dead scheduler leaves it."""
    at = (utcnow() - timedelta(seconds=seconds)).replace(microsecond=0)
    with unit_of_work():
        db.session.execute(update(Task).where(Task.id == task_id).values(next_run_at=at))
    return at


def run_of(task_id: int, scheduled_for: Any, status: Status, started_seconds_ago: float = 0) -> None:
    with unit_of_work():
        db.session.add(Execution(task_id=task_id, task_name="t", status=status, trigger=Trigger.SCHEDULE,
                                 scheduled_for=scheduled_for,
                                 started_at=utcnow() - timedelta(seconds=started_seconds_ago)))


def test_a_task_whose_run_was_due_past_its_grace_and_never_started_is_missed_once(app: Any) -> None:
    task_id = create(name="hourly", interval_seconds=3600, misfire_grace_seconds=10)
    overdue(task_id, 60)

    assert watchdog.watch(ALIVE, utcnow()) == ["missed"]
    assert watchdog.watch(ALIVE, utcnow()) == []

    assert outbox() == [("missed", task_id)]
    row = db.session.scalars(select(AlertOutbox)).one()
    assert row.details["grace_seconds"] == 10 and row.details["where"] == "schedule"
    assert "had not started" in row.details["message"]


def test_two_occurrences_of_one_task_that_never_started_are_each_missed_once_over_many_passes(app: Any) -> None:
    task_id = create(name="every minute", interval_seconds=60, misfire_grace_seconds=10)
    scheduled = overdue(task_id, 60)  # in the schedule, never dispatched
    queued = [watchdog.Due(task_id, scheduled - timedelta(seconds=60), 10, "queue")]  # dispatched, never taken
    busy = watchdog.Observation("ok", task_workers=1, queued=queued)

    assert watchdog.watch(busy, utcnow()) == ["missed", "missed"]
    for _ in range(3):
        assert watchdog.watch(busy, utcnow()) == []
    assert outbox() == [("missed", task_id), ("missed", task_id)]


def test_absences_saved_before_a_full_stop_raise_nothing_when_everything_starts_together(app: Any) -> None:
    an_hour_ago = isoformat(utcnow() - timedelta(hours=1))
    with unit_of_work():
        db.session.add(Setting(key=watchdog.SCHEDULER_KEY,
                               value={"down": False, "missing_since": an_hour_ago, "seen_at": an_hour_ago}))
        db.session.add(Setting(key=watchdog.WORKERS_KEY,
                               value={"down": False, "none_since": an_hour_ago, "seen_at": an_hour_ago}))
    starting = watchdog.Observation("missing", task_workers=0)

    assert watchdog.watch(starting, utcnow()) == []
    assert watchdog.watch(ALIVE, utcnow()) == []
    assert outbox() == []


def test_a_task_still_within_its_grace_or_whose_run_was_recorded_is_not_missed(app: Any) -> None:
    waiting = create(name="within grace", interval_seconds=3600, misfire_grace_seconds=300)
    overdue(waiting, 60)
    recorded = create(name="ran", interval_seconds=3600, misfire_grace_seconds=10)
    run_of(recorded, overdue(recorded, 60), Status.SUCCESS)

    assert watchdog.watch(ALIVE, utcnow()) == []
    assert outbox() == []


def test_a_disabled_task_misses_nothing(app: Any) -> None:
    task_id = create(name="off", interval_seconds=3600, misfire_grace_seconds=10, enabled=False)
    overdue(task_id, 60)
    assert watchdog.watch(ALIVE, utcnow()) == []


def test_a_dead_scheduler_is_scheduler_down_once_per_episode(app: Any) -> None:
    dead = watchdog.Observation("stale", task_workers=1)
    assert watchdog.watch(dead, utcnow()) == ["scheduler_down"]
    assert watchdog.watch(dead, utcnow()) == []
    assert watchdog.watch(ALIVE, utcnow()) == ["scheduler_up"]
    assert watchdog.watch(ALIVE, utcnow()) == []
    assert watchdog.watch(dead, utcnow()) == ["scheduler_down"]
    assert outbox() == [("scheduler_down", None), ("scheduler_up", None), ("scheduler_down", None)]
    down, up, _ = db.session.scalars(select(AlertOutbox).order_by(AlertOutbox.id)).all()
    assert down.details["title"] == "The scheduler is down" and down.details["resolved"] is False
    assert up.details["title"] == "The scheduler is back" and up.details["resolved"] is True


def test_no_task_worker_past_the_grace_is_no_workers_once(app: Any) -> None:
    app.config["WATCHDOG_NO_WORKERS_SECONDS"] = 0
    empty = watchdog.Observation("ok", task_workers=0)
    assert watchdog.watch(empty, utcnow()) == ["no_workers"]
    assert watchdog.watch(empty, utcnow()) == []
    assert watchdog.watch(ALIVE, utcnow()) == ["workers_back"]
    assert outbox() == [("no_workers", None), ("workers_back", None)]


def test_a_run_still_running_past_its_timeout_is_overrun_once(app: Any) -> None:
    task_id = create(name="slow", interval_seconds=3600, timeout_seconds=60)
    run_of(task_id, utcnow(), Status.RUNNING, started_seconds_ago=61)
    other = create(name="quick", interval_seconds=3600, timeout_seconds=60)
    run_of(other, utcnow(), Status.RUNNING, started_seconds_ago=30)

    assert watchdog.watch(ALIVE, utcnow()) == ["overrun"]
    assert watchdog.watch(ALIVE, utcnow()) == []
    assert outbox() == [("overrun", task_id)]


def test_the_configured_overrun_time_comes_before_the_timeout(app: Any) -> None:
    app.config["OVERRUN_AFTER_SECONDS"] = 20
    task_id = create(name="slow", interval_seconds=3600, timeout_seconds=600)
    run_of(task_id, utcnow(), Status.RUNNING, started_seconds_ago=30)
    assert watchdog.watch(ALIVE, utcnow()) == ["overrun"]


def test_a_reconcile_pass_that_repaired_something_emits_its_counts(app: Any) -> None:
    assert watchdog.report_repairs({"tasks_checked": 3, "pending_restored": 0}, utcnow()) is False
    assert watchdog.report_repairs({"tasks_checked": 3, "pending_restored": 2}, utcnow()) is True
    row = db.session.scalars(select(AlertOutbox)).one()
    assert (row.event, row.details["counts"]) == ("reconcile_repaired", {"pending_restored": 2})


def test_an_occurrence_dispatched_but_waiting_on_a_queue_past_its_grace_is_missed(app: Any) -> None:
    connection = app.extensions["redis"]
    task_id = create(name="queued", interval_seconds=3600, misfire_grace_seconds=10)
    scheduled_for = (utcnow() - timedelta(seconds=60)).replace(microsecond=0)
    job_id = f"chime-{task_id}-{int(scheduled_for.timestamp() * 1_000_000)}-1"
    assert occ.parse_job_id(job_id).scheduled_for == scheduled_for
    connection.rpush(queue_key("default"), job_id, f"chime-{task_id}-{int(scheduled_for.timestamp() * 1e6)}-1-m")
    try:
        seen = edge.observe(connection)
        assert [(d.task_id, d.scheduled_for, d.where) for d in seen.queued] == [(task_id, scheduled_for, "queue")]
        assert seen.task_workers == 0  # no worker registered in this test
        assert watchdog.watch(watchdog.Observation("ok", 1, seen.queued), utcnow()) == ["missed"]
    finally:
        connection.delete(queue_key("default"))
