"""The audit trail through the API: every task change leaves one event naming who, from where and what
changed; GET /api/audit/ and /api/tasks/{id}/audit/ search it, secrets never shown."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from chime import services
from chime.audit import MASK
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, User
from chime.unit_of_work import unit_of_work
from webapp.api.openapi import openapi_document
from webapp.auth import create_token, create_user

TASK = {"name": "ping", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
        "interval_seconds": 60}
HOOK = {"name": "hook", "job": "http_request", "schedule_type": "INTERVAL", "interval_seconds": 300,
        "args": {"url": "https://example.com/hook", "method": "POST",
                 "headers": {"Authorization": "Bearer x", "Accept": "application/json"}}}


def token_of(username: str, role: Role = Role.ADMIN, token_name: str = "ci") -> dict[str, str]:
    user = create_user(username, "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token(token_name, user)}"}


def events(**where: Any) -> list[AuditEvent]:
    db.session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(db.session.scalars(query))


def created(client: Any, headers: dict[str, str], body: dict[str, Any] = TASK) -> dict[str, Any]:
    response = client.post("/api/tasks/", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_edit_through_the_api_leaves_one_event_with_the_changed_fields_before_and_after(client: Any) -> None:
    headers = token_of("ada")
    task = created(client, headers)
    before = len(events())

    response = client.patch(f"/api/tasks/{task['id']}/", json={"interval_seconds": 90, "description": "faster"},
                            headers=headers)

    assert response.status_code == 200
    [event] = events()[before:]
    assert (event.action, event.object_type, event.object_id, event.object_name) == ("update", "task",
                                                                                    str(task["id"]), "ping")
    assert (event.actor_name, event.source, event.remote_addr) == ("ada (token ci)", "api", "127.0.0.1")
    assert event.actor_id == db.session.scalar(select(User.id).where(User.username == "ada"))
    assert event.before == {"interval_seconds": 60, "description": ""}
    assert event.after == {"interval_seconds": 90, "description": "faster"}


def test_create_toggle_run_now_and_delete_through_the_api_are_each_one_event(client: Any) -> None:
    headers = token_of("ada")
    task = created(client, headers)
    task_id = task["id"]

    assert client.post(f"/api/tasks/{task_id}/toggle/", headers=headers).status_code == 200
    assert client.post(f"/api/tasks/{task_id}/toggle/", headers=headers).status_code == 200
    run = client.post(f"/api/tasks/{task_id}/run/", headers=headers)
    assert run.status_code == 202
    assert client.delete(f"/api/tasks/{task_id}/", headers=headers).status_code == 204

    trail = events(object_type="task", object_id=str(task_id))
    assert [e.action for e in trail] == ["create", "disable", "enable", "run_now", "delete"]
    assert {(e.actor_name, e.source) for e in trail} == {("ada (token ci)", "api")}
    create, disable, enable, run_now, delete = trail
    assert create.before is None and create.after["interval_seconds"] == 60 and create.after["name"] == "ping"
    assert (disable.before, disable.after) == ({"enabled": True}, {"enabled": False})
    assert (enable.before, enable.after) == ({"enabled": False}, {"enabled": True})
    assert run_now.details == {"job_id": run.get_json()["job_id"]}
    assert delete.after is None and delete.before["name"] == "ping"
    assert "next_run_at" not in create.after and "status" not in delete.before  # the definition, not engine state


def test_a_refused_or_rolled_back_change_leaves_no_event(client: Any) -> None:
    headers = token_of("ada")
    first = created(client, headers)
    created(client, headers, {**TASK, "name": "pong"})
    before = len(events())

    taken = client.patch(f"/api/tasks/{first['id']}/", json={"name": "pong"}, headers=headers)
    invalid = client.patch(f"/api/tasks/{first['id']}/", json={"interval_seconds": 0}, headers=headers)
    viewer = client.patch(f"/api/tasks/{first['id']}/", json={"interval_seconds": 5},
                          headers=token_of("vic", Role.VIEWER))
    with pytest.raises(RuntimeError), unit_of_work():
        services.update_task(services.get_task(first["id"]), {"interval_seconds": 120}, partial=True,
                             allow_shell=False)
        raise RuntimeError("something after the change failed")

    assert (taken.status_code, invalid.status_code, viewer.status_code) == (409, 400, 403)
    assert events()[before:] == []


def test_a_secret_header_never_shows_in_the_audit_output(client: Any) -> None:
    headers = token_of("ada")
    task = created(client, headers, HOOK)
    changed = {**HOOK["args"], "headers": {"Authorization": "Bearer y", "Accept": "application/json"}}
    assert client.patch(f"/api/tasks/{task['id']}/", json={"args": changed}, headers=headers).status_code == 200

    overall = client.get("/api/audit/", headers=headers)
    of_task = client.get(f"/api/tasks/{task['id']}/audit/", headers=headers)

    for response in (overall, of_task):
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert "Bearer x" not in text and "Bearer y" not in text
    create, update = reversed(of_task.get_json()["results"])
    assert create["after"]["args"]["headers"] == {"Authorization": MASK, "Accept": "application/json"}
    assert update["before"]["args"]["headers"]["Authorization"] == MASK
    assert all("Bearer" not in repr(e.before) + repr(e.after) for e in events())  # not stored either


def test_the_trail_is_newest_first_and_paginated_like_the_other_lists(client: Any) -> None:
    headers = token_of("ada")
    task = created(client, headers)
    for _ in range(3):
        client.post(f"/api/tasks/{task['id']}/toggle/", headers=headers)

    page = client.get("/api/audit/?limit=2", headers=headers).get_json()

    assert page["count"] == 4
    assert [e["action"] for e in page["results"]] == ["disable", "enable"]
    assert page["next"] == "/api/audit/?limit=2&offset=2" and page["previous"] is None
    assert [e["action"] for e in client.get(page["next"], headers=headers).get_json()["results"]] == [
        "disable", "create"]


def add_event(action: str, object_type: str, object_id: str, object_name: str, actor_name: str, source: str,
              created_at: datetime) -> None:
    db.session.add(AuditEvent(action=action, object_type=object_type, object_id=object_id, object_name=object_name,
                              actor_name=actor_name, source=source, created_at=created_at))
    db.session.commit()


NOON = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def trail(app: Any) -> None:
    add_event("create", "task", "1", "nightly-report", "ada", "admin", NOON - timedelta(days=2))
    add_event("update", "task", "1", "nightly-report", "ada (token ci)", "api", NOON - timedelta(days=1))
    add_event("run_now", "task", "2", "cleanup", "cli:ops", "cli", NOON)
    add_event("deactivate", "user", "7", "bob", "grace", "admin", NOON + timedelta(hours=1))


@pytest.mark.parametrize("query,expected", [
    ("", ["bob", "cleanup", "nightly-report", "nightly-report"]),
    ("object_type=task", ["cleanup", "nightly-report", "nightly-report"]),
    ("object_type=task&object_id=1", ["nightly-report", "nightly-report"]),
    ("actor=ADA", ["nightly-report", "nightly-report"]),
    ("actor=token", ["nightly-report"]),
    ("action=run_now", ["cleanup"]),
    ("source=cli", ["cleanup"]),
    ("source=API", ["nightly-report"]),
    ("since=2030-06-01T12:00:00Z", ["bob", "cleanup"]),
    ("until=2030-06-01T12:00:00%2B00:00", ["nightly-report", "nightly-report"]),
    ("since=2030-05-31T00:00:00&until=2030-06-01T12:30:00Z", ["cleanup", "nightly-report"]),
    ("search=report", ["nightly-report", "nightly-report"]),
    ("search=grace", ["bob"]),
    ("search=%25", []),
], ids=["none", "object type", "object", "actor any case", "actor token", "action", "source", "source any case",
        "since", "until", "window", "search object", "search actor", "search is literal"])
def test_filters_narrow_the_trail(client: Any, trail: None, query: str, expected: list[str]) -> None:
    response = client.get(f"/api/audit/?{query}", headers={"Authorization": "Bearer test-token-123"})

    assert response.status_code == 200, response.get_json()
    assert [event["object_name"] for event in response.get_json()["results"]] == expected


@pytest.mark.parametrize("query,argument", [
    ("object_type=planet", "object_type"), ("source=email", "source"), ("action=Run%20now!", "action"),
    ("since=yesterday", "since"), ("until=2030-13-01", "until"), ("object_id=" + "9" * 65, "object_id"),
    ("search=a%00b", "search"), ("actor=a%00b", "actor"), ("limit=0", "limit"),
])
def test_a_bad_filter_is_a_400_naming_the_argument(client: Any, query: str, argument: str) -> None:
    response = client.get(f"/api/audit/?{query}", headers={"Authorization": "Bearer test-token-123"})

    assert response.status_code == 400
    assert argument in response.get_json()["fields"]


def test_a_tasks_history_holds_only_its_own_events_and_an_unknown_task_is_a_404(client: Any) -> None:
    headers = token_of("ada")
    first, second = created(client, headers), created(client, headers, {**TASK, "name": "pong"})
    client.post(f"/api/tasks/{second['id']}/toggle/", headers=headers)

    history = client.get(f"/api/tasks/{first['id']}/audit/", headers=headers).get_json()
    toggles = client.get(f"/api/tasks/{second['id']}/audit/?action=disable", headers=headers).get_json()

    assert [(e["action"], e["object_name"]) for e in history["results"]] == [("create", "ping")]
    assert [(e["action"], e["object_name"]) for e in toggles["results"]] == [("disable", "pong")]
    assert client.get("/api/tasks/999/audit/", headers=headers).status_code == 404


def test_a_viewer_reads_the_trail(client: Any) -> None:
    created(client, token_of("ada"))

    response = client.get("/api/audit/", headers=token_of("vic", Role.VIEWER))

    assert response.status_code == 200 and response.get_json()["count"] == 1


def test_the_documented_audit_event_is_exactly_what_the_api_sends(client: Any) -> None:
    headers = token_of("ada")
    created(client, headers)
    document = openapi_document()

    [sent] = client.get("/api/audit/", headers=headers).get_json()["results"]

    schema = document["components"]["schemas"]["AuditEvent"]
    assert set(schema["properties"]) == set(sent) == set(schema["required"])
    assert {"/api/audit/", "/api/tasks/{task_id}/audit/"} <= set(document["paths"])


def test_a_tasks_history_includes_what_was_done_to_its_runs(client: Any) -> None:
    from chime.models import Execution

    headers = token_of("ops")
    task = created(client, headers)
    other = created(client, headers, {**TASK, "name": "other"})
    runs = []
    for owner in (task, other):
        run = Execution(task_id=owner["id"], task_name=owner["name"], status="RUNNING", trigger="MANUAL",
                        scheduled_for=datetime.now(timezone.utc), job_id=f"j-{owner['id']}")
        db.session.add(run)
        runs.append(run)
    db.session.commit()
    for run in runs:
        assert client.post(f"/api/logs/{run.id}/stop/", headers=headers).status_code == 202

    history = client.get(f"/api/tasks/{task['id']}/audit/", headers=headers).get_json()["results"]

    assert [(event["action"], event["object_type"]) for event in history] == [("stop", "execution"), ("create", "task")]
    assert history[0]["object_id"] == str(runs[0].id)
