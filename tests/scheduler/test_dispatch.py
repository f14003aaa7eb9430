"""What the scheduler records itself: skipped occurrences (logged, notified, counted), and its Redis check."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from scheduler import metrics
from chime import occurrence as occ
from scheduler.dispatch import ChimeScheduler, redis_version_supported
from tests.engine.helpers import create, executions, notifications
from chime import services
from chime.extensions import db
from chime.models import Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work


def skipped_count(connection: Any) -> int:
    """Occurrences counted SKIPPED by the metrics (each test here has one task)."""
    return int(connection.hget(metrics.EXECUTIONS_KEY, "SKIPPED") or 0)


def test_an_occurrence_due_while_the_previous_run_is_in_flight_is_skipped_and_counted(app: Any) -> None:
    connection = app.extensions["redis"]
    task_id = create(name="slow", interval_seconds=60, overlap="SKIP", start_at=(utcnow() + timedelta(seconds=1)).isoformat())
    services.run_task_now(db.session.get(Task, task_id))  # queued, not yet finished: in flight
    db.session.rollback()

    ChimeScheduler(connection, app).dispatch_due(utcnow() + timedelta(seconds=2))

    assert [(e.status, e.message) for e in executions(task_id)] == [("SKIPPED", "previous run still running")]
    assert skipped_count(connection) == 1
    assert connection.llen("rq:queue:default") == 1  # only the manual run


def test_an_occurrence_missed_past_its_grace_is_skipped_with_a_warning_and_counted(app: Any) -> None:
    connection = app.extensions["redis"]
    task_id = create(name="late", interval_seconds=60, misfire_grace_seconds=5,
                     start_at=(utcnow() + timedelta(seconds=1)).isoformat())

    ChimeScheduler(connection, app).dispatch_due(utcnow() + timedelta(seconds=30))

    [run] = executions(task_id)
    assert run.status == "SKIPPED" and run.message.startswith("missed:")
    assert [n.level for n in notifications(task_id)] == ["WARNING"]
    assert skipped_count(connection) == 1
    assert occ.pending_job_id(connection, task_id) is not None


def test_the_scheduler_accepts_redis_6_2_and_newer_only() -> None:
    assert [redis_version_supported(v) for v in ("6.2.14", "7.0.15", "10.0.0", "6.0.16", "5.0.7")] == [
        True, True, True, False, False]


class RunsOnUnpickle:
    """A payload that runs a command when unpickled (what an attacker who can write to Redis would store)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_job_chime_did_not_schedule_is_refused_and_taken_out_of_the_schedule(app: Any, tmp_path: Any) -> None:
    from rq_scheduler import Scheduler

    connection = app.extensions["redis"]
    marker = tmp_path / "ran"
    foreign = Scheduler(connection=connection).enqueue_at(utcnow() - timedelta(seconds=1), "os.system",
                                                          f"touch {marker}")

    ChimeScheduler(connection, app).dispatch_due(utcnow())

    assert connection.zscore(occ.SCHEDULED_KEY, foreign.id) is None
    assert all(connection.llen(f"rq:queue:{q}") == 0 for q in ("high", "default", "low"))
    assert not marker.exists()


def test_a_tampered_legacy_periodic_entry_is_taken_out_of_the_schedule_unread(app: Any, tmp_path: Any) -> None:
    import pickle

    connection = app.extensions["redis"]
    legacy_id = "chime-reconcile"  # what an earlier Chime called rq-scheduler's repeating reconcile job
    marker = tmp_path / "ran"
    connection.hset(occ.JOB_KEY.format(job_id=legacy_id),
                    mapping={"status": "scheduled", "meta": pickle.dumps(RunsOnUnpickle(str(marker)))})
    connection.zadd(occ.SCHEDULED_KEY, {legacy_id: (utcnow() - timedelta(seconds=1)).timestamp()})

    ChimeScheduler(connection, app).dispatch_due(utcnow() + timedelta(seconds=1))

    assert not marker.exists()
    assert connection.zscore(occ.SCHEDULED_KEY, legacy_id) is None
    assert not connection.exists(occ.JOB_KEY.format(job_id=legacy_id))
    assert all(connection.llen(f"rq:queue:{q}") == 0 for q in ("high", "default", "low"))


def whole_second_after(seconds: float) -> Any:
    return (utcnow() + timedelta(seconds=seconds)).replace(microsecond=0) + timedelta(seconds=1)


