"""`tasks pause` and `tasks resume` on the command line (SQLite and Postgres)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chime import services
from chime.extensions import db
from chime.models import AuditEvent, Task
from chime.unit_of_work import unit_of_work

INTERVAL = {"job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL", "interval_seconds": 60}


def make(name: str) -> int:
    with unit_of_work():
        return services.create_task({"name": name, **INTERVAL}, allow_shell=False).id


def cli(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def test_tasks_pause_with_a_reason_and_an_end_then_resume(app: Any) -> None:
    task_id = make("nightly")

    paused = cli(app, "tasks", "pause", str(task_id), "--reason", "migration", "--until", "2031-06-01T09:00:00+02:00")

    assert paused.exit_code == 0, paused.output
    assert "paused; resumes: 2031-06-01T07:00:00+00:00" in paused.output
    db.session.expire_all()
    task = db.session.get(Task, task_id)
    assert task.enabled is False and task.paused_reason == "migration" and task.paused_by.startswith("cli:")
    resumed = cli(app, "tasks", "resume", str(task_id))
    assert resumed.exit_code == 0 and "resumed; next run:" in resumed.output
    db.session.expire_all()
    assert db.session.get(Task, task_id).enabled is True
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(task_id))
                                 .order_by(AuditEvent.id)).all()
    assert actions[-2:] == ["pause", "resume"]


def test_tasks_pause_refuses_a_missing_reason_and_a_past_or_naive_end(app: Any) -> None:
    task_id = make("nightly")

    assert cli(app, "tasks", "pause", str(task_id)).exit_code == 2  # --reason is required
    past = cli(app, "tasks", "pause", str(task_id), "--reason", "x", "--until", "2001-01-01T00:00:00Z")
    naive = cli(app, "tasks", "pause", str(task_id), "--reason", "x", "--until", "2031-01-01T00:00:00")

    assert past.exit_code == 1 and "resume_at: must be in the future" in past.output
    assert naive.exit_code == 1 and "must include a UTC offset" in naive.output
    db.session.expire_all()
    assert db.session.get(Task, task_id).enabled is True
