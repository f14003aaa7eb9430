"""Every admin page renders for a signed-in user, needs a session, and escapes user data."""
from __future__ import annotations

from typing import Any

import pytest
from rq import Worker

from scheduler import health
from tests.admin.conftest import AdminClient, add_execution, add_notification, add_task
from chime.unit_of_work import unit_of_work

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def page_paths(task_id: int, execution_id: int) -> list[str]:
    return ["/", "/tasks", "/tasks/new", f"/tasks/{task_id}", f"/tasks/{task_id}/edit",
            f"/tasks/{task_id}/delete", "/logs", f"/logs/{execution_id}", "/notifications"]


def test_every_page_renders_for_a_signed_in_user(admin: AdminClient) -> None:
    task = add_task()
    execution = add_execution(task, "FAILED", message="boom")
    add_notification(task=task)
    for path in page_paths(task.id, execution.id):
        html = admin.html(path)
        assert 'data-bell' in html and "Times shown in" in html, path
        assert "Sign out" in html, path


def test_every_page_sends_anonymous_visitors_to_the_login_form(app: Any, client: Any) -> None:
    task = add_task()
    execution = add_execution(task)
    for path in page_paths(task.id, execution.id):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path
    assert client.get("/login").status_code == 200


def test_actions_need_a_session_too(app: Any, client: Any) -> None:
    task = add_task()
    from tests.admin.conftest import fresh_csrf

    token = fresh_csrf(client)
    for path in (f"/tasks/{task.id}/toggle", f"/tasks/{task.id}/run", f"/tasks/{task.id}/delete",
                 "/notifications/read-all"):
        response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_unknown_objects_are_404_pages(admin: AdminClient) -> None:
    for path in ("/tasks/999", "/tasks/999/edit", "/logs/999"):
        response = admin.get(path)
        assert response.status_code == 404, path
        assert "No task with id" in response.get_data(as_text=True) or "No execution" in response.get_data(as_text=True)


def test_posts_without_a_csrf_token_are_rejected(admin: AdminClient) -> None:
    task = add_task()
    for path, data in [("/tasks/new", {"name": "x"}), (f"/tasks/{task.id}/toggle", {}),
                       (f"/tasks/{task.id}/run", {}), (f"/tasks/{task.id}/delete", {}),
                       ("/notifications/read-all", {}), ("/logout", {})]:
        response = admin.client.post(path, data=data)
        assert response.status_code == 400, path
        assert "CSRF" in response.get_data(as_text=True), path
    assert admin.html(f"/tasks/{task.id}")  # still signed in, task untouched


def test_login_form_without_a_csrf_token_is_rejected(app: Any, client: Any) -> None:
    response = client.post("/login", data={"username": "admin", "password": "x"})
    assert response.status_code == 400


def test_a_script_task_name_is_shown_as_text_everywhere(admin: AdminClient, app: Any) -> None:
    from chime import services

    with unit_of_work():
        task = services.create_task({"name": SCRIPT, "job": "echo", "args": {"message": SCRIPT},
                                     "schedule_type": "INTERVAL", "interval_seconds": 60,
                                     "description": SCRIPT}, allow_shell=False)
    execution = add_execution(task, "FAILED", message=SCRIPT)
    add_notification(title=SCRIPT, task=task, message=SCRIPT)
    for path in ("/", "/tasks", f"/tasks/{task.id}", f"/tasks/{task.id}/edit", f"/tasks/{task.id}/delete",
                 "/logs", f"/logs/{execution.id}", "/notifications"):
        html = admin.html(path)
        assert SCRIPT not in html, path
        assert ESCAPED in html, path


def test_pages_send_a_strict_content_security_policy(admin: AdminClient) -> None:
    response = admin.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.get_data(as_text=True).replace('<script src=', '')


def test_dashboard_shows_counts_failures_queues_and_a_red_banner(admin: AdminClient) -> None:
    task = add_task("importer", status="FAILED")
    add_task("mailer", status="SUCCESS", enabled=False)
    add_execution(task, "FAILED", message="Connection refused by db:5432", minutes_ago=10)
    add_execution(task, "SUCCESS", minutes_ago=70)
    html = admin.html("/")
    assert "Connection refused by db:5432" in html
    assert "The scheduler is not running" in html and "No worker is running" in html
    assert 'class="bar-failed"' in html and 'class="bar-success"' in html
    assert "high: <strong>0</strong>" in html
    assert "Runs, last 24 h" in html


def test_dashboard_has_no_banner_when_the_engine_is_alive(admin: AdminClient, redis_client: Any) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    worker = Worker(["default"], connection=redis_client, name="worker-test")
    worker.register_birth()
    try:
        html = admin.html("/")
    finally:
        worker.register_death()
    assert "data-engine-alert hidden" in html and "not running" not in html.lower()
    assert "1 running" in html and "worker-test" in html


def test_dashboard_lists_the_next_runs(admin: AdminClient) -> None:
    from chime import services

    with unit_of_work():
        services.create_task({"name": "soon", "job": "noop", "schedule_type": "INTERVAL", "interval_seconds": 120},
                             allow_shell=False)
    html = admin.html("/")
    assert ">soon</a>" in html
    assert 'data-format="relative"' in html and "in 2 min" in html


@pytest.mark.parametrize("path", ["/", "/tasks"])
def test_the_bell_shows_the_unread_count(admin: AdminClient, path: str) -> None:
    add_notification("one")
    newest = add_notification("two")
    add_notification("seen", read=True)
    html = admin.html(path)
    assert f'data-latest-id="{newest.id}"' in html
    assert "2 unread" in html
    assert "/api/notifications/?unread=true&amp;limit=5" in html


def test_the_bell_poll_endpoint_answers_with_the_session(admin: AdminClient) -> None:
    add_notification("one")
    body = admin.get("/api/notifications/?unread=true&limit=5").get_json()
    assert body["count"] == 1 and body["results"][0]["title"] == "one"

