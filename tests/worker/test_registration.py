"""A Chime worker that Redis forgot (a restart, FLUSHALL) registers again, so `rq info` keeps seeing it; it checks
its registration on a timer (at most every REGISTRATION_CHECK_SECONDS), not with a SISMEMBER before every
dequeue. In process, the test's private redis-server."""
from __future__ import annotations

from typing import Any

import pytest
from rq import Worker, worker_registration

import scheduler.worker as worker_module
from scheduler.worker import REGISTRATION_CHECK_SECONDS, ChimeWorker


@pytest.fixture
def worker(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(worker_module, "_app", app)
    connection = app.extensions["redis"]
    born = ChimeWorker(["default"], connection=connection)
    born.register_birth()
    yield born
    born.register_death()


def forget_workers(connection: Any) -> None:
    connection.delete(worker_registration.REDIS_WORKER_KEYS)


def test_the_registration_is_checked_once_per_period_not_on_every_heartbeat(worker: Any) -> None:
    assert worker._registration_check_due(now=1000.0) is True
    assert worker._registration_check_due(now=1000.0 + REGISTRATION_CHECK_SECONDS / 2) is False
    assert worker._registration_check_due(now=1000.0 + REGISTRATION_CHECK_SECONDS) is True


def test_a_worker_redis_forgot_registers_again_at_its_next_check(worker: Any) -> None:
    connection = worker.connection
    worker.heartbeat()  # checked now: registered
    forget_workers(connection)

    worker.heartbeat()  # within the period: not checked, not registered yet
    assert [w.name for w in Worker.all(connection=connection)] == []

    worker._registration_checked_at -= REGISTRATION_CHECK_SECONDS  # the period has passed
    worker.heartbeat()
    assert [w.name for w in Worker.all(connection=connection)] == [worker.name]
