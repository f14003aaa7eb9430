"""The reconciler reads and repairs in batches; a batch's edges lose nothing and a task deleted mid-pass
gets nothing back. Real scheduler state (tasks made by the services), the suite's redis-server, SQLite and
Postgres."""
from __future__ import annotations

from typing import Any

import pytest

from chime import occurrence as occ
from chime import database, services
from chime.unit_of_work import unit_of_work
from scheduler import reconcile as reconcile_module
from scheduler.reconcile import reconcile
from tests.engine.helpers import create

BATCH = 2


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_BATCH", "DB_BATCH", "REPAIR_BATCH", "REPAIRS_PER_CALL"):
        monkeypatch.setattr(reconcile_module, name, BATCH)
    monkeypatch.setattr(database, "IN_LIST_BATCH", BATCH)  # SQLite's IN lists (Postgres takes one array)


def job_hash(connection: Any, job_id: str) -> dict[bytes, bytes]:
    """A job hash without its creation time (the restored one is made later)."""
    fields = connection.hgetall(occ.job_key(job_id))
    fields.pop(b"created_at", None)
    return fields


def lose(connection: Any, task_id: int) -> str:
    """Take a task's pending occurrence out of the schedule and its hash with it, as a lost write would."""
    job_id = occ.pending_job_id(connection, task_id)
    connection.zrem(occ.SCHEDULED_KEY, job_id)
    connection.delete(occ.job_key(job_id))
    return job_id


def test_a_lost_occurrence_in_every_batch_comes_back_as_the_engine_wrote_it(
        app: Any, connection: Any, small_batches: None) -> None:
    tasks = [create(name=f"hourly-{n}", interval_seconds=3600) for n in range(2 * BATCH + 1)]  # 3 batches
    pending = {task_id: occ.pending_job_id(connection, task_id) for task_id in tasks}
    written = {task_id: job_hash(connection, job_id) for task_id, job_id in pending.items()}
    for task_id in tasks[::BATCH]:  # the first of each batch
        lose(connection, task_id)
    connection.delete(occ.job_key(pending[tasks[1]]))  # a hash lost, its entry in the schedule kept

    report = reconcile(connection)

    assert (report["pending_restored"], report["stale_replaced"], report["orphans_removed"]) == (3, 1, 0)
    assert {task_id: occ.pending_job_id(connection, task_id) for task_id in tasks} == pending
    assert {task_id: job_hash(connection, job_id) for task_id, job_id in pending.items()} == written
    assert connection.zcard(occ.SCHEDULED_KEY) == len(tasks)
    assert reconcile(connection)["pending_restored"] == 0


def test_after_a_redis_loss_every_task_of_every_batch_gets_its_occurrence_back(
        app: Any, connection: Any, small_batches: None) -> None:
    tasks = [create(name=f"hourly-{n}", interval_seconds=3600) for n in range(2 * BATCH + 1)]
    pending = {task_id: occ.pending_job_id(connection, task_id) for task_id in tasks}
    connection.flushall()

    report = reconcile(connection)

    assert report["pending_restored"] == len(tasks)
    assert {task_id: occ.pending_job_id(connection, task_id) for task_id in tasks} == pending


def test_a_task_deleted_while_a_pass_runs_gets_no_occurrence_back(
        app: Any, connection: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    kept, doomed = create(name="kept", interval_seconds=3600), create(name="doomed", interval_seconds=3600)
    connection.flushall()
    read = reconcile_module.read_redis

    def read_then_delete(connection: Any) -> Any:
        view = read(connection)  # the pass has read every task and Redis
        with unit_of_work():
            services.delete_task(services.get_task(doomed))
        return view

    monkeypatch.setattr(reconcile_module, "read_redis", read_then_delete)
    report = reconcile(connection)

    assert report["pending_restored"] == 1
    assert occ.pending_job_id(connection, kept) is not None
    assert occ.pending_job_id(connection, doomed) is None
    assert [job_id for job_id in connection.zrange(occ.SCHEDULED_KEY, 0, -1)
            if occ.parse_job_id(job_id.decode()).task_id == doomed] == []
