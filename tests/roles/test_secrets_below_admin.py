"""A task's arguments may hold secrets (an Authorization header, a password in a URL): the roles that may
not edit the task read them masked, in the API, the admin and the log; an admin reads them whole."""
from __future__ import annotations

from typing import Any

import pytest

from chime.enums import Role
from chime.extensions import db
from chime.models import Execution, Task
from tests.admin.conftest import sign_in
from webapp.auth import create_token, create_user

SECRET = "Bearer s3cr3t-value"
ARGS = {"url": "https://user:hunter2pass@example.com/hook", "method": "POST", "headers": {"Authorization": SECRET}}


def headers_of(role: Role) -> dict[str, str]:
    user = create_user(f"u-{role.value}", "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token('t', user)}"}


def stored_task_and_run() -> tuple[Task, Execution]:
    task = Task(name="hook", job="http_request", args=ARGS, schedule_type="INTERVAL", interval_seconds=60)
    db.session.add(task)
    db.session.flush()
    run = Execution(task_id=task.id, task_name=task.name, status="SUCCESS", trigger="MANUAL",
                    scheduled_for=task.created_at or db.func.now(), args=ARGS)
    db.session.add(run)
    db.session.commit()
    return task, run


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_below_admin_the_api_masks_the_secrets_of_arguments(client: Any, role: Role) -> None:
    task, run = stored_task_and_run()
    headers = headers_of(role)

    for path in (f"/api/tasks/{task.id}/", f"/api/logs/{run.id}/", "/api/logs/export/?format=csv",
                 "/api/logs/export/?format=json", "/api/tasks/"):
        body = client.get(path, headers=headers).get_data(as_text=True)
        assert "s3cr3t-value" not in body and "hunter2pass" not in body, path


def test_an_admin_reads_the_arguments_whole(client: Any) -> None:
    task, _run = stored_task_and_run()

    shown = client.get(f"/api/tasks/{task.id}/", headers=headers_of(Role.ADMIN)).get_json()

    assert shown["args"] == ARGS


def test_the_task_page_masks_them_for_a_viewer(client: Any) -> None:
    task, run = stored_task_and_run()
    create_user("viewer", "a long enough password", role=Role.VIEWER)
    assert sign_in(client, "viewer", "a long enough password").status_code == 302

    for path in (f"/tasks/{task.id}", f"/logs/{run.id}"):
        html = client.get(path).get_data(as_text=True)
        assert "s3cr3t-value" not in html and "hunter2pass" not in html, path
