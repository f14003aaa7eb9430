"""Exactly one recorded outcome per occurrence and attempt, when something else closes or claims the run first.

The executor records a run's end with one conditional UPDATE (the row only if it is still RUNNING), not by
reading and locking the row first. These tests make the other side win: the reconciler closes the run as
lost while its job still runs, and a job delivered twice. In process, real Redis, SQLite and Postgres.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import jobs.registry as registry
from chime.extensions import db
from chime.redis_keys import EXECUTIONS_METRIC_KEY, LIVENESS_SINCE_KEY, queue_key
from chime.timeutil import utcnow
from scheduler.reconcile import reconcile
from tests.engine.helpers import create, executions, in_seconds, notifications, run_now, task
from tests.engine.inprocess.engine import InProcessEngine

pytestmark = pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)


def reconcile_from_elsewhere(app: Any, connection: Any) -> None:
    """A reconcile pass in another thread with its own session (the reconciler's own worker), run as if
    half a minute had passed with no liveness beat from the run: it finds the run lost and closes it."""
    def other_worker() -> None:
        with app.app_context():
            try:
                reconcile(connection, now=utcnow() + timedelta(seconds=30))
            finally:
                db.session.remove()

    thread = threading.Thread(target=other_worker)
    thread.start()
    thread.join()


@pytest.fixture
def closed_under_it(engine_app: Any, connection: Any) -> Iterator[None]:
    """A job during which the reconciler closes its run as lost (its key has not been beaten: the run is
    shorter than a beat), then returns normally: its success comes too late."""
    def closed_while_running() -> str:
        connection.set(LIVENESS_SINCE_KEY, f"{connection.info('server')['run_id']}@{utcnow().timestamp() - 3600}")
        reconcile_from_elsewhere(engine_app, connection)
        return "done, too late"

    with registry.temporary(registry.make_spec(closed_while_running, name="closed_while_running")):
        yield


def test_a_run_the_reconciler_closed_while_it_ran_keeps_that_outcome_and_records_nothing_more(
        engine: InProcessEngine, connection: Any, closed_under_it: None) -> None:
    task_id = create(name="overtaken", job="closed_while_running", schedule_type="ONE_TIME", interval_seconds=None,
                     run_at=in_seconds(3600), max_retries=0, notify="ALWAYS")
    run_now(task_id)

    engine.work()

    [run] = executions(task_id)
    assert (run.attempt, run.status, run.message, run.result) == (1, "FAILED", "worker lost", None)
    assert (task(task_id).status, task(task_id).last_status) == ("FAILED", "FAILED")
    assert [n.title for n in notifications(task_id)] == ["'overtaken' failed"]
    assert connection.hget(EXECUTIONS_METRIC_KEY, "SUCCESS") is None  # the late success is not counted either


def test_a_job_delivered_twice_is_run_and_recorded_once(engine: InProcessEngine, connection: Any) -> None:
    task_id = create(name="twice", schedule_type="ONE_TIME", interval_seconds=None, run_at=in_seconds(3600),
                     overlap="SKIP", notify="ALWAYS")
    job_id = run_now(task_id)
    connection.rpush(queue_key("default"), job_id)  # the same job on its queue a second time

    engine.work()

    [run] = executions(task_id)
    assert (run.attempt, run.status) == (1, "SUCCESS")
    assert [n.title for n in notifications(task_id)] == ["'twice' succeeded"]
    assert int(connection.hget(EXECUTIONS_METRIC_KEY, "SUCCESS")) == 1
