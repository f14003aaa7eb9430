"""Run controls through the API, on SQLite and Postgres: run now with arguments for that run only,
retry a failed run now (a new attempt of the same occurrence), and a failed run's traceback.

What the worker then does with the queued jobs is tested in tests/engine/inprocess/test_run_controls.py."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rq.job import Job
from sqlalchemy import select

from chime import lifecycle
from chime import occurrence as occ
from chime.audit import MASK
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Execution, Task
from scheduler.boundary import PlainPickleSerializer
from webapp.api.openapi import openapi_document
from webapp.auth import create_token, create_user

ECHO = {"name": "greet", "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
        "interval_seconds": 3600}
HOOK = {"name": "hook", "job": "http_request", "schedule_type": "INTERVAL", "interval_seconds": 3600,
        "args": {"url": "https://example.com/hook", "method": "POST"}}
DUE = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def make_task(api: Any, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/tasks/", {**ECHO, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def queued(redis_client: Any, queue: str = "default") -> list[str]:
    return [job_id.decode() for job_id in redis_client.lrange(f"rq:queue:{queue}", 0, -1)]


def job_kwargs(redis_client: Any, job_id: str) -> dict[str, Any]:
    return Job.fetch(job_id, connection=redis_client, serializer=PlainPickleSerializer).kwargs


def audit_events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def add_run(task_id: int, status: str, attempt: int = 1, **fields: Any) -> int:
    """Record one attempt of the task's occurrence due at DUE, as the worker would have."""
    task = db.session.get(Task, task_id)
    execution = Execution(task_id=task_id, task_name=task.name, status=status, attempt=attempt,
                          trigger="SCHEDULE" if attempt == 1 else "RETRY", scheduled_for=DUE,
                          started_at=DUE, finished_at=DUE + timedelta(seconds=1), duration_ms=1000,
                          message="RuntimeError: boom" if status == "FAILED" else "", **fields)
    db.session.add(execution)
    db.session.commit()
    return execution.id


def viewer_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token('ro', create_user('watcher', 'a long enough password', role=Role.VIEWER))}"}


# -- run now with arguments ------------------------------------------------------------------------

