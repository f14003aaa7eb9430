"""The reconciler repairs what is broken and nothing else, and never undoes the scheduler's work.

Each test drives the real scheduler, the real worker class (in this process) and the reconciler
against the suite's redis-server, on SQLite and on Postgres.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from chime import occurrence as occ
from scheduler import reconcile as reconcile_module
from scheduler.dispatch import ChimeScheduler
from scheduler.reconcile import RedisView, reconcile
from tests.engine.helpers import create, executions
from chime import services
from chime.extensions import db
from chime.models import Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work

REPAIRS = ("pending_restored", "missed_restored", "one_time_recovered", "stale_replaced", "orphans_removed",
           "executions_lost", "retries_enqueued")


def repairs(report: dict[str, Any]) -> dict[str, int]:
    return {key: report[key] for key in REPAIRS if report[key]}


def starting_in(seconds: float) -> datetime:
    return (utcnow() + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)


def test_a_healthy_system_reconciles_with_no_repairs(app: Any, connection: Any, work: Any) -> None:
    start = starting_in(1)
    periodic = [create(name=f"every-{n}", interval_seconds=30, start_at=start.isoformat()) for n in range(3)]
    once = create(name="once", schedule_type="ONE_TIME", interval_seconds=None, run_at=start.isoformat())
    scheduler = ChimeScheduler(connection, app)
    scheduler.dispatch_due(start + timedelta(seconds=0.5))
    time.sleep(1.2)  # the runs below happen more than a second after their occurrences were made
    work()
    scheduler.save_next_run_at()

    report = reconcile(connection)

    assert [len(executions(t)) for t in [*periodic, once]] == [1, 1, 1, 1]
    assert repairs(report) == {}
    assert repairs(reconcile(connection)) == {}


def test_a_run_moved_onto_its_queue_and_lost_with_redis_is_owed_again(app: Any, connection: Any, work: Any) -> None:
    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))  # moved, next_run_at saved
    connection.flushall()  # Redis restarts empty before a worker claimed it

    report = reconcile(connection, now=start + timedelta(seconds=0.5))

    lost_id = occ.occurrence_job_id(task_id, start, 1, "SCHEDULE")
    assert repairs(report) == {"missed_restored": 1}
    assert occ.pending_job_id(connection, task_id) == lost_id
    assert connection.zscore(occ.SCHEDULED_KEY, lost_id) == occ.score_of(start)
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.6))
    work()
    assert [(e.scheduled_for, e.status) for e in executions(task_id)] == [(start, "SUCCESS")]


def torn_read(scheduler: ChimeScheduler, due_at: datetime) -> Any:
    """read_redis whose sorted set is read before the scheduler moves a due occurrence, and the rest after."""
    read = reconcile_module.read_redis

    def read_across_a_move(connection: Any) -> RedisView:
        before = read(connection)
        scheduler.dispatch_due(due_at)
        after = read(connection)
        return RedisView(before.scheduled, after.pending, after.queued, after.job_fields)

    return read_across_a_move


def test_a_pass_that_read_redis_across_a_move_leaves_the_moved_run_alone(
        app: Any, connection: Any, work: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    moved = occ.pending_job_id(connection, task_id)
    scheduler = ChimeScheduler(connection, app)
    monkeypatch.setattr(reconcile_module, "read_redis", torn_read(scheduler, start + timedelta(seconds=0.1)))

    report = reconcile(connection, now=start + timedelta(seconds=0.2))

    assert repairs(report) == {}
    assert connection.hget(occ.JOB_KEY.format(job_id=moved), "status") == b"queued"
    assert occ.pending_job_id(connection, task_id) == occ.occurrence_job_id(
        task_id, start + timedelta(seconds=60), 1, "SCHEDULE")
    work()
    assert [(e.scheduled_for, e.status) for e in executions(task_id)] == [(start, "SUCCESS")]


def test_an_occurrence_made_from_an_earlier_definition_is_replaced(app: Any, connection: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    task_id = create(name="hourly", interval_seconds=3600)
    old = occ.pending_job_id(connection, task_id)
    monkeypatch.setattr(occ, "replace_pending", lambda *args: (_ for _ in ()).throw(
        __import__("redis").exceptions.ConnectionError("Redis is down")))
    with unit_of_work():
        services.update_task(services.get_task(task_id), {"interval_seconds": 60}, partial=True, allow_shell=False)
    monkeypatch.undo()
    db.session.rollback()
    assert occ.pending_job_id(connection, task_id) == old  # the edit could not reach Redis

    report = reconcile(connection)

    task = db.session.get(Task, task_id)
    assert repairs(report) == {"stale_replaced": 1}
    new = occ.pending_job_id(connection, task_id)
    assert new != old and connection.exists(occ.JOB_KEY.format(job_id=old)) == 0
    assert int(connection.hget(occ.JOB_KEY.format(job_id=new), occ.VERSION_FIELD)) == task.version
    assert connection.zscore(occ.SCHEDULED_KEY, new) - time.time() <= 61


def test_the_engines_own_writes_leave_a_tasks_updated_at_alone(app: Any, connection: Any, work: Any) -> None:
    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    updated_at = db.session.get(Task, task_id).updated_at
    db.session.rollback()
    scheduler = ChimeScheduler(connection, app)
    scheduler.dispatch_due(start + timedelta(seconds=0.1))
    work()
    reconcile(connection)

    task = db.session.get(Task, task_id)
    assert task.last_status == "SUCCESS" and task.next_run_at == start + timedelta(seconds=60)
    assert task.updated_at == updated_at


def test_a_job_made_for_a_deleted_task_never_runs_another_task(app: Any, connection: Any, work: Any) -> None:
    doomed = create(name="doomed", interval_seconds=3600)
    services.run_task_now(services.get_task(doomed))
    with unit_of_work():
        services.delete_task(services.get_task(doomed))
    db.session.rollback()
    newcomer = create(name="newcomer", interval_seconds=3600)
    # Whatever id the database gives the newcomer, make the queued job name it, as a reused id would.
    job_id = connection.lindex("rq:queue:default", 0).decode()
    reused = job_id.replace(f"chime-{doomed}-", f"chime-{newcomer}-")
    connection.rename(occ.JOB_KEY.format(job_id=job_id), occ.JOB_KEY.format(job_id=reused))
    connection.lset("rq:queue:default", 0, reused)
    from rq.job import Job
    job = Job.fetch(reused, connection=connection)
    job.kwargs["task_id"] = newcomer
    job.save()

    work()

    assert executions(newcomer) == []


def running_since(task_id: int, started_at: datetime) -> int:
    """A RUNNING execution, as a worker that claimed it and then went silent leaves it."""
    from chime.models import Execution

    execution = Execution(task_id=task_id, task_name="silent", status="RUNNING", attempt=1, trigger="SCHEDULE",
                          scheduled_for=started_at, started_at=started_at, worker="w", job_id="j")
    db.session.add(execution)
    db.session.commit()
    execution_id = execution.id
    db.session.rollback()
    return execution_id


def test_a_run_whose_worker_stopped_beating_for_ten_seconds_is_closed_as_lost(app: Any, connection: Any) -> None:
    task_id = create(name="hourly", interval_seconds=3600)
    now = utcnow()
    running_since(task_id, now - timedelta(seconds=10))
    connection.set("chime:liveness:since", f"{connection.info('server')['run_id']}@{(now - timedelta(hours=1)).timestamp()}")

    report = reconcile(connection, now=now)

    assert report["executions_lost"] == 1
    assert [(e.status, e.message) for e in executions(task_id)] == [("FAILED", "worker lost")]


def test_liveness_is_not_judged_until_redis_has_kept_its_data_for_a_beat_period(app: Any, connection: Any) -> None:
    task_id = create(name="hourly", interval_seconds=3600)
    now = utcnow()
    running_since(task_id, now - timedelta(seconds=60))
    connection.flushall()  # every liveness key is gone, live workers' too

    first = reconcile(connection, now=now)
    later = reconcile(connection, now=now + timedelta(seconds=10))

    assert (first["executions_lost"], later["executions_lost"]) == (0, 1)


def test_liveness_is_not_judged_right_after_a_restart_that_kept_the_data(app: Any, connection: Any) -> None:
    task_id = create(name="hourly", interval_seconds=3600)
    now = utcnow()
    running_since(task_id, now - timedelta(seconds=60))
    connection.set("chime:liveness:since", f"an-earlier-run@{(now - timedelta(hours=1)).timestamp()}")

    first = reconcile(connection, now=now)
    later = reconcile(connection, now=now + timedelta(seconds=10))

    assert (first["executions_lost"], later["executions_lost"]) == (0, 1)


def test_a_queued_run_of_a_disabled_task_goes_with_its_hash_and_marker(app: Any, connection: Any) -> None:
    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    queued = occ.pending_job_id(connection, task_id)
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))
    connection.hdel(occ.PENDING_KEY, task_id)  # as if the disable's own Redis call had failed
    db.session.execute(__import__("sqlalchemy").update(Task).where(Task.id == task_id).values(enabled=False))
    db.session.commit()

    report = reconcile(connection)

    assert report["orphans_removed"] >= 1
    assert connection.lrange("rq:queue:default", 0, -1) == []
    assert connection.exists(occ.JOB_KEY.format(job_id=queued)) == 0
    assert occ.busy_task_ids(connection, [task_id]) == set()


def test_a_redelivery_waiting_in_the_schedule_is_not_an_orphan(app: Any, connection: Any) -> None:
    from rq.job import Job

    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))
    job = Job.fetch(connection.lpop("rq:queue:default").decode(), connection=connection)
    copy_id = occ.redeliver_later(connection, job, utcnow() + timedelta(seconds=5))  # the database was down

    reconcile(connection)

    assert connection.zscore(occ.SCHEDULED_KEY, copy_id) is not None


def taken_by_a_worker_that_died(connection: Any, started_at: datetime) -> str:
    """Take the queued job as RQ's worker does (status, start time, StartedJobRegistry), then die before claiming."""
    from rq.utils import utcformat

    job_id = connection.lpop("rq:queue:default").decode()
    connection.hset(occ.JOB_KEY.format(job_id=job_id), mapping={"status": "started", "started_at": utcformat(started_at),
                                                               "worker_name": "dead-worker"})
    connection.zadd("rq:wip:default", {f"{job_id}:rq-execution-1": started_at.timestamp() + 400})
    return job_id


