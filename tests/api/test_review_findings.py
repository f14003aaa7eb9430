"""Edges a review found in the run controls, users and tokens (each failed before its fix)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from chime import controls
from chime import occurrence as occ
from chime.extensions import db
from chime.models import AuditEvent, Execution, Task
from chime.unit_of_work import unit_of_work
from tests.api.test_task_controls import audit_actions, in_an_hour, make_task


@pytest.mark.parametrize("path, body", [
    ("/api/tasks/{id}/pause/", {"reason": "r", "resume_at": "9999-12-31T23:59:59-01:00"}),
    ("/api/tasks/bulk/", {"action": "pause", "ids": ["{id}"], "reason": "r", "resume_at": "9999-12-31T23:59:59-01:00"}),
])
def test_a_resume_time_past_the_year_9999_in_utc_is_a_400(api: Any, path: str, body: dict[str, Any]) -> None:
    task = make_task(api)
    body = {**body, "ids": [task["id"]]} if "ids" in body else body

    response = api.post(path.format(id=task["id"]), body)

    assert response.status_code == 400 and "resume_at" in response.get_json()["fields"]


@pytest.mark.parametrize("body", [{"name": "x", "user_id": 10**30}, {"name": "x", "user_id": 2**63 - 1},
                                  {"name": "a\u0000b"}, {"name": "\u001b[31m"}, {"name": "\u001b"}])
def test_a_token_with_an_impossible_owner_or_a_control_character_is_a_400(api: Any, body: dict[str, Any]) -> None:
    response = api.post("/api/tokens/", body)

    assert response.status_code == 400, response.get_data(as_text=True)


def test_pausing_a_disabled_task_is_refused_so_its_pause_cannot_enable_it(api: Any) -> None:
    off = make_task(api, "off", enabled=False)
    on = make_task(api, "on")

    single = api.post(f"/api/tasks/{off['id']}/pause/", {"reason": "r", "resume_at": in_an_hour()})
    bulk = api.post("/api/tasks/bulk/", {"action": "pause", "ids": [on["id"], off["id"]], "reason": "r"})

    assert single.status_code == 409 and bulk.status_code == 409 and "'off'" in bulk.get_json()["message"]
    assert db.session.get(Task, on["id"]).enabled is True and db.session.get(Task, off["id"]).paused_at is None


def test_a_paused_task_may_be_paused_again_with_a_new_reason(api: Any) -> None:
    task = make_task(api)
    api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "first"})

    again = api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "second"})

    assert again.status_code == 200 and again.get_json()["paused_reason"] == "second"


def test_asking_twice_to_stop_a_run_is_recorded_once(api: Any) -> None:
    task = make_task(api)
    run = Execution(task_id=task["id"], task_name="ping", status="RUNNING", trigger="MANUAL",
                    scheduled_for=datetime.now(timezone.utc), job_id="j-1")
    db.session.add(run)
    db.session.commit()

    answers = [api.post(f"/api/logs/{run.id}/stop/").status_code for _ in range(3)]

    stops = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "stop")).all()
    assert answers == [202, 202, 202] and len(stops) == 1


def test_a_bulk_run_now_cut_short_by_redis_keeps_what_it_queued_and_says_what_it_did_not(
        api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_task(api, "first"), make_task(api, "second")
    real_push, calls = occ.push_now, []

    def push_then_fail(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            from redis.exceptions import ConnectionError
            raise ConnectionError("Redis went away")
        return real_push(*args, **kwargs)

    monkeypatch.setattr(occ, "push_now", push_then_fail)
    response = api.post("/api/tasks/bulk/", {"action": "run_now", "ids": [first["id"], second["id"]]})

    assert response.status_code == 200, response.get_json()
    assert [item["outcome"] for item in response.get_json()["results"]] == ["queued", "not_queued"]
    assert [action for action, _ in audit_actions(first["id"])][-1] == "bulk_run_now"
    assert "bulk_run_now" not in [action for action, _ in audit_actions(second["id"])]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_automatic_resume_leaves_a_task_someone_is_changing_for_the_next_pass(api: Any, database_url: str) -> None:
    task = make_task(api)
    api.post(f"/api/tasks/{task['id']}/pause/", {"reason": "r", "resume_at": in_an_hour()})
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    other = create_engine(db.engine.url)
    with other.connect() as connection:
        connection.execute(text("SELECT id FROM tasks WHERE id = :id FOR UPDATE"), {"id": task["id"]})

        with unit_of_work():
            skipped = controls.resume_due_tasks(later)
        connection.rollback()
    other.dispose()
    with unit_of_work():
        resumed = controls.resume_due_tasks(later)

    assert skipped == [] and resumed == [task["id"]]


@pytest.mark.parametrize("path, method, body", [
    ("/api/tasks/{id}/alerts-mute/", "put", {"until": "9999-12-31T23:59:59-12:00"}),
    ("/api/tasks/{id}/alerts-mute/", "put", {"until": "0001-01-01T00:00:00+01:00"}),
])
def test_a_mute_time_outside_the_years_utc_holds_is_a_400(api: Any, path: str, method: str, body: dict[str, Any]) -> None:
    task = make_task(api)

    response = getattr(api, method)(path.format(id=task["id"]), body)

    assert response.status_code == 400 and "until" in response.get_json()["fields"]
