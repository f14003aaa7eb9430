"""The queues and workers in the API (issue 15): the jobs waiting on each queue with their task and occurrence,
a page at a time; cancel one (OPERATOR); the workers' state, current run and counts; stop a running run.
On SQLite and Postgres, with a real Redis."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from rq import SimpleWorker
from sqlalchemy import select

from chime import occurrence as occ
from chime import services
from chime.enums import Role
from chime.extensions import db
from chime.models import AuditEvent, Execution, Task
from chime.redis_keys import queue_key, stop_key
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler.boundary import PlainPickleSerializer
from webapp.auth import create_token, create_user


def new_task(name: str = "ping", **fields: Any) -> Task:
    payload = {"name": name, "job": "echo", "args": {"message": "hi"}, "schedule_type": "INTERVAL",
               "interval_seconds": 3600, **fields}
    with unit_of_work():
        task = services.create_task(payload, allow_shell=False)
    return task


def queued(redis_client: Any, queue: str = "default") -> list[str]:
    return [job_id.decode() for job_id in redis_client.lrange(queue_key(queue), 0, -1)]


def headers_of(role: Role) -> dict[str, str]:
    user = create_user(f"user-{role.value}", "a long enough password", role=role)
    return {"Authorization": f"Bearer {create_token('test', user)}"}


def audit_actions(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_each_queue_says_how_many_jobs_wait_on_it(api: Any) -> None:
    task = new_task()
    services.run_task_now(task)
    services.run_task_now(task)

    assert api.get("/api/queues/").get_json() == [
        {"name": "high", "count": 0}, {"name": "default", "count": 2}, {"name": "low", "count": 0}]


def test_a_queue_lists_its_jobs_next_first_with_their_task_and_occurrence_one_page_at_a_time(
        api: Any, redis_client: Any) -> None:
    task = new_task("nightly")
    job_ids = [services.run_task_now(task) for _ in range(3)]

    first = api.get("/api/queues/default/jobs/?limit=2").get_json()
    second = api.get("/api/queues/default/jobs/?limit=2&offset=2").get_json()

    assert first["count"] == 3 and first["previous"] is None and "offset=2" in first["next"]
    assert [j["job_id"] for j in first["results"] + second["results"]] == job_ids
    assert [j["position"] for j in first["results"] + second["results"]] == [1, 2, 3]
    job = first["results"][0]
    assert (job["task_id"], job["task_name"], job["trigger"], job["attempt"], job["kind"]) == (
        task.id, "nightly", "MANUAL", 1, "occurrence")
    assert job["scheduled_for"] == occ.parse_job_id(job_ids[0]).scheduled_for.isoformat()
    assert job["enqueued_at"] is not None


def test_an_unknown_queue_is_a_404_and_a_page_too_large_a_400(api: Any) -> None:
    assert api.get("/api/queues/nope/jobs/").status_code == 404
    assert api.get("/api/queues/default/jobs/?limit=100000").status_code == 400


def test_cancelling_a_queued_run_records_it_cancelled_and_takes_it_off_the_queue(
        api: Any, redis_client: Any) -> None:
    task = new_task()
    job_id = services.run_task_now(task)

    response = api.post(f"/api/queues/default/jobs/{job_id}/cancel/")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["trigger"], body["job_id"], body["task_id"]) == ("CANCELLED", "MANUAL", job_id, task.id)
    assert queued(redis_client) == []
    assert redis_client.hget(occ.job_key(job_id), "status") == b"canceled"  # RQ's own word, for its tools
    [event] = audit_actions("cancel")
    assert (event.object_type, event.object_id) == ("execution", str(body["id"]))
    again = api.post(f"/api/queues/default/jobs/{job_id}/cancel/")
    assert again.status_code == 409


def test_a_job_a_worker_has_taken_is_not_cancelled_but_must_be_stopped(api: Any, redis_client: Any) -> None:
    task = new_task()
    job_id = services.run_task_now(task)
    worker = SimpleWorker(["default"], connection=redis_client, serializer=PlainPickleSerializer)
    job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)
    worker.prepare_job_execution(job)

    response = api.post(f"/api/queues/default/jobs/{job_id}/cancel/")

    assert response.status_code == 409
    assert "already running: stop it instead" in response.get_json()["message"]
    assert db.session.scalars(select(Execution)).all() == []


def test_a_job_that_is_not_an_occurrence_or_not_of_that_queue_cannot_be_cancelled(
        api: Any, redis_client: Any) -> None:
    job_id = services.run_task_now(new_task())

    assert api.post("/api/queues/default/jobs/not-a-chime-job/cancel/").status_code == 404
    assert api.post(f"/api/queues/elsewhere/jobs/{job_id}/cancel/").status_code == 404
    assert api.post(f"/api/queues/high/jobs/{job_id}/cancel/").status_code == 404
    assert queued(redis_client) == [job_id]


def test_a_viewer_sees_the_queues_but_cannot_cancel(client: Any, redis_client: Any) -> None:
    viewer = headers_of(Role.VIEWER)
    job_id = services.run_task_now(new_task())

    assert client.get("/api/queues/default/jobs/", headers=viewer).status_code == 200
    assert client.post(f"/api/queues/default/jobs/{job_id}/cancel/", headers=viewer).status_code == 403
    assert queued(redis_client) == [job_id]


def running_execution(task: Task, job_id: str) -> Execution:
    now = utcnow()
    execution = Execution(task_id=task.id, task_name=task.name, status="RUNNING", attempt=1, trigger="MANUAL",
                          scheduled_for=now, started_at=now, job_id=job_id, worker="w")
    db.session.add(execution)
    db.session.commit()
    return execution


def test_a_worker_shows_its_state_current_run_since_when_and_counts(api: Any, redis_client: Any) -> None:
    task = new_task("backup")
    job_id = services.run_task_now(task)
    worker = SimpleWorker(["high", "default"], connection=redis_client, serializer=PlainPickleSerializer,
                          name="worker-1")
    worker.register_birth()
    job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    redis_client.hset(worker.key, mapping={"successful_job_count": 7, "failed_job_count": 2})
    execution = running_execution(task, job_id)

    [shown] = api.get("/api/workers/").get_json()

    assert (shown["name"], shown["state"], shown["queues"]) == ("worker-1", "busy", ["high", "default"])
    assert (shown["current_job_id"], shown["current_execution_id"], shown["current_task_name"]) == (
        job_id, execution.id, "backup")
    assert (shown["successful_job_count"], shown["failed_job_count"]) == (7, 2)
    assert shown["birth"] is not None and shown["last_heartbeat"] is not None
    assert shown["current_job_started_at"] is not None


def test_with_no_worker_registered_the_list_is_empty(api: Any) -> None:
    assert api.get("/api/workers/").get_json() == []


def test_stopping_a_running_run_asks_its_worker_and_answers_202(api: Any, redis_client: Any) -> None:
    task = new_task()
    execution = running_execution(task, "chime-1-1-1-m")

    response = api.post(f"/api/logs/{execution.id}/stop/")

    assert response.status_code == 202
    assert response.get_json()["status"] == "RUNNING"
    assert response.headers["Location"].endswith(f"/api/logs/{execution.id}/")
    assert redis_client.get(stop_key(execution.id)) is not None
    assert 0 < redis_client.ttl(stop_key(execution.id)) <= task.timeout_seconds + 600
    assert [e.object_id for e in audit_actions("stop")] == [str(execution.id)]


def test_a_run_that_has_ended_cannot_be_stopped_and_an_unknown_one_is_a_404(api: Any, redis_client: Any) -> None:
    task = new_task()
    execution = running_execution(task, "chime-1-1-1-m")
    execution.status, execution.finished_at = "SUCCESS", utcnow() + timedelta(seconds=1)
    db.session.commit()

    assert api.post(f"/api/logs/{execution.id}/stop/").status_code == 409
    assert redis_client.get(stop_key(execution.id)) is None
    assert api.post("/api/logs/999999/stop/").status_code == 404


def test_an_operator_may_stop_and_a_viewer_may_not(client: Any) -> None:
    task = new_task()
    execution = running_execution(task, "chime-1-1-1-m")

    assert client.post(f"/api/logs/{execution.id}/stop/", headers=headers_of(Role.VIEWER)).status_code == 403
    assert client.post(f"/api/logs/{execution.id}/stop/", headers=headers_of(Role.OPERATOR)).status_code == 202
