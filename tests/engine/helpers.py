"""Helpers for engine tests: create tasks through the services, read the log fresh."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from chime import services
from chime.extensions import db
from chime.models import Delivery, Execution, Notification, Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work


def create(**fields: Any) -> int:
    """Create a task through the same service the API uses; return its id."""
    payload = {"job": "noop", "args": {}, "schedule_type": "INTERVAL", "interval_seconds": 1, **fields}
    with unit_of_work():
        task = services.create_task(payload, allow_shell=False)
    task_id = task.id
    db.session.rollback()
    return task_id


def executions(task_id: int) -> list[Execution]:
    """Return the task's executions in id order, read in a short transaction."""
    rows = db.session.scalars(select(Execution).where(Execution.task_id == task_id).order_by(Execution.id)).all()
    db.session.expunge_all()
    db.session.rollback()
    return list(rows)


def with_status(task_id: int, status: str) -> list[Execution]:
    return [e for e in executions(task_id) if e.status == status]


def deliveries() -> list[Delivery]:
    """The alert delivery rows now, detached, in a short read: the transaction ends at once (SQLite's
    BEGIN IMMEDIATE would otherwise hold the write lock the workers need)."""
    db.session.expire_all()
    rows = list(db.session.scalars(select(Delivery).order_by(Delivery.id)))
    for row in rows:
        db.session.expunge(row)
    db.session.rollback()
    return rows


def notifications(task_id: int) -> list[Notification]:
    rows = db.session.scalars(select(Notification).where(Notification.task_id == task_id)
                              .order_by(Notification.id)).all()
    db.session.expunge_all()
    db.session.rollback()
    return list(rows)


def task(task_id: int) -> Task:
    row = db.session.get(Task, task_id)
    db.session.expunge_all()
    db.session.rollback()
    return row


def in_seconds(seconds: float) -> str:
    return (utcnow() + timedelta(seconds=seconds)).isoformat()


def toggle(task_id: int) -> None:
    with unit_of_work():
        services.toggle_task(services.get_task(task_id))
    db.session.rollback()


def run_now(task_id: int) -> str:
    job_id = services.run_task_now(services.get_task(task_id))
    db.session.rollback()
    return job_id


def overlapping(runs: list[Execution]) -> list[tuple[int, int]]:
    """Return pairs of executions whose [started_at, finished_at] intervals overlap."""
    spans = sorted((e.started_at, e.finished_at or datetime.max.replace(tzinfo=e.started_at.tzinfo), e.id) for e in runs)
    return [(a[2], b[2]) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]
