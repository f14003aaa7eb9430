"""Run controls in the admin, on SQLite and Postgres: a failed run's traceback on its page, its "Retry now"
button, and the task page's "Run with arguments…" form."""
from __future__ import annotations

from typing import Any

from rq.job import Job

from chime.enums import Role
from chime.extensions import db
from chime.models import Task
from scheduler.boundary import PlainPickleSerializer
from tests.admin.conftest import AdminClient, add_execution, add_task, sign_in
from webapp.auth import create_user


def queued(redis_client: Any) -> list[str]:
    return [job_id.decode() for job_id in redis_client.lrange("rq:queue:default", 0, -1)]


def test_a_failed_runs_page_shows_its_traceback_escaped(admin: AdminClient) -> None:
    task = add_task()
    run = add_execution(task, "FAILED", message="RuntimeError: <b>boom</b>",
                        traceback='Traceback (most recent call last):\n  File "x.py", line 1, in job\nRuntimeError: <b>boom</b>\n')
    html = admin.html(f"/logs/{run.id}")
    assert "<h2 id=\"traceback-title\">Traceback</h2>" in html
    assert "RuntimeError: &lt;b&gt;boom&lt;/b&gt;" in html and "<b>boom</b>" not in html


def test_a_run_without_a_traceback_shows_no_traceback_section(admin: AdminClient) -> None:
    run = add_execution(add_task(), "SUCCESS")
    assert "traceback-title" not in admin.html(f"/logs/{run.id}")


def test_retry_now_on_a_failed_run_queues_its_next_attempt_and_says_so(admin: AdminClient, redis_client: Any) -> None:
    task = add_task()
    run = add_execution(task, "FAILED")
    assert "data-retry-run" in admin.html(f"/logs/{run.id}")
    response = admin.post(f"/logs/{run.id}/retry")
    assert response.status_code == 302 and response.headers["Location"] == f"/logs/{run.id}"
    [job_id] = queued(redis_client)
    assert job_id.endswith("-2")  # attempt 2 of the same occurrence
    page = admin.html(f"/logs/{run.id}")
    assert "attempt 2 queued" in page
    again = admin.post(f"/logs/{run.id}/retry")
    assert again.status_code == 302
    assert "already has a retry queued" in admin.html(f"/logs/{run.id}")
    assert len(queued(redis_client)) == 1


def test_no_retry_button_on_a_run_that_succeeded_or_was_already_retried(admin: AdminClient) -> None:
    task = add_task()
    succeeded = add_execution(task, "SUCCESS", minutes_ago=30)
    first = add_execution(task, "FAILED", minutes_ago=10)
    db.session.add(first.__class__(task_id=task.id, task_name=task.name, status="FAILED", attempt=2, trigger="RETRY",
                                   scheduled_for=first.scheduled_for, message=""))
    db.session.commit()
    assert "data-retry-run" not in admin.html(f"/logs/{succeeded.id}")
    assert "data-retry-run" not in admin.html(f"/logs/{first.id}")


def test_a_viewer_sees_no_retry_button_and_may_not_retry(app: Any, client: Any, redis_client: Any) -> None:
    run = add_execution(add_task(), "FAILED")
    create_user("watcher", "a long enough password", role=Role.VIEWER)
    assert sign_in(client, "watcher", "a long enough password").status_code == 302
    viewer = AdminClient(client)
    assert "data-retry-run" not in viewer.html(f"/logs/{run.id}")
    assert viewer.post(f"/logs/{run.id}/retry").status_code == 403
    assert queued(redis_client) == []


def test_run_with_arguments_form_is_prefilled_with_the_tasks_arguments(admin: AdminClient) -> None:
    task = add_task(args={"message": "hi"})
    html = admin.html(f"/tasks/{task.id}")
    assert "Run with arguments…" in html
    assert '<textarea id="run-args" name="args"' in html and "&#34;message&#34;: &#34;hi&#34;" in html


def test_run_with_arguments_queues_a_run_with_them_and_keeps_the_tasks(admin: AdminClient, redis_client: Any) -> None:
    task = add_task(args={"message": "hi"})
    response = admin.post(f"/tasks/{task.id}/run", {"args": '{"message": "from the form"}'})
    assert response.status_code == 302
    [job_id] = queued(redis_client)
    assert Job.fetch(job_id, connection=redis_client, serializer=PlainPickleSerializer).kwargs["args"] == \
        {"message": "from the form"}
    assert "with the arguments given" in admin.html(f"/tasks/{task.id}")
    db.session.expire_all()
    assert db.session.get(Task, task.id).args == {"message": "hi"}


def test_run_with_bad_arguments_queues_nothing_and_says_why(admin: AdminClient, redis_client: Any) -> None:
    task = add_task(args={"message": "hi"})
    admin.post(f"/tasks/{task.id}/run", {"args": "{not json"})
    assert "args: is not valid JSON" in admin.html(f"/tasks/{task.id}")
    admin.post(f"/tasks/{task.id}/run", {"args": '{"mesage": "typo"}'})
    assert "args.mesage: unknown argument" in admin.html(f"/tasks/{task.id}")
    assert queued(redis_client) == []