def test_a_skip_recorded_by_a_scheduler_that_died_before_its_move_is_not_counted_again(
        app: Any, monkeypatch: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-2s", interval_seconds=2, start_at=start.isoformat())
    services.run_task_now(db.session.get(Task, task_id))  # in flight: the first occurrence is an overlap
    db.session.rollback()

    def die(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed between the skip's commit and the move")

    monkeypatch.setattr(occ, "move_due", die)
    try:
        ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=0.1))
    except SystemExit:
        pass
    monkeypatch.undo()
    connection.delete(occ.INFLIGHT_KEY.format(task_id=task_id))  # the manual run is over

    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=4.1))

    assert [(e.status, e.scheduled_for) for e in executions(task_id)] == [("SKIPPED", start)]
    [recovered] = [n for n in notifications(task_id) if "recovered" in n.title]
    assert "(2 missed" in recovered.message  # start+2 s and start+4 s; start itself is already recorded


def test_an_overlap_skip_that_stands_for_several_occurrences_says_how_many(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-2s", interval_seconds=2, start_at=start.isoformat())
    services.run_task_now(db.session.get(Task, task_id))
    db.session.rollback()

    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=4.1))

    assert [(e.status, e.scheduled_for, e.message) for e in executions(task_id)] == [
        ("SKIPPED", start + timedelta(seconds=4), "previous run still running: 3 occurrence(s) skipped")]


def test_an_inflight_marker_left_by_a_worker_killed_after_recording_is_cleared(app: Any) -> None:
    from scheduler.reconcile import reconcile
    from chime.models import Execution

    connection = app.extensions["redis"]
    task_id = create(name="hourly", interval_seconds=3600)
    job_id = services.run_task_now(db.session.get(Task, task_id))
    connection.lpop("rq:queue:default")
    connection.hset(occ.JOB_KEY.format(job_id=job_id), "status", "started")  # the worker died before RQ's bookkeeping
    now = utcnow()
    db.session.add(Execution(task_id=task_id, task_name="hourly", status="SUCCESS", attempt=1, trigger="MANUAL",
                             scheduled_for=now, started_at=now, finished_at=now, job_id=job_id))
    db.session.commit()
    db.session.rollback()
    assert occ.busy_task_ids(connection, [task_id]) == {task_id}

    report = reconcile(connection)

    assert report["orphans_removed"] == 1
    assert occ.busy_task_ids(connection, [task_id]) == set()


def test_a_one_time_occurrence_left_from_an_earlier_run_at_runs_at_the_tasks_run_at(app: Any, monkeypatch: Any) -> None:
    import redis

    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="once", schedule_type="ONE_TIME", interval_seconds=None,
                     run_at=(start + timedelta(seconds=60)).isoformat())
    monkeypatch.setattr(occ, "replace_pending", lambda *args: (_ for _ in ()).throw(redis.exceptions.ConnectionError()))
    with unit_of_work():
        services.update_task(services.get_task(task_id), {"run_at": start.isoformat()}, partial=True, allow_shell=False)
    monkeypatch.undo()
    db.session.rollback()

    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=61))  # the stale occurrence falls due

    assert connection.lrange("rq:queue:default", 0, -1) == [
        occ.occurrence_job_id(task_id, start, 1, "RECOVERY").encode()]


def test_an_overdue_occurrence_a_disable_takes_out_of_the_schedule_is_recorded(app: Any) -> None:
    import time

    start = whole_second_after(1)  # at least 1 s ahead: still ahead once the task is created, on a busy machine
    task_id = create(name="every-minute", interval_seconds=60, start_at=start.isoformat())
    time.sleep(max((start - utcnow()).total_seconds(), 0) + 0.2)  # due, and no scheduler has moved it

    with unit_of_work():
        services.toggle_task(services.get_task(task_id))

    assert [(e.status, e.scheduled_for, e.message) for e in executions(task_id)] == [
        ("SKIPPED", start, "not run: the task was disabled before the scheduler dispatched 1 overdue occurrence(s)")]


def test_a_scheduler_that_lost_its_lock_mid_pass_leaves_the_others_queued_job_alone(app: Any) -> None:
    connection = app.extensions["redis"]
    start = whole_second_after(1)
    task_id = create(name="every-2s", interval_seconds=2, start_at=start.isoformat())
    now = start + timedelta(seconds=4.1)  # three occurrences due: one coalesced catch-up run
    due = [occ.parse_job_id(occ.pending_job_id(connection, task_id))]
    paused = ChimeScheduler(connection, app)
    plan = paused.plan(due, now)  # decided, then paused past its lock's TTL
    ChimeScheduler(connection, app).dispatch_due(now)  # the other one takes over and queues the same run
    [queued] = connection.lrange("rq:queue:default", 0, -1)

    occ.save_new_jobs(connection, plan.new_jobs)  # the paused one wakes up and carries on
    occ.move_due(connection, plan.moves, utcnow())

    assert connection.hget(occ.JOB_KEY.format(job_id=queued.decode()), "status") == b"queued"
    assert connection.lrange("rq:queue:default", 0, -1) == [queued]
