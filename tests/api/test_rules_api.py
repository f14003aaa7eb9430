"""The rules API: viewers read, admins change, every change audited; bad rules are a clear 400; the
maintenance switch and a task's mute (SQLite and Postgres)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Channel, Task
from chime.unit_of_work import unit_of_work
from tests.engine.helpers import create
from tests.roles.conftest import bearer


def channel_id(name: str = "hook") -> int:
    with unit_of_work():
        row = Channel(name=name, kind="webhook", config={"url": "https://hooks.example.com/x"}, secret_names=[])
        db.session.add(row)
        db.session.flush()
        return row.id


def audit_actions(object_type: str) -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == object_type)
                                   .order_by(AuditEvent.id)))


def test_an_admin_creates_reads_changes_and_deletes_a_task_rule_and_each_change_is_audited(api: Any) -> None:
    hook, task_id = channel_id(), create(name="nightly")
    created = api.post("/api/rules/", json={"task_id": task_id, "events": ["failing", "recovered"],
                                            "channel_ids": [hook], "failing_threshold": 5, "repeat_every_hours": 6})
    assert created.status_code == 201
    rule = created.get_json()
    assert (rule["task_id"], rule["task_name"], rule["events"], rule["channel_ids"]) == (
        task_id, "nightly", ["failing", "recovered"], [hook])
    assert (rule["failing_threshold"], rule["repeat_every_hours"], rule["group_window_seconds"]) == (5, 6, 600)
    assert created.headers["Location"].endswith(f"/api/rules/{rule['id']}/")
    assert api.get(f"/api/rules/?task_id={task_id}").get_json()["results"] == [rule]
    changed = api.patch(f"/api/rules/{rule['id']}/", json={"group_window_seconds": 60, "repeat_every_hours": None})
    assert (changed.get_json()["group_window_seconds"], changed.get_json()["repeat_every_hours"]) == (60, None)
    assert api.delete(f"/api/rules/{rule['id']}/").status_code == 204
    assert api.get(f"/api/rules/{rule['id']}/").status_code == 404
    assert audit_actions("rule") == ["create", "update", "delete"]


def test_a_default_rule_has_no_task_and_is_listed_first(api: Any) -> None:
    hook, task_id = channel_id(), create(name="a")
    api.post("/api/rules/", json={"task_id": task_id, "events": ["failed"], "channel_ids": [hook]})
    api.post("/api/rules/", json={"events": ["failed", "scheduler_down"], "channel_ids": [hook]})
    listed = api.get("/api/rules/").get_json()["results"]
    assert [r["task_id"] for r in listed] == [None, task_id]
    assert [r["task_id"] for r in api.get("/api/rules/?default=true").get_json()["results"]] == [None]


def test_bad_rules_are_a_400_naming_the_field(api: Any) -> None:
    hook = channel_id()
    cases = [({"events": ["exploded"], "channel_ids": [hook]}, "events.0"),
             ({"events": [], "channel_ids": [hook]}, "events"),
             ({"events": ["failed"], "channel_ids": [999]}, "channel_ids"),
             ({"events": ["failed"], "channel_ids": [hook], "task_id": 999}, "task_id"),
             ({"events": ["failed"], "channel_ids": [hook], "failing_threshold": 0}, "failing_threshold"),
             ({"events": ["failed"], "channel_ids": [hook], "colour": "red"}, "colour")]
    for body, field in cases:
        response = api.post("/api/rules/", json=body)
        assert response.status_code == 400, body
        assert field in response.get_json()["fields"], (body, response.get_json())
    assert api.post("/api/rules/", json=[1]).status_code == 400


def test_viewers_read_rules_and_only_admins_change_them(api: Any) -> None:
    hook = channel_id()
    rule = api.post("/api/rules/", json={"events": ["failed"], "channel_ids": [hook]}).get_json()
    for role in (Role.VIEWER, Role.OPERATOR):
        headers = bearer(f"user-{role.value}", role)
        assert api.client.get("/api/rules/", headers=headers).status_code == 200
        assert api.client.get("/api/alerts/maintenance/", headers=headers).status_code == 200
        assert api.client.post("/api/rules/", json={"events": ["failed"], "channel_ids": [hook]},
                               headers=headers).status_code == 403
        assert api.client.delete(f"/api/rules/{rule['id']}/", headers=headers).status_code == 403
        assert api.client.put("/api/alerts/maintenance/", json={"on": True}, headers=headers).status_code == 403


def test_maintenance_is_one_audited_switch(api: Any) -> None:
    assert api.get("/api/alerts/maintenance/").get_json() == {"on": False, "reason": "", "since": None, "suppressed": 0}
    on = api.put("/api/alerts/maintenance/", json={"on": True, "reason": "database upgrade"}).get_json()
    assert on["on"] is True and on["reason"] == "database upgrade" and on["since"]
    assert api.get("/api/alerts/maintenance/").get_json()["on"] is True
    assert api.put("/api/alerts/maintenance/", json={"on": False}).get_json()["on"] is False
    assert api.put("/api/alerts/maintenance/", json={"on": "maybe"}).status_code == 400
    assert audit_actions("maintenance") == ["enable", "disable"]


def test_a_task_is_muted_until_an_instant_and_unmuted_with_null(api: Any) -> None:
    task_id = create(name="noisy")
    muted = api.put(f"/api/tasks/{task_id}/alerts-mute/", json={"until": "2031-06-01T09:00:00Z"})
    assert muted.get_json() == {"task_id": task_id, "alerts_muted_until": "2031-06-01T09:00:00+00:00"}
    db.session.expire_all()
    assert db.session.get(Task, task_id).alerts_muted_until.isoformat() == "2031-06-01T09:00:00+00:00"
    assert api.put(f"/api/tasks/{task_id}/alerts-mute/", json={"until": None}).get_json()["alerts_muted_until"] is None
    assert api.put(f"/api/tasks/{task_id}/alerts-mute/", json={"until": "soon"}).status_code == 400
    assert api.put("/api/tasks/999/alerts-mute/", json={"until": None}).status_code == 404
    assert audit_actions("task")[-2:] == ["update", "update"]


def test_a_rule_sets_its_own_overrun_threshold_and_null_takes_it_back(api: Any) -> None:
    hook = channel_id()
    created = api.post("/api/rules/", json={"events": ["overrun"], "channel_ids": [hook],
                                            "overrun_after_seconds": 900})
    assert created.status_code == 201 and created.get_json()["overrun_after_seconds"] == 900
    rule_id = created.get_json()["id"]
    changed = api.patch(f"/api/rules/{rule_id}/", json={"overrun_after_seconds": 60})
    assert changed.get_json()["overrun_after_seconds"] == 60
    cleared = api.patch(f"/api/rules/{rule_id}/", json={"overrun_after_seconds": None})
    assert cleared.get_json()["overrun_after_seconds"] is None, "null: the global threshold again"
    plain = api.post("/api/rules/", json={"events": ["failed"], "channel_ids": [hook]}).get_json()
    assert plain["overrun_after_seconds"] is None
    assert audit_actions("rule") == ["create", "update", "update", "create"]


def test_a_bad_overrun_threshold_is_a_400_naming_the_field_and_changes_nothing(api: Any) -> None:
    hook = channel_id()
    rule = api.post("/api/rules/", json={"events": ["overrun"], "channel_ids": [hook],
                                         "overrun_after_seconds": 300}).get_json()
    week = 7 * 24 * 3600
    for bad in (0, -5, week + 1, "soon", 1.5, True, [60], {"seconds": 60}):
        made = api.post("/api/rules/", json={"events": ["overrun"], "channel_ids": [hook],
                                             "overrun_after_seconds": bad})
        assert made.status_code == 400, bad
        assert "overrun_after_seconds" in made.get_json()["fields"], bad
        patched = api.patch(f"/api/rules/{rule['id']}/", json={"overrun_after_seconds": bad})
        assert patched.status_code == 400, bad
        assert "overrun_after_seconds" in patched.get_json()["fields"], bad
    assert [r["id"] for r in api.get("/api/rules/").get_json()["results"]] == [rule["id"]]
    assert api.get(f"/api/rules/{rule['id']}/").get_json() == rule
    assert audit_actions("rule") == ["create"]
    assert api.post("/api/rules/", json={"events": ["overrun"], "channel_ids": [hook],
                                         "overrun_after_seconds": week}).status_code == 201, "a week is the most"


def test_a_channel_id_no_database_can_hold_is_a_400_on_create_and_change_and_nothing_changes(api: Any) -> None:
    hook = channel_id()
    rule = api.post("/api/rules/", json={"events": ["failed"], "channel_ids": [hook]}).get_json()
    for bad in (9223372036854775808, 2**31, 0, -1, True, "1"):
        created = api.post("/api/rules/", json={"events": ["failed"], "channel_ids": [hook, bad]})
        assert created.status_code == 400 and "channel_ids.1" in created.get_json()["fields"], bad
        patched = api.patch(f"/api/rules/{rule['id']}/", json={"channel_ids": [bad]})
        assert patched.status_code == 400 and "channel_ids.0" in patched.get_json()["fields"], bad
    assert [r["channel_ids"] for r in api.get("/api/rules/").get_json()["results"]] == [[hook]]


def test_deleting_a_channel_takes_it_out_of_every_rule_and_audits_each_change(api: Any) -> None:
    kept, deleted = channel_id("kept"), channel_id("deleted")
    rule = api.post("/api/rules/", json={"events": ["failed"], "channel_ids": [kept, deleted]}).get_json()
    only_deleted = api.post("/api/rules/", json={"events": ["recovered"], "channel_ids": [deleted]}).get_json()

    assert api.delete(f"/api/channels/{deleted}/").status_code == 204

    assert api.get(f"/api/rules/{rule['id']}/").get_json()["channel_ids"] == [kept]
    assert api.get(f"/api/rules/{only_deleted['id']}/").get_json()["channel_ids"] == []
    assert api.patch(f"/api/rules/{rule['id']}/", json={"channel_ids": [kept]}).status_code == 200
    assert audit_actions("rule") == ["create", "create", "update", "update"]  # the PATCH changed nothing
