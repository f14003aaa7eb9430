"""Run controls in the JSON API: pause and resume, bulk actions, clone, and deleting a parent (SQLite and Postgres)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from chime import occurrence as occ
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Task
from webapp.auth import create_token, create_user

INTERVAL_TASK = {"name": "ping", "job": "echo", "args": {"message": "hi"},
                 "schedule_type": "INTERVAL", "interval_seconds": 60}


def make_task(api: Any, name: str = "ping", **fields: Any) -> dict[str, Any]:
    response = api.post("/api/tasks/", {**INTERVAL_TASK, "name": name, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def token_for(role: Role) -> dict[str, str]:
    user = create_user(f"user-{role.value}", "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token('cli', user)}"}


def audit_actions(object_id: int) -> list[tuple[str, dict | None]]:
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "task",
                                                         AuditEvent.object_id == str(object_id))
                                .order_by(AuditEvent.id))
    return [(event.action, event.details) for event in events]


def in_an_hour() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- pause and resume


def test_pausing_a_task_disables_it_with_the_reason_and_who_paused_it(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    until = in_an_hour()

    response = api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "database migration", "resume_at": until})

    assert response.status_code == 200, response.get_json()
    paused = response.get_json()
    assert paused["enabled"] is False and paused["next_run_at"] is None
    assert paused["paused_reason"] == "database migration"
    assert paused["paused_by"] == "API_TOKENS (environment)"
    assert paused["resume_at"] == until and paused["paused_at"].endswith("+00:00")
    assert occ.pending_job_id(redis_client, task["id"]) is None
    assert audit_actions(task["id"])[-1] == ("pause", {"reason": "database migration",
                                                       "paused_by": "API_TOKENS (environment)", "resume_at": until})


def test_a_task_that_is_not_paused_shows_null_pause_fields(api: Any) -> None:
    task = make_task(api)
    assert (task["paused_reason"], task["paused_by"], task["paused_at"], task["resume_at"]) == (None, None, None, None)


def test_pause_needs_a_reason_of_bounded_length_and_a_future_resume_time(api: Any) -> None:
    task = make_task(api)
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    cases = [
        ({}, "reason", "required"),
        ({"reason": "   "}, "reason", "must not be empty"),
        ({"reason": "x" * 501}, "reason", "must be at most 500 characters"),
        ({"reason": "ok", "resume_at": past}, "resume_at", "must be in the future"),
        ({"reason": "ok", "resume_at": "2031-06-01T09:00:00"}, "resume_at", "must include a UTC offset"),
        ({"reason": "ok", "resume_at": "tomorrow"}, "resume_at", "must be an ISO-8601 date-time"),
        ({"reason": "ok", "until": in_an_hour()}, "until", "unknown field"),
    ]
    for body, field, reason in cases:
        response = api.post(f"/api/tasks/{task['id']}/pause/", body)
        assert response.status_code == 400, body
        assert response.get_json()["fields"][field].startswith(reason), (body, response.get_json())
    assert api.get(f"/api/tasks/{task['id']}/").get_json()["enabled"] is True


def test_resuming_clears_the_pause_and_schedules_the_task_again(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "maintenance", "resume_at": in_an_hour()})

    resumed = api.post(f"/api/tasks/{task['id']}/resume/").get_json()

    assert resumed["enabled"] is True and resumed["next_run_at"] is not None
    assert (resumed["paused_reason"], resumed["paused_by"], resumed["paused_at"], resumed["resume_at"]) == (
        None, None, None, None)
    assert occ.pending_job_id(redis_client, task["id"]) is not None
    assert audit_actions(task["id"])[-1][0] == "resume"


def test_enabling_a_paused_task_also_ends_its_pause(api: Any) -> None:
    task = make_task(api)
    api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "maintenance"})

    toggled = api.post(f"/api/tasks/{task['id']}/toggle/").get_json()

    assert toggled["enabled"] is True and toggled["paused_reason"] is None and toggled["paused_by"] is None


def test_an_operator_pauses_and_resumes_but_a_viewer_cannot(client: Any, api: Any) -> None:
    task = make_task(api)
    operator, viewer = token_for(Role.OPERATOR), token_for(Role.VIEWER)

    refused = client.post(f"/api/tasks/{task['id']}/pause/", json={"reason": "no"}, headers=viewer)
    paused = client.post(f"/api/tasks/{task['id']}/pause/", json={"reason": "yes"}, headers=operator)

    assert refused.status_code == 403
    assert paused.status_code == 200 and paused.get_json()["paused_by"] == "user-operator (token cli)"
    assert client.post(f"/api/tasks/{task['id']}/resume/", headers=operator).status_code == 200


# --------------------------------------------------------------------------- bulk actions


def test_bulk_pause_pauses_every_task_and_audits_each_as_bulk_pause(api: Any) -> None:
    ids = [make_task(api, f"t{n}")["id"] for n in range(3)]

    response = api.post("/api/tasks/bulk/", {"action": "pause", "ids": ids, "reason": "maintenance window"})

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"action": "pause", "results": [
        {"id": task_id, "name": f"t{n}", "outcome": "paused", "job_id": None} for n, task_id in enumerate(ids)]}
    for task_id in ids:
        shown = api.get(f"/api/tasks/{task_id}/").get_json()
        assert shown["enabled"] is False and shown["paused_reason"] == "maintenance window"
        action, details = audit_actions(task_id)[-1]
        assert action == "bulk_pause" and details["bulk"] == 3 and details["reason"] == "maintenance window"


def test_bulk_enable_disable_and_resume_set_each_task(api: Any, redis_client: Any) -> None:
    ids = [make_task(api, f"t{n}")["id"] for n in range(2)]

    disabled = api.post("/api/tasks/bulk/", {"action": "disable", "ids": ids}).get_json()
    assert [item["outcome"] for item in disabled["results"]] == ["disabled", "disabled"]
    assert all(occ.pending_job_id(redis_client, task_id) is None for task_id in ids)

    enabled = api.post("/api/tasks/bulk/", {"action": "enable", "ids": ids}).get_json()
    assert [item["outcome"] for item in enabled["results"]] == ["enabled", "enabled"]
    assert all(occ.pending_job_id(redis_client, task_id) is not None for task_id in ids)

    api.post("/api/tasks/bulk/", {"action": "pause", "ids": ids, "reason": "r"})
    resumed = api.post("/api/tasks/bulk/", {"action": "resume", "ids": ids}).get_json()
    assert [item["outcome"] for item in resumed["results"]] == ["resumed", "resumed"]
    assert api.get(f"/api/tasks/{ids[0]}/").get_json()["paused_reason"] is None
    assert [action for action, _ in audit_actions(ids[0])][-4:] == [
        "bulk_disable", "bulk_enable", "bulk_pause", "bulk_resume"]


def test_bulk_run_now_queues_one_manual_run_per_task_and_returns_their_job_ids(api: Any, redis_client: Any) -> None:
    ids = [make_task(api, f"t{n}", enabled=False)["id"] for n in range(2)]

    results = api.post("/api/tasks/bulk/", {"action": "run_now", "ids": ids}).get_json()["results"]

    queued = {job.decode() for job in redis_client.lrange("rq:queue:default", 0, -1)}
    assert {item["job_id"] for item in results} == queued and len(queued) == 2
    assert all(item["job_id"].startswith(f"chime-{item['id']}-") for item in results)


def test_bulk_with_an_unknown_id_changes_nothing_and_names_it(api: Any) -> None:
    known = make_task(api)["id"]

    response = api.post("/api/tasks/bulk/", {"action": "disable", "ids": [known, 9999, 8888]})

    assert response.status_code == 400
    assert response.get_json()["fields"] == {"ids": "no task with id 9999, 8888"}
    assert api.get(f"/api/tasks/{known}/").get_json()["enabled"] is True


def test_bulk_refuses_bad_bodies(api: Any) -> None:
    task_id = make_task(api)["id"]
    cases = [
        ({"action": "explode", "ids": [task_id]}, "action"),
        ({"action": "pause", "ids": [task_id]}, "reason"),
        ({"action": "enable", "ids": [task_id], "reason": "why"}, "reason"),
        ({"action": "enable", "ids": []}, "ids"),
        ({"action": "enable", "ids": list(range(1, 502))}, "ids"),
        ({"action": "enable", "ids": ["1"]}, "ids"),
        ({"action": "enable", "ids": [0]}, "ids"),
        ({"action": "enable"}, "ids"),
    ]
    for body, field in cases:
        response = api.post("/api/tasks/bulk/", body)
        assert response.status_code == 400 and field in response.get_json()["fields"], (body, response.get_json())
    assert api.post("/api/tasks/bulk/", [task_id]).status_code == 400


def test_bulk_delete_needs_an_admin_and_an_operator_gets_403(client: Any, api: Any) -> None:
    task_id = make_task(api)["id"]
    operator = token_for(Role.OPERATOR)

    refused = client.post("/api/tasks/bulk/", json={"action": "delete", "ids": [task_id]}, headers=operator)
    allowed = client.post("/api/tasks/bulk/", json={"action": "disable", "ids": [task_id]}, headers=operator)

    assert refused.status_code == 403 and allowed.status_code == 200
    assert db.session.get(Task, task_id) is not None


def test_bulk_delete_deletes_the_tasks_and_audits_each(api: Any, redis_client: Any) -> None:
    parent = make_task(api, "parent")
    child = make_task(api, "child", depends_on=[parent["id"]])

    response = api.post("/api/tasks/bulk/", {"action": "delete", "ids": [parent["id"], child["id"]]})

    assert response.status_code == 200, response.get_json()
    assert [item["outcome"] for item in response.get_json()["results"]] == ["deleted", "deleted"]
    assert db.session.scalar(select(Task.id)) is None
    assert occ.pending_job_id(redis_client, parent["id"]) is None
    assert audit_actions(parent["id"])[-1][0] == "bulk_delete"


def test_bulk_delete_of_a_parent_without_its_dependant_is_a_409_naming_it_and_deletes_nothing(api: Any) -> None:
    parent = make_task(api, "parent")
    other = make_task(api, "other")
    make_task(api, "child", depends_on=[parent["id"]])

    response = api.post("/api/tasks/bulk/", {"action": "delete", "ids": [other["id"], parent["id"]]})

    assert response.status_code == 409
    assert "'child'" in response.get_json()["message"] and "'parent'" in response.get_json()["message"]
    assert api.get(f"/api/tasks/{other['id']}/").status_code == 200


# --------------------------------------------------------------------------- clone


def test_clone_copies_the_definition_disabled_with_a_free_name(api: Any, redis_client: Any) -> None:
    parent = make_task(api, "parent")
    task = make_task(api, "nightly", schedule_type="CRON", interval_seconds=None, cron="0 3 * * *",
                     timezone="Europe/Berlin", depends_on=[parent["id"]], max_retries=5, queue="high")

    first = api.post(f"/api/tasks/{task['id']}/clone/")
    second = api.post(f"/api/tasks/{task['id']}/clone/", {})

    assert first.status_code == 201 and first.headers["Location"] == f"/api/tasks/{first.get_json()['id']}/"
    copy = first.get_json()
    assert copy["name"] == "nightly (copy)" and second.get_json()["name"] == "nightly (copy 2)"
    assert copy["enabled"] is False and copy["next_run_at"] is None
    assert occ.pending_job_id(redis_client, copy["id"]) is None
    same = ("job", "args", "schedule_type", "cron", "timezone", "depends_on", "max_retries", "queue")
    assert {key: copy[key] for key in same} == {key: task[key] for key in same}
    assert audit_actions(copy["id"]) == [("create", {"cloned_from": task["id"]})]


def test_clone_takes_a_given_name_and_refuses_a_taken_one(api: Any) -> None:
    task = make_task(api, "nightly")

    named = api.post(f"/api/tasks/{task['id']}/clone/", {"name": "nightly-2"})
    taken = api.post(f"/api/tasks/{task['id']}/clone/", {"name": "nightly"})
    blank = api.post(f"/api/tasks/{task['id']}/clone/", {"name": " "})

    assert named.status_code == 201 and named.get_json()["name"] == "nightly-2"
    assert taken.status_code == 409 and taken.get_json()["fields"] == {"name": "already taken"}
    assert blank.status_code == 400 and "name" in blank.get_json()["fields"]


def test_clone_of_a_name_at_the_length_limit_stays_within_it(api: Any) -> None:
    task = make_task(api, "n" * 200)

    copy = api.post(f"/api/tasks/{task['id']}/clone/").get_json()

    assert len(copy["name"]) == 200 and copy["name"].endswith("n (copy)")


def test_clone_needs_an_admin(client: Any, api: Any) -> None:
    task = make_task(api)
    response = client.post(f"/api/tasks/{task['id']}/clone/", headers=token_for(Role.OPERATOR))
    assert response.status_code == 403


# --------------------------------------------------------------------------- deleting a parent


def test_deleting_a_parent_is_a_409_naming_the_dependants_and_how_to_detach(api: Any) -> None:
    parent = make_task(api, "parent")
    child = make_task(api, "child", depends_on=[parent["id"]])

    response = api.delete(f"/api/tasks/{parent['id']}/")

    assert response.status_code == 409
    message = response.get_json()["message"]
    assert f"'child' (id {child['id']})" in message and f"/api/tasks/{parent['id']}/?detach=true" in message


def test_delete_with_detach_removes_the_dependency_and_the_task_in_one_step(api: Any) -> None:
    parent = make_task(api, "parent")
    other = make_task(api, "other")
    child = make_task(api, "child", depends_on=[parent["id"], other["id"]])

    response = api.delete(f"/api/tasks/{parent['id']}/?detach=true")

    assert response.status_code == 204
    assert api.get(f"/api/tasks/{parent['id']}/").status_code == 404
    assert api.get(f"/api/tasks/{child['id']}/").get_json()["depends_on"] == [other["id"]]
    action, details = audit_actions(child["id"])[-1]
    assert action == "update" and details == {"detached_from": parent["id"]}
    assert "delete" in [action for action, _ in audit_actions(parent["id"])]


def test_delete_with_a_bad_detach_value_is_a_400(api: Any) -> None:
    task = make_task(api)
    assert api.delete(f"/api/tasks/{task['id']}/?detach=maybe").status_code == 400