def test_a_job_a_worker_took_and_died_with_before_claiming_it_is_queued_again(app: Any, connection: Any,
                                                                              work: Any) -> None:
    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))
    job_id = taken_by_a_worker_that_died(connection, utcnow() - timedelta(seconds=31))

    report = reconcile(connection)

    assert report["pending_restored"] == 1
    assert connection.lrange("rq:queue:default", 0, -1) == [job_id.encode()]
    assert connection.zcard("rq:wip:default") == 0
    work()
    assert [(e.scheduled_for, e.status) for e in executions(task_id)] == [(start, "SUCCESS")]


def test_a_job_a_worker_has_just_taken_is_left_to_it(app: Any, connection: Any) -> None:
    start = starting_in(1)
    create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))
    taken_by_a_worker_that_died(connection, utcnow())

    report = reconcile(connection)

    assert report["pending_restored"] == 0 and connection.llen("rq:queue:default") == 0


def test_a_manual_runs_retry_is_not_taken_for_an_occurrence_of_the_schedule(app: Any, connection: Any) -> None:
    from chime.models import Execution

    start = starting_in(1)
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    clicked = start + timedelta(seconds=90)  # a manual run after the first occurrence, which Redis then lost
    for attempt, trigger in ((1, "MANUAL"), (2, "RETRY")):
        db.session.add(Execution(task_id=task_id, task_name="every-minute", status="FAILED", attempt=attempt,
                                 trigger=trigger, scheduled_for=clicked, started_at=clicked, finished_at=clicked))
    db.session.commit()
    connection.flushall()

    reconcile(connection, now=start + timedelta(seconds=100))

    assert occ.pending_job_id(connection, task_id) == occ.occurrence_job_id(task_id, start, 1, "SCHEDULE")