def test_run_now_with_arguments_queues_them_for_that_run_and_the_task_keeps_its_own(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    response = api.post(f"/api/tasks/{task['id']}/run/", {"args": {"message": "just this once"}})
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    assert queued(redis_client) == [job_id]
    assert job_kwargs(redis_client, job_id)["args"] == {"message": "just this once"}
    assert api.get(f"/api/tasks/{task['id']}/").get_json()["args"] == {"message": "hi"}


def test_run_now_without_a_body_or_with_null_arguments_runs_with_the_tasks_own(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    plain = api.post(f"/api/tasks/{task['id']}/run/").get_json()["job_id"]
    assert "args" not in job_kwargs(redis_client, plain)
    redis_client.delete(occ.job_key(plain))  # the next run now is a new occurrence anyway; keep the check simple
    null = api.post(f"/api/tasks/{task['id']}/run/", {"args": None})
    assert null.status_code == 202
    assert "args" not in job_kwargs(redis_client, null.get_json()["job_id"])


@pytest.mark.parametrize("body,field", [
    ({"args": {"mesage": "typo"}}, "args.mesage"),
    ({"args": {"message": 5}}, "args.message"),
    ({"args": {}}, "args.message"),
    ({"args": "hello"}, "args"),
    ({"arguments": {"message": "x"}}, "arguments"),
    (["not", "an", "object"], "body"),
])
def test_run_now_with_bad_arguments_is_a_400_naming_the_field_and_queues_nothing(
        api: Any, redis_client: Any, body: Any, field: str) -> None:
    task = make_task(api)
    response = api.post(f"/api/tasks/{task['id']}/run/", body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert queued(redis_client) == []
    assert audit_events("run_now") == []


def test_run_now_with_arguments_for_a_shell_task_is_refused_while_shell_jobs_are_disabled(
        api: Any, app: Any, redis_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_SHELL_JOBS", "true")
    app.config["ALLOW_SHELL_JOBS"] = True
    task = make_task(api, name="sh", job="shell", args={"command": "true"})
    app.config["ALLOW_SHELL_JOBS"] = False
    response = api.post(f"/api/tasks/{task['id']}/run/", {"args": {"command": "echo other"}})
    assert response.status_code == 400
    assert "job" in response.get_json()["fields"]
    assert queued(redis_client) == []


def test_run_now_with_arguments_is_audited_with_the_arguments_and_their_secrets_masked(api: Any) -> None:
    task = make_task(api, **HOOK)
    override = {**HOOK["args"], "headers": {"Authorization": "Bearer s3cret", "Accept": "text/plain"}}
    assert api.post(f"/api/tasks/{task['id']}/run/", {"args": override}).status_code == 202
    [event] = audit_events("run_now")
    assert (event.object_type, event.object_id) == ("task", str(task["id"]))
    assert event.details["args"]["headers"] == {"Authorization": MASK, "Accept": "text/plain"}
    assert event.details["args"]["url"] == "https://example.com/hook"


# -- retry a failed run now ------------------------------------------------------------------------

def test_retrying_a_failed_run_queues_the_next_attempt_of_the_same_occurrence(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    run_id = add_run(task["id"], "FAILED")
    response = api.post(f"/api/logs/{run_id}/retry/")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    expected_job = occ.occurrence_job_id(task["id"], DUE, 2, "RETRY")
    assert body == {"job_id": expected_job, "execution_id": run_id, "task_id": task["id"], "attempt": 2,
                    "trigger": "RETRY"}
    assert queued(redis_client) == [expected_job]
    assert job_kwargs(redis_client, expected_job)["trigger"] == "RETRY"
    [event] = audit_events("retry")
    assert (event.object_type, event.object_id, event.details["attempt"]) == ("execution", str(run_id), 2)


def test_a_second_retry_while_the_first_is_queued_is_a_409_and_queues_nothing_more(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    run_id = add_run(task["id"], "FAILED")
    assert api.post(f"/api/logs/{run_id}/retry/").status_code == 202
    again = api.post(f"/api/logs/{run_id}/retry/")
    assert again.status_code == 409
    assert len(queued(redis_client)) == 1
    assert len(audit_events("retry")) == 1


@pytest.mark.parametrize("statuses,retried", [
    (["RUNNING"], 0),
    (["RETRYING"], 0),
    (["SUCCESS"], 0),
    (["FAILED", "FAILED"], 0),      # attempt 1 was already retried (attempt 2 failed too)
    (["RETRYING", "RUNNING"], 1),   # the retry by policy is running
])
def test_only_the_latest_attempt_of_an_occurrence_when_failed_may_be_retried(
        api: Any, redis_client: Any, statuses: list[str], retried: int) -> None:
    task = make_task(api)
    run_ids = [add_run(task["id"], status, attempt) for attempt, status in enumerate(statuses, start=1)]
    response = api.post(f"/api/logs/{run_ids[retried]}/retry/")
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"
    assert queued(redis_client) == []


def test_a_run_of_a_deleted_or_disabled_task_cannot_be_retried(api: Any, redis_client: Any) -> None:
    kept, gone = make_task(api, name="kept"), make_task(api, name="gone")
    kept_run, gone_run = add_run(kept["id"], "FAILED"), add_run(gone["id"], "FAILED")
    api.post(f"/api/tasks/{kept['id']}/toggle/")
    api.delete(f"/api/tasks/{gone['id']}/")
    assert api.post(f"/api/logs/{kept_run}/retry/").status_code == 409
    assert api.post(f"/api/logs/{gone_run}/retry/").status_code == 409
    assert queued(redis_client) == []


def test_retrying_a_lost_run_whose_retry_is_scheduled_runs_that_retry_now_and_only_once(
        api: Any, redis_client: Any) -> None:
    task = make_task(api)
    run_id = add_run(task["id"], "FAILED", retry_at=DUE + timedelta(hours=1))
    retry = lifecycle.retry_of(db.session.get(Task, task["id"]), db.session.get(Execution, run_id))
    occ.schedule_at(redis_client, retry, DUE + timedelta(hours=1))
    response = api.post(f"/api/logs/{run_id}/retry/")
    assert response.status_code == 202
    assert response.get_json()["job_id"] == retry.job_id
    assert redis_client.zscore(occ.SCHEDULED_KEY, retry.job_id) is None
    assert queued(redis_client) == [retry.job_id]


def test_the_retry_of_a_run_with_overridden_arguments_gets_the_same_arguments(api: Any, redis_client: Any) -> None:
    task = make_task(api)
    run_id = add_run(task["id"], "FAILED", args={"message": "overridden"})
    job_id = api.post(f"/api/logs/{run_id}/retry/").get_json()["job_id"]
    assert job_kwargs(redis_client, job_id)["args"] == {"message": "overridden"}


def test_a_viewer_may_not_retry_and_an_unknown_run_is_a_404(api: Any, client: Any, redis_client: Any) -> None:
    task = make_task(api)
    run_id = add_run(task["id"], "FAILED")
    assert client.post(f"/api/logs/{run_id}/retry/", headers=viewer_headers()).status_code == 403
    assert api.post("/api/logs/999999/retry/").status_code == 404
    assert queued(redis_client) == []


# -- the traceback and the arguments of a run ------------------------------------------------------

def test_one_run_shows_its_traceback_and_arguments_and_the_list_leaves_the_traceback_out(api: Any) -> None:
    task = make_task(api)
    trace = 'Traceback (most recent call last):\n  File "jobs/builtin.py", line 1, in fail\nRuntimeError: <boom>\n'
    run_id = add_run(task["id"], "FAILED", traceback=trace, args={"message": "overridden"})
    one = api.get(f"/api/logs/{run_id}/").get_json()
    assert one["traceback"] == trace
    assert one["args"] == {"message": "overridden"}
    [listed] = api.get("/api/logs/").get_json()["results"]
    assert "traceback" not in listed
    assert listed["args"] == {"message": "overridden"}


def test_the_openapi_document_has_the_retry_route_and_the_optional_run_body(app: Any) -> None:
    paths = openapi_document()["paths"]
    retry = paths["/api/logs/{execution_id}/retry/"]["post"]
    assert {"202", "404", "409", "503"} <= set(retry["responses"])
    run_body = paths["/api/tasks/{task_id}/run/"]["post"]["requestBody"]
    assert run_body["required"] is False
    assert paths["/api/logs/{execution_id}/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] \
        == {"$ref": "#/components/schemas/ExecutionDetail"}
