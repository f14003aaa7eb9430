"""Log retention: prune(), the prune-logs command and run_prune (the hourly job: tests/scheduler/test_periodic.py)."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select

import scheduler.worker
from chime import services
from chime.extensions import db
from chime.models import Execution, Notification, Task
from scheduler.retention import prune, run_prune
from chime.unit_of_work import unit_of_work

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)
_slots = itertools.count()


def make_task(name: str = "ping", **fields: Any) -> Task:
    payload = {"name": name, "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
               "interval_seconds": 60, **fields}
    with unit_of_work():
        return services.create_task(payload, allow_shell=False)


def execution(task: Task | None, created_at: datetime, *, status: str = "SUCCESS", trigger: str = "SCHEDULE",
              scheduled_for: datetime | None = None) -> Execution:
    row = Execution(task_id=task.id if task else None, task_name=task.name if task else "gone", status=status,
                    trigger=trigger, attempt=1,
                    scheduled_for=scheduled_for or created_at + timedelta(seconds=next(_slots)),
                    created_at=created_at)
    db.session.add(row)
    db.session.commit()
    return row


def notification(created_at: datetime, *, read: bool, execution_id: int | None = None) -> Notification:
    row = Notification(level="INFO", title="t", read=read, created_at=created_at, execution_id=execution_id)
    db.session.add(row)
    db.session.commit()
    return row


def ids(model: Any) -> set[int]:
    db.session.expire_all()
    return set(db.session.scalars(select(model.id)))


def test_prune_deletes_only_old_rows_and_keeps_unread_notifications(app: Any) -> None:
    task = make_task()
    old_run, old_orphan = execution(task, OLD), execution(None, OLD)
    recent_run = execution(task, RECENT)
    old_read = notification(OLD, read=True)
    old_unread = notification(OLD, read=False, execution_id=old_run.id)
    recent_read = notification(RECENT, read=True, execution_id=recent_run.id)
    notification(OLD, read=True, execution_id=old_orphan.id)
    old_unread_id, recent_read_id, recent_run_id = old_unread.id, recent_read.id, recent_run.id
    assert old_read.id and old_run.id

    report = prune(NOW, 30)

    assert report == {"executions_deleted": 2, "notifications_deleted": 2,
                      "cutoff": (NOW - timedelta(days=30)).isoformat()}
    assert ids(Execution) == {recent_run_id}
    assert ids(Notification) == {old_unread_id, recent_read_id}
    kept = db.session.get(Notification, old_unread_id)
    assert kept.execution_id is None  # its execution went; the notification stays, unlinked
    assert db.session.get(Notification, recent_read_id).execution_id == recent_run_id
    assert db.session.get(Task, task.id) is not None
    assert prune(NOW, 30) == {**report, "executions_deleted": 0, "notifications_deleted": 0}


def test_prune_keeps_running_executions_and_the_run_that_marks_a_one_time_task_done(app: Any) -> None:
    run_at = OLD - timedelta(hours=1)
    once = make_task("once", schedule_type="ONE_TIME", interval_seconds=None, run_at=run_at.isoformat())
    marker = execution(once, OLD, scheduled_for=run_at)
    manual_id = execution(once, OLD, trigger="MANUAL").id
    running = execution(make_task(), OLD, status="RUNNING")
    assert prune(NOW, 30)["executions_deleted"] == 1
    remaining = ids(Execution)
    assert remaining == {marker.id, running.id} and manual_id not in remaining
    assert services.has_scheduled_run(db.session.get(Task, once.id))


def test_prune_works_in_batches(app: Any) -> None:
    task = make_task()
    old = [execution(task, OLD - timedelta(minutes=i)) for i in range(5)]
    for row in old[:3]:
        notification(OLD, read=False, execution_id=row.id)
    for _ in range(3):
        notification(OLD, read=True)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = prune(NOW, 30, batch_size=2)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert report["executions_deleted"] == 5 and report["notifications_deleted"] == 3
    assert sum("executions" in s for s in statements) == 3   # 2 + 2 + 1
    assert sum("notifications" in s for s in statements) == 2  # 2 + 1
    assert ids(Execution) == set()
    assert db.session.scalar(select(func.count()).select_from(Notification)) == 3


def test_prune_rejects_bad_arguments(app: Any) -> None:
    with pytest.raises(ValueError):
        prune(NOW, -1)
    with pytest.raises(ValueError):
        prune(NOW, 30, batch_size=0)


def test_prune_logs_command(app: Any) -> None:
    task = make_task()
    execution(task, datetime.now(timezone.utc) - timedelta(days=40))
    week_old = execution(task, datetime.now(timezone.utc) - timedelta(days=7))
    notification(datetime.now(timezone.utc) - timedelta(days=40), read=True)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["prune-logs"])  # LOG_RETENTION_DAYS: 30 by default
    assert result.exit_code == 0, result.output
    assert "Deleted 1 execution(s) and 1 read notification(s)" in result.output and "(30 days)" in result.output
    assert ids(Execution) == {week_old.id}

    result = runner.invoke(args=["prune-logs", "--days", "5", "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "Deleted 1 execution(s) and 0 read notification(s)" in result.output
    assert ids(Execution) == set()

    assert runner.invoke(args=["prune-logs", "--days", "-1"]).exit_code == 2
    app.config["LOG_RETENTION_DAYS"] = 0
    result = runner.invoke(args=["prune-logs"])
    assert result.exit_code == 1 and "Log retention is off" in result.output


def test_run_prune_uses_log_retention_days(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler.worker, "_app", app)
    task = make_task()
    execution(task, datetime.now(timezone.utc) - timedelta(days=3))
    app.config["LOG_RETENTION_DAYS"] = 0
    assert run_prune()["skipped"] is True
    app.config["LOG_RETENTION_DAYS"] = 2
    assert run_prune()["executions_deleted"] == 1
    assert ids(Execution) == set()
