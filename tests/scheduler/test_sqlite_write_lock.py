"""No database transaction stays open across anything that can block.

On SQLite one writer holds the whole database: a worker that kept a transaction open while it
called Redis, started its liveness beat or ran the job would stop every other writer for as long
as it was paused there (GC, SIGSTOP, a slow disk). These tests look at SQLite's write lock from a
second connection at each of those moments.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

import scheduler.executor as executor
import scheduler.reconcile as reconcile_module
from scheduler import metrics
from chime import occurrence as occ
from scheduler.dispatch import ChimeScheduler
from tests.engine.helpers import create, executions
from chime.extensions import db
from chime.timeutil import utcnow


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'chime.sqlite3'}"


def write_lock_is_free(app: Any) -> bool:
    """Say whether another connection could start writing right now (without waiting)."""
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def probing(app: Any, seen: list[tuple[str, bool]], name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def probe(*args: Any, **kwargs: Any) -> Any:
        seen.append((name, write_lock_is_free(app)))
        return call(*args, **kwargs)

    return probe


def test_a_worker_holds_no_write_lock_while_it_beats_runs_the_job_or_calls_redis(
        app: Any, connection: Any, work: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool]] = []
    task_id = create(name="fails-once", job="fail", args={"times": 1}, interval_seconds=3600,
                     retry_backoff_seconds=60)
    start = utcnow()
    ChimeScheduler(connection, app).dispatch_due(start + timedelta(seconds=3601))

    @contextmanager
    def probed_liveness(execution_id: int, *args: Any) -> Any:
        seen.append(("liveness", write_lock_is_free(app)))
        with original_liveness(execution_id, *args):
            yield

    original_liveness = executor.liveness
    monkeypatch.setattr(executor, "liveness", probed_liveness)
    monkeypatch.setattr(executor.registry, "run", probing(app, seen, "job", executor.registry.run))
    monkeypatch.setattr(metrics, "add_execution", probing(app, seen, "metrics", metrics.add_execution))
    monkeypatch.setattr(occ, "schedule_at", probing(app, seen, "retry", occ.schedule_at))
    work()

    assert [e.status for e in executions(task_id)] == ["RETRYING"]
    assert seen == [("liveness", True), ("job", True), ("metrics", True), ("retry", True)]


def test_a_reconcile_pass_holds_no_write_lock_while_it_calls_redis(
        app: Any, connection: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, bool]] = []
    create(name="hourly", interval_seconds=3600)
    connection.flushall()  # something to repair
    for name in ("read_redis", "remove_orphans", "active_task_ids"):
        monkeypatch.setattr(reconcile_module, name, probing(app, seen, name, getattr(reconcile_module, name)))
    monkeypatch.setattr(occ, "repair_pending_many", probing(app, seen, "repair", occ.repair_pending_many))

    report = reconcile_module.reconcile(connection)

    assert report["pending_restored"] == 1
    assert all(free for _, free in seen) and len(seen) == 4, seen
