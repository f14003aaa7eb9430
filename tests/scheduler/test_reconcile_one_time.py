"""The reconciler and a ONE_TIME task caught between Redis and the database (no processes needed)."""
from __future__ import annotations

from typing import Any

import pytest
from rq.job import JobStatus

from chime import occurrence as occ
from scheduler.dispatch import ChimeScheduler
from scheduler.reconcile import reconcile
from tests.engine.helpers import create, executions, in_seconds
from chime.extensions import db
from chime.timeutil import utcnow


@pytest.fixture
def connection(app: Any) -> Any:
    return app.extensions["redis"]


def dequeue_as_a_worker_would(connection: Any) -> str:
    """Take the job off its queue and mark it started, before any Execution row exists."""
    job_id = connection.lpop("rq:queue:default").decode()
    connection.hset(occ.JOB_KEY.format(job_id=job_id), "status", JobStatus.STARTED.value)
    return job_id


def one_time_task_taken_by_a_worker(app: Any, connection: Any) -> tuple[int, str]:
    task_id = create(name="once", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(-1))
    ChimeScheduler(connection, app).dispatch_due(utcnow())
    return task_id, dequeue_as_a_worker_would(connection)


def test_a_one_time_run_a_worker_has_just_taken_is_not_recovered_a_second_time(app: Any, connection: Any) -> None:
    task_id, job_id = one_time_task_taken_by_a_worker(app, connection)

    report = reconcile(connection)

    assert report["one_time_recovered"] == 0
    assert connection.llen("rq:queue:default") == 0
    assert executions(task_id) == []


def test_a_one_time_run_lost_before_it_was_recorded_is_recovered(app: Any, connection: Any) -> None:
    task_id, job_id = one_time_task_taken_by_a_worker(app, connection)
    connection.delete(occ.JOB_KEY.format(job_id=job_id))  # its worker died and the job expired

    report = reconcile(connection)
    db.session.rollback()

    assert report["one_time_recovered"] == 1
    assert connection.lrange("rq:queue:default", 0, -1) == [job_id.encode()]
