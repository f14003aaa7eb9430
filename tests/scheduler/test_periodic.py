"""Chime's periodic jobs (reconcile, log retention): due times, pushed once per slot by the dispatcher."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rq.job import Job
from rq_scheduler import Scheduler

from chime import occurrence as occ
from chime.redis_keys import SCHEDULED_KEY, job_key, queue_key, started_registry_key
from chime.timeutil import utcnow
from scheduler import health, periodic
from scheduler.dispatch import ChimeScheduler
from tests.engine.inprocess.engine import start_without_finishing

NOW = datetime(2030, 6, 1, 12, 0, 30, tzinfo=timezone.utc)
SETTINGS = {"RECONCILE_INTERVAL_SECONDS": 60, "RETENTION_INTERVAL_SECONDS": 3600}
RECONCILE, PRUNE = periodic.periodic_jobs(SETTINGS)


def queued_ids(connection: Any, queue: str) -> list[str]:
    return [job_id.decode() for job_id in connection.lrange(queue_key(queue), 0, -1)]


@pytest.mark.parametrize(("interval_seconds", "now", "slot_start", "next_due"), [
    (60, NOW, "2030-06-01T12:00:00+00:00", "2030-06-01T12:01:00+00:00"),
    (3600, NOW, "2030-06-01T12:00:00+00:00", "2030-06-01T13:00:00+00:00"),
    (60, datetime(2030, 6, 1, 12, 1, tzinfo=timezone.utc), "2030-06-01T12:01:00+00:00", "2030-06-01T12:02:00+00:00"),
    # the same instant written in another offset falls in the same slot
    (3600, datetime(2030, 6, 1, 14, 59, 59, tzinfo=timezone(timedelta(hours=2))),
     "2030-06-01T12:00:00+00:00", "2030-06-01T13:00:00+00:00"),
])
def test_a_periodic_job_is_due_at_each_multiple_of_its_interval_since_the_epoch_in_utc(
        interval_seconds: int, now: datetime, slot_start: str, next_due: str) -> None:
    assert periodic.slot_start_at(interval_seconds, now).isoformat() == slot_start
    assert periodic.next_due_at(interval_seconds, now).isoformat() == next_due


def test_an_interval_below_one_second_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 s"):
        periodic.slot_start_at(0, NOW)


def test_the_intervals_come_from_the_config() -> None:
    assert [(j.name, j.func, j.queue, j.interval_seconds) for j in periodic.periodic_jobs(SETTINGS)] == [
        ("reconcile", "scheduler.reconcile.run_reconcile", "high", 60),
        ("prune-logs", "scheduler.retention.run_prune", "low", 3600)]


def test_a_dispatcher_pass_pushes_each_periodic_job_once_per_slot(app: Any, connection: Any) -> None:
    app.config.update(SETTINGS)
    scheduler = ChimeScheduler(connection, app)
    with app.app_context():
        scheduler.housekeeping()
        scheduler.housekeeping()

    [reconcile_id] = queued_ids(connection, "high")
    [prune_id] = queued_ids(connection, "low")
    reconcile_job = Job.fetch(reconcile_id, connection=connection)
    prune_job = Job.fetch(prune_id, connection=connection)
    assert (reconcile_job.func_name, reconcile_job.origin) == ("scheduler.reconcile.run_reconcile", "high")
    assert (prune_job.func_name, prune_job.origin) == ("scheduler.retention.run_prune", "low")
    assert connection.zcard(SCHEDULED_KEY) == 0  # not rq-scheduler's repeat: nothing waits in its sorted set


def test_the_next_slot_is_pushed_once_the_last_slots_job_has_ended(connection: Any) -> None:
    assert periodic.push_due(connection, [RECONCILE], NOW) == ["reconcile"]
    assert periodic.push_due(connection, [RECONCILE], NOW + timedelta(seconds=20)) == []  # same slot

    assert periodic.push_due(connection, [RECONCILE], NOW + timedelta(seconds=60)) == []  # the last one still queued
    [last_id] = queued_ids(connection, "high")
    connection.lpop(queue_key("high"))
    connection.hset(job_key(last_id), "status", "finished")
    assert periodic.push_due(connection, [RECONCILE], NOW + timedelta(seconds=61)) == ["reconcile"]

    [next_id] = queued_ids(connection, "high")
    assert next_id == occ.periodic_job_id("reconcile", int(datetime(2030, 6, 1, 12, 1, tzinfo=timezone.utc).timestamp()))


def test_a_pass_left_started_by_a_killed_worker_holds_up_the_next_slot_only_until_its_heartbeat_expired(
        connection: Any) -> None:
    now = utcnow()
    periodic.push_due(connection, [RECONCILE], now)
    start_without_finishing(connection, "high")  # then the worker is killed (kill -9): nothing more is written
    # RQ's started registry scores a worker's entry with when its heartbeat expires; a live worker moves it on
    [(_, expires)] = connection.zrange(started_registry_key("high"), 0, -1, withscores=True)
    heartbeat_expires_at = datetime.fromtimestamp(expires, timezone.utc)

    # still within its heartbeat (a worker really running it): the next slots are not pushed, the pass not doubled
    assert periodic.push_due(connection, [RECONCILE], now + timedelta(seconds=RECONCILE.interval_seconds)) == []
    assert periodic.push_due(connection, [RECONCILE], heartbeat_expires_at - timedelta(seconds=1)) == []
    assert queued_ids(connection, "high") == []

    assert periodic.push_due(connection, [RECONCILE], heartbeat_expires_at + timedelta(seconds=1)) == ["reconcile"]
    assert len(queued_ids(connection, "high")) == 1


def test_a_pass_a_killed_worker_took_off_its_queue_before_starting_it_does_not_hold_up_the_next_slot(
        connection: Any) -> None:
    periodic.push_due(connection, [RECONCILE], NOW)
    connection.lpop(queue_key("high"))  # a worker took it (its hash still says queued) and was killed

    assert periodic.push_due(connection, [RECONCILE], NOW + timedelta(seconds=60)) == ["reconcile"]


def test_two_schedulers_never_push_one_slot_twice(app: Any, connection: Any) -> None:
    app.config.update(SETTINGS)
    with app.app_context():
        ChimeScheduler(connection, app).housekeeping()
        ChimeScheduler(connection, app).housekeeping()  # the standby: it does not hold the lock

    assert len(queued_ids(connection, "high")) == len(queued_ids(connection, "low")) == 1


def test_a_scheduler_that_read_before_the_other_pushed_does_not_push_the_slot_again(connection: Any) -> None:
    seen = occ.periodic_slots(connection)  # both read the periodic index before either pushed
    slot = int(periodic.slot_start_at(RECONCILE.interval_seconds, NOW).timestamp())

    pushed = [occ.push_periodic(connection, RECONCILE, slot, seen.get("reconcile"), NOW) for _ in range(2)]

    assert pushed == [True, False]
    assert len(queued_ids(connection, "high")) == 1


def test_the_rq_scheduler_repeat_entries_of_an_earlier_chime_are_removed_at_start(app: Any, connection: Any) -> None:
    app.config.update(SETTINGS)
    old = Scheduler(connection=connection)  # what an earlier Chime's dispatcher kept in rq-scheduler's sorted set
    old.schedule(scheduled_time=datetime.utcnow() + timedelta(minutes=1), func="scheduler.reconcile.run_reconcile",
                 interval=60, id="chime-reconcile", queue_name="high", result_ttl=600)
    old.schedule(scheduled_time=datetime.utcnow() + timedelta(minutes=1), func="scheduler.retention.run_prune",
                 interval=3600, id="chime-prune-logs", queue_name="low", result_ttl=600)

    with app.app_context():
        ChimeScheduler(connection, app).housekeeping()

    assert connection.zcard(SCHEDULED_KEY) == 0
    assert not connection.exists(job_key("chime-reconcile"), job_key("chime-prune-logs"))
    assert [Job.fetch(i, connection=connection).func_name for i in queued_ids(connection, "high")] == [
        "scheduler.reconcile.run_reconcile"]


def test_the_pushed_periodic_jobs_run_on_chimes_worker(app: Any, connection: Any, work: Callable[[], None]) -> None:
    periodic.push_due(connection, [RECONCILE, PRUNE], utcnow())
    pushed = queued_ids(connection, "high") + queued_ids(connection, "low")

    work()

    assert [Job.fetch(job_id, connection=connection).get_status() for job_id in pushed] == ["finished", "finished"]
    assert health.last_reconcile_report(connection) is not None


def test_a_periodic_job_lost_with_redis_is_pushed_again(connection: Any) -> None:
    periodic.push_due(connection, [PRUNE], NOW)
    connection.flushdb()

    assert periodic.push_due(connection, [PRUNE], NOW + timedelta(seconds=1)) == ["prune-logs"]
