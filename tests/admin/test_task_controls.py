"""The admin's run controls: pause and resume on the task page, bulk actions in the list, clone, and
deleting a task others depend on (SQLite and Postgres)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from chime import occurrence as occ
from chime import services
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Task
from chime.unit_of_work import unit_of_work
from tests.admin.conftest import AdminClient, sign_in
from webapp.auth import create_user


def make(name: str = "job", **fields: Any) -> Task:
    payload = {"name": name, "job": "noop", "schedule_type": "INTERVAL", "interval_seconds": 300, **fields}
    with unit_of_work():
        return services.create_task(payload, allow_shell=False)


def fresh(task_id: int) -> Task | None:
    db.session.expire_all()
    return db.session.get(Task, task_id)


def signed_in_as(client: Any, role: Role) -> AdminClient:
    create_user(f"user-{role.value}", "a long enough password", role=role)
    assert sign_in(client, f"user-{role.value}", "a long enough password").status_code == 302
    return AdminClient(client)


def test_pausing_from_the_task_page_reads_the_resume_time_in_the_tasks_zone(admin: AdminClient,
                                                                           redis_client: Any) -> None:
    task = make("nightly", timezone="Europe/Berlin")
    assert 'action="/tasks/%d/pause"' % task.id in admin.html(f"/tasks/{task.id}")

    response = admin.post(f"/tasks/{task.id}/pause", {"reason": "database migration", "resume_at": "2031-06-01T09:00"})

    assert response.status_code == 302 and response.headers["Location"] == f"/tasks/{task.id}"
    paused = fresh(task.id)
    assert paused.enabled is False and paused.paused_reason == "database migration" and paused.paused_by == "admin"
    assert paused.resume_at == datetime(2031, 6, 1, 7, 0, tzinfo=timezone.utc)
    assert occ.pending_job_id(redis_client, task.id) is None
    page = admin.html(f"/tasks/{task.id}")
    assert "Paused</strong> by admin" in page and "database migration" in page and "Resumes by itself at" in page


def test_pausing_without_a_reason_is_refused_with_a_message(admin: AdminClient) -> None:
    task = make()

    admin.post(f"/tasks/{task.id}/pause", {"reason": "  ", "resume_at": ""})

    assert fresh(task.id).enabled is True
    assert "The task was not paused: reason: must not be empty" in admin.html(f"/tasks/{task.id}")


def test_the_list_shows_who_paused_a_task_and_why(admin: AdminClient) -> None:
    task = make("nightly")
    admin.post(f"/tasks/{task.id}/pause", {"reason": "partner API down"})

    html = admin.html("/tasks")

    assert '<span class="badge badge-off">Paused</span>' in html and "by admin: partner API down" in html


def test_resume_button_ends_the_pause_and_schedules_the_task(admin: AdminClient, redis_client: Any) -> None:
    task = make()
    admin.post(f"/tasks/{task.id}/pause", {"reason": "maintenance"})
    assert 'action="/tasks/%d/resume"' % task.id in admin.html(f"/tasks/{task.id}")

    admin.post(f"/tasks/{task.id}/resume")

    resumed = fresh(task.id)
    assert resumed.enabled is True and resumed.paused_reason is None
    assert occ.pending_job_id(redis_client, task.id) is not None


def test_bulk_pause_from_the_list_pauses_the_selected_tasks_only(admin: AdminClient) -> None:
    first, second, third = make("a"), make("b"), make("c")
    html = admin.html("/tasks")
    assert 'form="bulk-form"' in html and '<option value="delete">' in html

    response = admin.post("/tasks/bulk", {"action": "pause", "ids": [first.id, third.id], "reason": "window",
                                          "next": "/tasks?q="})

    assert response.status_code == 302 and response.headers["Location"] == "/tasks?q="
    assert [fresh(t.id).paused_reason for t in (first, second, third)] == ["window", None, "window"]
    assert "2 task(s) paused." in admin.html("/tasks")


def test_bulk_with_nothing_selected_says_so(admin: AdminClient) -> None:
    make()
    admin.post("/tasks/bulk", {"action": "disable"})
    assert "Select at least one task first." in admin.html("/tasks")


def test_bulk_delete_asks_for_confirmation_first(admin: AdminClient) -> None:
    first, second = make("a"), make("b")

    confirm = admin.post("/tasks/bulk", {"action": "delete", "ids": [first.id, second.id]})

    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert "Delete 2 tasks?" in page and 'name="confirm" value="yes"' in page
    assert fresh(first.id) is not None
    admin.post("/tasks/bulk", {"action": "delete", "ids": [first.id, second.id], "confirm": "yes"})
    assert fresh(first.id) is None and fresh(second.id) is None


def test_an_operator_has_bulk_actions_but_not_delete(client: Any, app: Any) -> None:
    task = make()
    operator = signed_in_as(client, Role.OPERATOR)

    html = operator.html("/tasks")
    assert 'form="bulk-form"' in html and '<option value="delete">' not in html
    refused = operator.post("/tasks/bulk", {"action": "delete", "ids": [task.id], "confirm": "yes"})

    assert refused.status_code == 403 and fresh(task.id) is not None
    operator.post("/tasks/bulk", {"action": "disable", "ids": [task.id]})
    assert fresh(task.id).enabled is False


def test_a_viewer_sees_no_bulk_actions_and_cannot_pause(client: Any, app: Any) -> None:
    task = make()
    viewer = signed_in_as(client, Role.VIEWER)

    assert 'form="bulk-form"' not in viewer.html("/tasks")
    assert "Pause…" not in viewer.html(f"/tasks/{task.id}")
    assert viewer.post(f"/tasks/{task.id}/pause", {"reason": "x"}).status_code == 403


def test_clone_opens_the_edit_page_of_a_disabled_copy(admin: AdminClient) -> None:
    parent = make("parent")
    task = make("nightly", depends_on=[parent.id])

    response = admin.post(f"/tasks/{task.id}/clone")

    copy = db.session.scalars(select(Task).where(Task.name == "nightly (copy)")).one()
    assert response.status_code == 302 and response.headers["Location"] == f"/tasks/{copy.id}/edit"
    assert copy.enabled is False and [p.id for p in copy.parents] == [parent.id]
    assert "cloned as “nightly (copy)”, disabled" in admin.html(f"/tasks/{copy.id}/edit")


def test_the_delete_page_of_a_parent_lists_its_dependants_and_offers_to_remove_the_dependency(
        admin: AdminClient) -> None:
    parent = make("parent")
    child = make("child", depends_on=[parent.id])

    page = admin.html(f"/tasks/{parent.id}/delete")

    assert f'<a href="/tasks/{child.id}">child</a>' in page
    assert "Remove the dependency and delete" in page and 'name="detach" value="yes"' in page


def test_remove_the_dependency_and_delete_updates_each_dependant_and_deletes_the_parent(admin: AdminClient) -> None:
    parent = make("parent")
    child = make("child", depends_on=[parent.id])

    response = admin.post(f"/tasks/{parent.id}/delete", {"detach": "yes"})

    assert response.status_code == 302 and response.headers["Location"] == "/tasks"
    assert fresh(parent.id) is None and fresh(child.id).parents == []
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.object_id) for e in events][-2:] == [("update", str(child.id)), ("delete", str(parent.id))]
    assert events[-2].before == {"depends_on": [parent.id]} and events[-2].after == {"depends_on": []}


def test_bulk_delete_confirmation_names_the_dependants_outside_the_selection_and_offers_no_delete(
        admin: AdminClient) -> None:
    parent = make("parent")
    child = make("child", depends_on=[parent.id])

    page = admin.post("/tasks/bulk", {"action": "delete", "ids": [parent.id]}).get_data(as_text=True)

    assert f'needed by <a href="/tasks/{child.id}">child</a>' in page
    assert 'name="confirm" value="yes"' not in page
    refused = admin.post("/tasks/bulk", {"action": "delete", "ids": [parent.id], "confirm": "yes"})
    assert refused.status_code == 302 and fresh(parent.id) is not None
    assert "Nothing was deleted: other tasks depend on &#39;parent&#39;" in admin.html("/tasks")
