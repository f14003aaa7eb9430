"""The admin shows each user only the actions their role allows (the routes check again)."""
from __future__ import annotations

from typing import Any

from chime.enums import Role
from tests.admin.conftest import add_task, sign_in
from webapp.auth import create_user

PASSWORD = "a long enough password"


def page_for(client: Any, role: Role, path: str) -> str:
    create_user(role.value, PASSWORD, role=role)
    assert sign_in(client, role.value, PASSWORD).status_code == 302
    return client.get(path).get_data(as_text=True)


def test_a_viewer_sees_the_task_but_none_of_its_actions(client: Any) -> None:
    task = add_task()
    html = page_for(client, Role.VIEWER, f"/tasks/{task.id}")

    assert task.name in html
    assert "Run now" not in html and ">Edit<" not in html and ">Delete<" not in html


def test_an_operator_may_run_but_not_edit(client: Any) -> None:
    task = add_task()
    html = page_for(client, Role.OPERATOR, f"/tasks/{task.id}")

    assert "Run now" in html and ">Edit<" not in html


def test_an_admin_sees_every_action(client: Any) -> None:
    task = add_task()
    html = page_for(client, Role.ADMIN, f"/tasks/{task.id}")

    assert "Run now" in html and ">Edit<" in html and ">Delete<" in html
