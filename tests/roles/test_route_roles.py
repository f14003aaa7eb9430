"""Every route says which role may call it; a caller below that role gets 403 and changes nothing."""
from __future__ import annotations

from typing import Any

from chime.enums import Role
from chime.extensions import db
from chime.models import Task, User
from webapp.api.blueprint import PUBLIC_ENDPOINTS
from webapp.auth import ROLE_ATTRIBUTE, create_token, create_user

PUBLIC_PAGES = {"admin.login", "admin.logout", "static"}


def test_every_route_declares_the_role_it_needs(app: Any) -> None:
    unmarked = sorted(
        rule.endpoint for rule in app.url_map.iter_rules()
        if rule.endpoint not in PUBLIC_ENDPOINTS | PUBLIC_PAGES
        and not hasattr(app.view_functions[rule.endpoint], ROLE_ATTRIBUTE)
    )
    assert unmarked == []


def token_for(role: Role) -> dict[str, str]:
    user = create_user(f"user-{role.value}", "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token('cli', user)}"}


def test_a_viewer_token_reads_but_cannot_create_a_task(client: Any) -> None:
    headers = token_for(Role.VIEWER)

    assert client.get("/api/tasks/", headers=headers).status_code == 200
    refused = client.post("/api/tasks/", headers=headers, json={
        "name": "nope", "job": "echo", "schedule_type": "INTERVAL", "interval_seconds": 60})

    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert db.session.query(Task).count() == 0


def test_a_token_of_a_disabled_user_is_refused(client: Any) -> None:
    headers = token_for(Role.ADMIN)
    owner = db.session.query(User).one()
    owner.active = False
    db.session.commit()

    assert client.get("/api/tasks/", headers=headers).status_code == 401
