"""`flask runs cancel` and `flask runs stop` (issue 15), on SQLite and Postgres with a real Redis."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chime import services
from chime.extensions import db
from chime.models import AuditEvent, Execution, Task
from chime.redis_keys import queue_key, stop_key
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work


def make(name: str = "nightly") -> Task:
    with unit_of_work():
        return services.create_task({"name": name, "job": "noop", "schedule_type": "INTERVAL",
                                     "interval_seconds": 3600}, allow_shell=False)


def cli(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=list(args))


def test_runs_cancel_takes_a_queued_run_off_its_queue_and_records_it(app: Any, redis_client: Any) -> None:
    task = make()
    job_id = services.run_task_now(task)

    result = cli(app, "runs", "cancel", "default", job_id)

    assert result.exit_code == 0, result.output
    assert f"Job {job_id} of task {task.id} 'nightly' cancelled" in result.output
    assert redis_client.llen(queue_key("default")) == 0
    [run] = db.session.scalars(select(Execution)).all()
    assert (run.status, run.job_id) == ("CANCELLED", job_id)
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "cancel")).all()
    assert event.source == "cli"


def test_runs_cancel_of_an_unknown_job_fails_with_a_message(app: Any) -> None:
    result = cli(app, "runs", "cancel", "default", "chime-1-1-1")

    assert result.exit_code == 1 and "No waiting job with id 'chime-1-1-1' was found" in result.output


def test_runs_stop_asks_the_worker_and_refuses_a_run_that_has_ended(app: Any, redis_client: Any) -> None:
    task = make()
    now = utcnow()
    running = Execution(task_id=task.id, task_name=task.name, status="RUNNING", attempt=1, trigger="MANUAL",
                        scheduled_for=now, started_at=now, job_id="chime-x-m")
    ended = Execution(task_id=task.id, task_name=task.name, status="SUCCESS", attempt=2, trigger="MANUAL",
                      scheduled_for=now, started_at=now, finished_at=now, job_id="chime-y-m")
    db.session.add_all([running, ended])
    db.session.commit()

    stopped, refused = cli(app, "runs", "stop", str(running.id)), cli(app, "runs", "stop", str(ended.id))

    assert stopped.exit_code == 0 and "asked to stop" in stopped.output
    assert redis_client.get(stop_key(running.id)) is not None
    assert refused.exit_code == 1 and "is not running" in refused.output
    assert cli(app, "runs", "stop", "0").exit_code == 1
