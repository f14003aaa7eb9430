"""Cancel a queued run and stop a running one (issue 15), in process: the dispatcher, a burst worker of the
Procfile's class in this process's main thread, a real Redis. Both are recorded CANCELLED and never retried;
a reconcile pass treats the CANCELLED row as the occurrence's outcome and does not queue it again."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import jobs.registry as registry
from chime import occurrence as occ
from chime import lifecycle, run_control, services
from chime.errors import ConflictError
from chime.extensions import db
from chime.models import Task
from chime.redis_keys import queue_key, stop_key
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.reconcile import reconcile
from tests.engine.helpers import create, executions, in_seconds, run_now, task
from tests.engine.inprocess.engine import InProcessEngine, start_without_finishing
from tests.engine_fixtures import wait_for


def spin() -> None:
    """A job that ignores nothing but the stop: it loops on short sleeps forever."""
    while True:
        time.sleep(0.1)


@pytest.fixture
def spin_job() -> Iterator[None]:
    with registry.temporary(registry.make_spec(spin, name="spin")):
        yield


def cancel(queue: str, job_id: str) -> Any:
    with unit_of_work():
        execution = run_control.cancel_waiting(queue, job_id, utcnow())
    db.session.rollback()
    return execution


def queued_ids(connection: Any, queue: str = "default") -> list[str]:
    return [job_id.decode() for job_id in connection.lrange(queue_key(queue), 0, -1)]


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_a_cancelled_queued_occurrence_never_runs_and_the_next_one_stays_scheduled(
        engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="minutely", interval_seconds=60)
    due_at = engine.next_due_at()
    engine.dispatch(due_at)  # moved onto its queue; the next occurrence is scheduled in its place
    [job_id] = queued_ids(connection)
    pending = occ.pending_job_id(connection, task_id)

    cancelled = cancel("default", job_id)

    assert (cancelled.status, cancelled.scheduled_for, cancelled.attempt, cancelled.trigger) == (
        "CANCELLED", due_at, 1, "SCHEDULE")
    assert queued_ids(connection) == []
    reconcile(connection)
    engine.work()
    assert queued_ids(connection) == [] and job_id not in {m.decode() for m in connection.zrange(occ.SCHEDULED_KEY, 0, -1)}
    assert [(r.status, r.scheduled_for) for r in executions(task_id)] == [("CANCELLED", due_at)]
    assert occ.pending_job_id(connection, task_id) == pending
    assert occ.parse_job_id(pending).scheduled_for.timestamp() == due_at.timestamp() + 60
    assert task(task_id).last_status == "CANCELLED"


def test_cancelling_the_pending_occurrence_schedules_the_next_one_in_its_place(
        engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="minutely", interval_seconds=60)
    job_id = occ.pending_job_id(connection, task_id)
    due_at = occ.parse_job_id(job_id).scheduled_for

    cancel("default", job_id)

    following = occ.pending_job_id(connection, task_id)
    assert occ.parse_job_id(following).scheduled_for.timestamp() == due_at.timestamp() + 60
    assert task(task_id).next_run_at.timestamp() == due_at.timestamp() + 60
    reconcile(connection)
    assert occ.pending_job_id(connection, task_id) == following
    assert engine.run_next().timestamp() == due_at.timestamp() + 60
    assert [r.status for r in executions(task_id)] == ["CANCELLED", "SUCCESS"]


def test_a_job_a_worker_has_taken_cannot_be_cancelled_it_must_be_stopped(
        engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="minutely", interval_seconds=60)
    engine.dispatch(engine.next_due_at())
    taken = start_without_finishing(connection, "default")

    with pytest.raises(ConflictError, match="already running: stop it instead"):
        cancel("default", taken.id)
    assert executions(task_id) == []


def stop_when_running(app: Any, task_id: int, actor_done: threading.Event) -> threading.Thread:
    """In another thread (an operator's request): wait until the task's run is RUNNING, then stop it."""
    def operator() -> None:
        with app.app_context():
            def running() -> Any:
                runs = [r for r in executions(task_id) if r.status == "RUNNING"]
                return runs[0] if runs else None

            run = wait_for(running, 30, "the run to start")
            with unit_of_work():
                run_control.request_stop(run.id)
            db.session.remove()
        actor_done.set()

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_a_running_job_is_stopped_recorded_cancelled_not_retried_and_the_worker_goes_on(
        engine: InProcessEngine, engine_app: Any, connection: Any, spin_job: None) -> None:
    spinning = create(name="spinning", job="spin", schedule_type="ONE_TIME", interval_seconds=None,
                      run_at=in_seconds(3600), max_retries=3, timeout_seconds=600)
    after = create(name="after", job="echo", args={"message": "next"}, schedule_type="ONE_TIME",
                   interval_seconds=None, run_at=in_seconds(3600))
    run_now(spinning)
    run_now(after)  # queued behind it, on the same queue
    stopped = threading.Event()
    stop_when_running(engine_app, spinning, stopped)

    engine.work()  # returns only once both jobs are done: the stop ended the endless one

    assert stopped.is_set()
    [run] = executions(spinning)
    assert (run.status, run.retry_at, run.message) == ("CANCELLED", None, "stopped by chime")
    assert [r.status for r in executions(after)] == ["SUCCESS"]
    scheduled = [occ.parse_job_id(m.decode()) for m in connection.zrange(occ.SCHEDULED_KEY, 0, -1)]
    assert [due.attempt for due in scheduled if due is not None and due.task_id == spinning] == [1]  # no retry
    assert task(spinning).status == "CANCELLED"


def shell_task(command: str) -> int:
    with unit_of_work():
        created = services.create_task({"name": "shell-sleep", "job": "shell", "args": {"command": command},
                                        "schedule_type": "ONE_TIME", "run_at": in_seconds(3600),
                                        "timeout_seconds": 600}, allow_shell=True)
    task_id = created.id
    db.session.rollback()
    return task_id


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # dead, waiting for its parent (init) to reap it


def test_a_stopped_shell_job_takes_its_child_processes_with_it(
        engine: InProcessEngine, engine_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_SHELL_JOBS", "true")
    pid_file = tmp_path / "sleep.pid"
    task_id = shell_task(f"sleep 60 & echo $! > {pid_file}; wait")
    run_now(task_id)
    stopped = threading.Event()
    stop_when_running(engine_app, task_id, stopped)

    engine.work()

    [run] = executions(task_id)
    assert (run.status, run.retry_at) == ("CANCELLED", None)
    child = int(pid_file.read_text())
    wait_for(lambda: is_gone(child), 10, f"the shell's child {child} to be gone")
    assert child != os.getpid()


def test_a_stop_of_a_run_that_has_ended_is_refused(engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="quick", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(3600))
    run_now(task_id)
    engine.work()
    [run] = executions(task_id)

    with pytest.raises(ConflictError, match="not running"), unit_of_work():
        run_control.request_stop(run.id)
    assert connection.exists(stop_key(run.id)) == 0


def test_a_run_asked_to_stop_whose_worker_died_is_closed_cancelled_by_the_reconciler_not_retried(
        engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="silent", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(3600),
                     max_retries=3)
    now = utcnow()
    with unit_of_work():
        row = lifecycle.claim(db.session.get(Task, task_id), scheduled_for=now - timedelta(seconds=60), attempt=1,
                              trigger="MANUAL", now=now - timedelta(seconds=60), worker="gone", job_id="chime-x-m")
        db.session.add(row)
    run_id = row.id
    with unit_of_work():
        run_control.request_stop(run_id)  # its worker died: nobody reads the stop key but the reconciler
    connection.set("chime:liveness:since", f"{connection.info('server')['run_id']}@{(now - timedelta(hours=1)).timestamp()}")

    report = reconcile(connection, now=now)

    assert report["executions_lost"] == 1
    [run] = executions(task_id)
    assert (run.status, run.retry_at, run.message) == ("CANCELLED", None, "stopped by chime")


def test_a_parent_whose_latest_run_was_cancelled_has_not_succeeded_so_its_child_is_skipped(
        engine: InProcessEngine, connection: Any) -> None:
    parent = create(name="extract", interval_seconds=60)
    child = create(name="load", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(3600),
                   depends_on=[parent])
    cancel("default", occ.pending_job_id(connection, parent))

    run_now(child)
    engine.work()

    [run] = executions(child)
    assert (run.status, run.message) == (
        "SKIPPED", f"dependency 'extract' (task {parent}) has not succeeded: latest run CANCELLED")


def test_a_cancelled_retry_is_not_enqueued_again_by_the_reconciler_once_it_is_due(
        engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="flaky", job="fail", args={"message": "boom"}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(3600), max_retries=2, retry_backoff_seconds=60)
    run_now(task_id)
    engine.work()
    [failed] = executions(task_id)
    retry_id = next(m.decode() for m in connection.zrange(occ.SCHEDULED_KEY, 0, -1)
                    if occ.parse_job_id(m.decode()).attempt == 2)

    cancel("default", retry_id)
    report = reconcile(connection, now=failed.retry_at + timedelta(minutes=5))

    assert report["retries_enqueued"] == 0
    assert retry_id not in {m.decode() for m in connection.zrange(occ.SCHEDULED_KEY, 0, -1)}
    assert queued_ids(connection) == []
    assert [(r.attempt, r.status, r.trigger) for r in executions(task_id)] == [
        (1, "RETRYING", "MANUAL"), (2, "CANCELLED", "RETRY")]
