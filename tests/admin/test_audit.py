"""The audit trail in the admin: changes made in the pages are recorded as the signed-in user from the
admin; the Audit page searches the trail and a task's page shows its change history."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.admin.conftest import USERNAME, AdminClient, add_task, sign_in
from chime.audit import MASK
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, User
from webapp.auth import create_user

EDIT_FORM = {
    "name": "ping", "job": "echo", "args.echo.message": "hi", "schedule_type": "INTERVAL", "interval_seconds": "120",
    "description": "", "timezone": "UTC", "enabled": "on", "max_retries": "3", "retry_backoff_seconds": "60",
    "timeout_seconds": "300", "misfire_grace_seconds": "300", "overlap": "SKIP", "queue": "default",
    "notify": "ALWAYS",
}


def events() -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_an_edit_in_the_admin_leaves_one_event_as_the_signed_in_user(admin: AdminClient) -> None:
    task = add_task("ping", interval_seconds=60)

    response = admin.post(f"/tasks/{task.id}/edit", EDIT_FORM)

    assert response.status_code == 302
    [event] = events()
    assert (event.action, event.object_type, event.object_id, event.object_name) == ("update", "task",
                                                                                    str(task.id), "ping")
    assert (event.actor_name, event.source, event.remote_addr) == (USERNAME, "admin", "127.0.0.1")
    assert event.actor_id == db.session.scalar(select(User.id).where(User.username == USERNAME))
    assert (event.before, event.after) == ({"interval_seconds": 60}, {"interval_seconds": 120})


def test_disabling_and_running_a_task_in_the_admin_are_recorded(admin: AdminClient) -> None:
    task = add_task("ping")

    admin.post(f"/tasks/{task.id}/toggle")
    admin.post(f"/tasks/{task.id}/run")

    assert [(e.action, e.actor_name, e.source) for e in events()] == [("disable", USERNAME, "admin"),
                                                                       ("run_now", USERNAME, "admin")]


def test_a_form_with_errors_records_nothing(admin: AdminClient) -> None:
    task = add_task("ping")

    response = admin.post(f"/tasks/{task.id}/edit", {**EDIT_FORM, "interval_seconds": "0"})

    assert response.status_code == 400
    assert events() == []


def test_a_tasks_page_shows_its_change_history_with_secrets_masked(admin: AdminClient) -> None:
    task = add_task("hook", job="http_request", args={"url": "https://example.com/hook",
                                                       "headers": {"Authorization": "Bearer x"}})
    admin.post(f"/tasks/{task.id}/toggle")
    api = admin.client.patch(f"/api/tasks/{task.id}/", json={"interval_seconds": 90, "args": {
        "url": "https://example.com/hook", "headers": {"Authorization": "Bearer y"}}},
        headers={"Authorization": "Bearer test-token-123"})
    assert api.status_code == 200, api.get_json()

    html = admin.html(f"/tasks/{task.id}")

    history = html[html.index("Change history"):]
    assert "disable" in history and "update" in history and USERNAME in history and "API" in history
    assert "interval_seconds" in history and "60" in history and "90" in history
    assert MASK in history
    assert "Bearer x" not in html[html.index("Change history"):] and "Bearer y" not in history


def test_the_audit_page_lists_and_filters_the_trail(admin: AdminClient) -> None:
    first, second = add_task("nightly-report"), add_task("cleanup")
    admin.post(f"/tasks/{first.id}/toggle")
    admin.post(f"/tasks/{second.id}/toggle")
    admin.post(f"/tasks/{second.id}/toggle")

    everything = admin.html("/audit")
    enables = admin.html("/audit?action=enable")
    searched = admin.html("/audit?search=nightly")
    one_object = admin.html(f"/audit?object_type=task&object_id={second.id}")

    assert everything.count("data-audit-id=") == 3 and 'href="/audit"' in everything  # the nav link
    assert enables.count("data-audit-id=") == 1 and "cleanup" in enables
    assert searched.count("data-audit-id=") == 1 and "nightly-report" in searched
    assert one_object.count("data-audit-id=") == 2
    assert admin.html("/audit?source=carrier-pigeon").count("data-audit-id=") == 3  # lenient, like the other lists
    assert admin.client.get("/audit?since=not-a-time").status_code == 400


def test_a_viewer_may_read_the_audit_page(app: Any, client: Any) -> None:
    create_user("vic", "a long enough password", role=Role.VIEWER)
    sign_in(client, "vic", "a long enough password")

    assert client.get("/audit").status_code == 200
