"""A paused task resumes by itself at its resume time: the scheduler's housekeeping does it, as the engine."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from chime import controls
from chime import occurrence as occ
from chime.enums import Source
from chime.extensions import db
from chime.models import AuditEvent, Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.dispatch import ChimeScheduler
from tests.engine.helpers import create


def pause(task_id: int, resume_at: Any) -> None:
    with unit_of_work():
        controls.pause_task(db.session.get(Task, task_id), {"reason": "maintenance", "resume_at": resume_at})


def test_resume_due_tasks_resumes_a_task_at_its_resume_time_and_not_before(app: Any) -> None:
    connection = app.extensions["redis"]
    task_id = create(name="nightly", interval_seconds=60)
    resume_at = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    pause(task_id, resume_at)

    with unit_of_work():
        early = controls.resume_due_tasks(resume_at - timedelta(seconds=1))
    assert early == [] and db.session.get(Task, task_id).enabled is False
    with unit_of_work():
        on_time = controls.resume_due_tasks(resume_at)

    assert on_time == [task_id]
    task = db.session.get(Task, task_id)
    assert task.enabled is True and task.paused_reason is None and task.resume_at is None
    assert occ.pending_job_id(connection, task_id) is not None
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert (event.action, event.actor_name, event.source) == ("resume", "chime", Source.ENGINE)
    assert event.details["automatic"] is True and event.details["reason"] == "maintenance"


def test_a_task_paused_without_a_resume_time_stays_paused(app: Any) -> None:
    task_id = create(name="manual", interval_seconds=60)
    pause(task_id, None)

    with unit_of_work():
        resumed = controls.resume_due_tasks(utcnow() + timedelta(days=3650))

    assert resumed == [] and db.session.get(Task, task_id).paused_reason == "maintenance"


def test_the_scheduler_resumes_a_task_whose_resume_time_has_passed_within_its_next_pass(app: Any) -> None:
    connection = app.extensions["redis"]
    task_id = create(name="nightly", interval_seconds=60)
    pause(task_id, utcnow() + timedelta(hours=1))
    with unit_of_work():  # the hour has passed
        db.session.execute(update(Task).where(Task.id == task_id).values(resume_at=utcnow() - timedelta(seconds=1)))
    db.session.rollback()

    ChimeScheduler(connection, app).tick()  # one pass of the real loop: housekeeping first

    db.session.expire_all()
    task = db.session.get(Task, task_id)
    assert task.enabled is True and task.paused_at is None
    assert occ.pending_job_id(connection, task_id) is not None
