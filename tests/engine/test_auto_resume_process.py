"""The Procfile's scheduler process resumes a paused task by itself at its resume time, with nobody in the admin."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from chime import controls
from chime.enums import Source
from chime.extensions import db
from chime.models import AuditEvent, Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create, task, toggle, with_status
from tests.engine_fixtures import Engine, wait_for

pytestmark = pytest.mark.engine


def test_the_scheduler_process_resumes_a_paused_task_at_its_resume_time_and_it_runs_again(
        engine: Engine, engine_app: Any) -> None:
    engine.start_engine(engine_app.extensions["redis"])
    task_id = create(name="paused", interval_seconds=1)
    with unit_of_work():
        controls.pause_task(db.session.get(Task, task_id),
                            {"reason": "maintenance", "resume_at": utcnow() + timedelta(seconds=3)})
    db.session.rollback()
    assert task(task_id).enabled is False
    runs_while_paused = len(with_status(task_id, "SUCCESS"))

    wait_for(lambda: task(task_id).enabled, 30, "the scheduler to resume the task", engine)
    wait_for(lambda: len(with_status(task_id, "SUCCESS")) > runs_while_paused, 30, "a run after resuming", engine)
    toggle(task_id)

    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "resume")).one()
    assert (event.actor_name, event.source, event.details["automatic"]) == ("chime", Source.ENGINE, True)
    assert task(task_id).paused_reason is None
