"""Redis is an execution boundary: a Chime worker runs Chime's own jobs and refuses everything else.

An attacker who can write to Redis is played by RQ's own client with its default (pickle) serializer,
exactly as `Queue.enqueue("subprocess.check_output", ...)` would be typed; the worker is the Procfile's
ChimeWorker, in process, on a real redis-server, in burst mode.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from rq import Callback, Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

import scheduler.worker as worker_module
from scheduler.boundary import ENTRY_POINTS, ChimeJob, PlainPickleSerializer
from scheduler.worker import ChimeWorker
from tests.engine.helpers import create, executions
from tests.engine.inprocess.engine import work_off
from chime import services
from chime.extensions import db
from chime.models import Task


class RunsOnLoad:
    """An object whose unpickling runs `touch <marker>` (pickle calls os.system while loading it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def connection(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(worker_module, "_app", app)  # the worker uses the test's app, not one from the environment
    return app.extensions["redis"]


def work(connection: Any) -> None:
    """Run a Chime worker over every queue until they are empty."""
    work_off(connection)


def failure_reason(connection: Any, job_id: str) -> str:
    assert job_id in FailedJobRegistry("default", connection=connection).get_job_ids()
    job = Job.fetch(job_id, connection=connection, serializer=PlainPickleSerializer)
    assert job.get_status() == JobStatus.FAILED
    return job.latest_result().exc_string


@pytest.mark.parametrize("func,args", [
    ("os.system", "touch {marker}"),
    ("subprocess.check_output", ["touch", "{marker}"]),
    ("builtins.exec", "open('{marker}', 'w').close()"),
])
def test_a_foreign_function_is_not_run_and_fails_as_refused(
        connection: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, func: str, args: Any) -> None:
    marker = tmp_path / "marker"
    argument = [a.format(marker=marker) for a in args] if isinstance(args, list) else args.format(marker=marker)
    job = Queue("default", connection=connection).enqueue(func, argument)

    with caplog.at_level(logging.WARNING):
        work(connection)

    assert not marker.exists()
    assert failure_reason(connection, job.id) == f"refused: {func!r} is not a Chime job entry point"
    assert any(r.levelno == logging.WARNING and "not a Chime job entry point" in r.getMessage()
               for r in caplog.records)


def test_a_payload_that_runs_code_while_unpickled_is_refused_unread(connection: Any, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    job = Queue("default", connection=connection).enqueue("scheduler.executor.execute", RunsOnLoad(marker))

    work(connection)

    assert not marker.exists()
    reason = failure_reason(connection, job.id)
    assert reason.startswith(f"refused: job {job.id}'s payload is not plain data (refused to load posix.system")


def test_meta_that_runs_code_while_unpickled_is_never_loaded(connection: Any, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    job = Queue("default", connection=connection).enqueue("os.getpid", meta={"x": RunsOnLoad(marker)})

    work(connection)

    assert not marker.exists()
    assert failure_reason(connection, job.id) == "refused: 'os.getpid' is not a Chime job entry point"


def test_a_chime_entry_point_with_a_foreign_callback_is_refused(connection: Any, tmp_path: Path) -> None:
    task_id = create(name="cb", job="echo", args={"message": "hi"})
    job = Queue("default", connection=connection).enqueue(
        "scheduler.executor.execute", task_id=task_id, trigger="MANUAL", on_success=Callback("os.system"))

    work(connection)

    assert failure_reason(connection, job.id) == "refused: callback 'os.system' is not a Chime job entry point"
    assert executions(task_id) == []


def test_a_job_queued_by_an_earlier_release_under_the_old_entry_point_name_still_runs(connection: Any) -> None:
    # Before the packages were layered the executor was jobs.executor.execute: a job written to Redis then
    # and still waiting after the upgrade is run by today's executor, not refused or lost.
    task_id = create(name="old-name", job="echo", args={"message": "hi"})
    job_id = services.run_task_now(db.session.get(Task, task_id))
    db.session.rollback()
    job = Job.fetch(job_id, connection=connection, serializer=PlainPickleSerializer)
    func_name, instance, args, kwargs = PlainPickleSerializer.loads(job.data)
    connection.hset(job.key, "data", PlainPickleSerializer.dumps(("jobs.executor.execute", instance, args, kwargs)))

    work(connection)

    assert [row.status for row in executions(task_id)] == ["SUCCESS"]


def test_a_callback_a_job_names_is_never_imported_by_any_path() -> None:
    job = ChimeJob.create("scheduler.executor.execute", on_success=Callback("os.system"),
                          on_failure=Callback("os.system"), on_stopped=Callback("os.system"),
                          connection=fakeredis.FakeRedis(), serializer=PlainPickleSerializer)
    assert (job.success_callback, job.failure_callback, job.stopped_callback) == (None, None, None)
    with pytest.raises(Exception, match="refused: callback 'os.system'"):
        job.func  # noqa: B018


def test_chimes_own_job_still_runs_next_to_refused_ones(connection: Any, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    queue = Queue("default", connection=connection)
    queue.enqueue("os.system", f"touch {marker}")
    task_id = create(name="echo", job="echo", args={"message": "hi"})
    services.run_task_now(db.session.get(Task, task_id))
    db.session.rollback()

    work(connection)

    assert not marker.exists()
    assert [e.status for e in executions(task_id)] == ["SUCCESS"]


def test_the_worker_reads_jobs_safely_whatever_rq_worker_passes(connection: Any) -> None:
    queues = [Queue(name, connection=connection) for name in ("high", "default", "low")]  # as `rq worker` builds them
    worker = ChimeWorker(queues, connection=connection, job_class=Job, serializer=pickle)
    assert worker.job_class is ChimeJob and worker.serializer is PlainPickleSerializer
    assert [(q.name, q.job_class, q.serializer) for q in worker.queues] == [
        (name, ChimeJob, PlainPickleSerializer) for name in ("high", "default", "low")]


def test_a_worker_freezes_what_its_start_up_loaded_after_loading_the_job_modules(
        connection: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import chime.app

    events: list[str] = []
    monkeypatch.setattr(worker_module, "preload_job_modules", lambda: events.append("preload"))
    monkeypatch.setattr(gc, "freeze", lambda: events.append("freeze"))
    monkeypatch.setattr(chime.app, "_start_up_frozen", False)  # as in a new worker process

    ChimeWorker(["default"], connection=connection)
    ChimeWorker(["default"], connection=connection)

    assert events == ["preload", "freeze", "preload"]  # once per process: what is frozen is never freed


def test_every_function_chime_puts_on_a_queue_is_an_entry_point(connection: Any) -> None:
    from chime import occurrence as occ
    from chime.timeutil import utcnow
    from scheduler import periodic

    settings = {"RECONCILE_INTERVAL_SECONDS": 60, "RETENTION_INTERVAL_SECONDS": 3600}
    assert periodic.push_due(connection, periodic.periodic_jobs(settings), utcnow()) == ["reconcile", "prune-logs"]
    task_id = create(name="any")
    services.run_task_now(db.session.get(Task, task_id))
    db.session.rollback()
    names = {Job.fetch(key.decode().removeprefix("rq:job:"), connection=connection).func_name
             for key in connection.scan_iter("rq:job:*")}
    assert names == {occ.EXECUTE_FUNC, "scheduler.reconcile.run_reconcile", "scheduler.retention.run_prune"}
    assert names <= ENTRY_POINTS
