"""The outbox row the executor writes in a run's record transaction (chime.rules.note_run), on SQLite and
Postgres: one row for a run that may raise an event while an enabled rule of the task, or a default rule,
exists; nothing for anything else."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from chime import rules
from chime.extensions import db
from chime.models import AlertOutbox, AlertRule, Channel, Execution, Task
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
OCCURRENCE = itertools.count(1)


def a_rule(task_id: int | None = None, enabled: bool = True) -> None:
    with unit_of_work():
        hook = Channel(name=f"hook-{next(OCCURRENCE)}", kind="webhook", config={"url": "http://127.0.0.1:9/x"},
                       secret_names=[])
        db.session.add(hook)
        db.session.flush()
        db.session.add(AlertRule(task_id=task_id, events=["failed"], channel_ids=[hook.id], enabled=enabled))


def record(task_id: int, status: str) -> int:
    """Record one run as the executor does (the task's previous last status decides); return its id."""
    with unit_of_work():
        task = db.session.get(Task, task_id)
        execution = Execution(task_id=task_id, task_name=task.name, status=status, attempt=1, trigger="SCHEDULE",
                              scheduled_for=T0 - timedelta(days=next(OCCURRENCE)), started_at=T0, finished_at=T0,
                              duration_ms=5)
        db.session.add(execution)
        db.session.flush()
        previous, task.last_status = task.last_status, status
        rules.note_run(task, execution, previous)
        return execution.id


def outbox() -> list[tuple[Any, ...]]:
    db.session.expire_all()
    return [tuple(row) for row in db.session.execute(
        select(AlertOutbox.task_id, AlertOutbox.execution_id, AlertOutbox.status, AlertOutbox.event)
        .order_by(AlertOutbox.id)).all()]


def test_a_failed_run_of_a_task_with_its_own_rule_writes_one_row_naming_the_run(app: Any) -> None:
    task_id = create(name="own")
    a_rule(task_id)
    execution_id = record(task_id, "FAILED")
    assert outbox() == [(task_id, execution_id, "FAILED", "failed")]


def test_a_default_rule_makes_every_task_write_its_failures(app: Any) -> None:
    first, second = create(name="first"), create(name="second")
    a_rule(None)
    one, two = record(first, "FAILED"), record(second, "FAILED")
    assert outbox() == [(first, one, "FAILED", "failed"), (second, two, "FAILED", "failed")]


def test_a_disabled_rule_or_another_tasks_rule_writes_nothing(app: Any) -> None:
    task_id, other = create(name="watched"), create(name="other")
    a_rule(task_id, enabled=False)
    a_rule(other)
    record(task_id, "FAILED")
    assert outbox() == []


def test_a_success_after_a_success_writes_nothing_even_with_a_rule(app: Any) -> None:
    task_id = create(name="healthy")
    a_rule(task_id)
    record(task_id, "SUCCESS")
    record(task_id, "SUCCESS")
    assert outbox() == []


def test_the_row_goes_with_the_record_transaction_when_it_rolls_back(app: Any) -> None:
    task_id = create(name="rolled back")
    a_rule(task_id)
    task = db.session.get(Task, task_id)
    execution = Execution(task_id=task_id, task_name=task.name, status="FAILED", attempt=1, trigger="SCHEDULE",
                          scheduled_for=T0, started_at=T0, finished_at=T0, duration_ms=5)
    db.session.add(execution)
    db.session.flush()
    rules.note_run(task, execution, None)
    db.session.rollback()
    assert outbox() == []
