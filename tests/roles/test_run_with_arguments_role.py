"""Running a task with other arguments changes what it does, so it needs the admin role; an operator runs
the task as it is defined (found by review: an operator could run any shell command this way)."""
from __future__ import annotations

from typing import Any

import redis as redis_lib

from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent
from webapp.auth import create_token, create_user

TASK = {"name": "greet", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
        "interval_seconds": 3600, "enabled": False}


def headers_of(role: Role) -> dict[str, str]:
    user = create_user(f"u-{role.value}", "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token('t', user)}"}


def queued_jobs(redis_url: str) -> int:
    connection = redis_lib.Redis.from_url(redis_url)
    return sum(connection.llen(f"rq:queue:{name}") for name in ("high", "default", "low"))


def test_an_operator_may_not_choose_a_runs_arguments(client: Any, redis_url: str) -> None:
    admin, operator = headers_of(Role.ADMIN), headers_of(Role.OPERATOR)
    task = client.post("/api/tasks/", headers=admin, json=TASK).get_json()
    events_before = db.session.query(AuditEvent).count()

    refused = client.post(f"/api/tasks/{task['id']}/run/", headers=operator, json={"args": {"message": "other"}})

    assert refused.status_code == 403 and "admin role" in refused.get_json()["message"]
    assert queued_jobs(redis_url) == 0 and db.session.query(AuditEvent).count() == events_before


def test_an_operator_runs_the_task_as_defined_and_an_admin_with_other_arguments(client: Any, redis_url: str) -> None:
    admin, operator = headers_of(Role.ADMIN), headers_of(Role.OPERATOR)
    task = client.post("/api/tasks/", headers=admin, json=TASK).get_json()

    assert client.post(f"/api/tasks/{task['id']}/run/", headers=operator).status_code == 202
    assert client.post(f"/api/tasks/{task['id']}/run/", headers=admin, json={"args": {"message": "other"}}).status_code == 202
    assert queued_jobs(redis_url) == 2
