"""The admin's Queues and Workers pages (issue 15), the Cancel button on a waiting job and the Stop button on
a running run; an operator sees the buttons, a viewer does not."""
from __future__ import annotations

from typing import Any

from rq import SimpleWorker

from chime import services
from chime.enums import Role
from chime.extensions import db
from chime.models import Execution, Task
from chime.redis_keys import queue_key, stop_key
from chime.unit_of_work import unit_of_work
from scheduler.boundary import PlainPickleSerializer
from tests.admin.conftest import PASSWORD, AdminClient, add_execution, sign_in
from webapp.auth import create_user


def make(name: str = "nightly") -> Task:
    payload = {"name": name, "job": "noop", "schedule_type": "INTERVAL", "interval_seconds": 3600}
    with unit_of_work():
        return services.create_task(payload, allow_shell=False)


def as_role(client: Any, role: Role) -> AdminClient:
    create_user(f"user-{role.value}", PASSWORD, role=role)
    assert sign_in(client, f"user-{role.value}").status_code == 302
    return AdminClient(client)


def test_the_queues_page_lists_each_waiting_job_with_its_task_and_a_cancel_button(admin: AdminClient) -> None:
    task = make()
    job_id = services.run_task_now(task)

    html = admin.html("/queues")

    assert "1 waiting" in html and "nightly" in html and job_id in html
    assert f'/queues/default/jobs/{job_id}/cancel' in html
    assert 'href="/queues"' in admin.html("/tasks")  # in the main navigation


def test_cancel_takes_the_job_off_its_queue_and_records_it(admin: AdminClient, redis_client: Any) -> None:
    task = make()
    job_id = services.run_task_now(task)

    response = admin.post(f"/queues/default/jobs/{job_id}/cancel", {"next": "/queues"})

    assert response.status_code == 302 and response.headers["Location"].endswith("/queues")
    assert redis_client.lrange(queue_key("default"), 0, -1) == []
    [run] = db.session.query(Execution).all()
    assert (run.status, run.job_id) == ("CANCELLED", job_id)
    assert "Cancelled" in admin.html(f"/logs/{run.id}")


def test_a_queue_is_shown_one_page_at_a_time(admin: AdminClient) -> None:
    task = make()
    job_ids = [services.run_task_now(task) for _ in range(27)]

    first, second = admin.html("/queues"), admin.html("/queues?queue=default&page=2")

    assert "27 waiting" in first and job_ids[24] in first and job_ids[25] not in first
    assert job_ids[25] in second and job_ids[26] in second and job_ids[0] not in second
    assert admin.get("/queues?queue=nope").status_code == 404


def test_a_viewer_sees_the_queues_without_cancel_buttons_and_cannot_cancel(client: Any, redis_client: Any) -> None:
    job_id = services.run_task_now(make())
    viewer = as_role(client, Role.VIEWER)

    assert job_id in viewer.html("/queues") and "/cancel" not in viewer.html("/queues")
    assert viewer.post(f"/queues/default/jobs/{job_id}/cancel").status_code == 403
    assert len(redis_client.lrange(queue_key("default"), 0, -1)) == 1


def test_the_workers_page_shows_state_current_run_and_counts(admin: AdminClient, redis_client: Any) -> None:
    task = make("backup")
    job_id = services.run_task_now(task)
    worker = SimpleWorker(["default"], connection=redis_client, serializer=PlainPickleSerializer, name="worker-7")
    worker.register_birth()
    job, _ = worker.dequeue_job_and_maintain_ttl(timeout=None)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    redis_client.hset(worker.key, mapping={"successful_job_count": 12, "failed_job_count": 3})
    run = add_execution(task, "RUNNING", job_id=job_id)

    html = admin.html("/workers")

    assert "worker-7" in html and "Busy" in html and f"/logs/{run.id}" in html and "backup" in html
    assert "<td>12</td>" in html and "<td>3</td>" in html


def test_a_running_run_has_a_stop_button_that_asks_its_worker(admin: AdminClient, redis_client: Any) -> None:
    run = add_execution(make(), "RUNNING", job_id="chime-1-1-1-m")

    assert "Stop this run" in admin.html(f"/logs/{run.id}")
    response = admin.post(f"/logs/{run.id}/stop")

    assert response.status_code == 302
    assert redis_client.get(stop_key(run.id)) is not None
    assert "asked to stop" in admin.html(f"/logs/{run.id}")


def test_an_ended_run_has_no_stop_button_and_a_stop_is_refused(admin: AdminClient, redis_client: Any) -> None:
    run = add_execution(make(), "SUCCESS")

    assert "Stop this run" not in admin.html(f"/logs/{run.id}")
    admin.post(f"/logs/{run.id}/stop")
    assert "is not running" in admin.html(f"/logs/{run.id}")
    assert redis_client.get(stop_key(run.id)) is None


def test_a_viewer_sees_no_stop_button(client: Any) -> None:
    run = add_execution(make(), "RUNNING", job_id="chime-1-1-1-m")
    viewer = as_role(client, Role.VIEWER)

    assert "Stop this run" not in viewer.html(f"/logs/{run.id}")
    assert viewer.post(f"/logs/{run.id}/stop").status_code == 403


def test_the_dashboard_counts_cancelled_runs_as_their_own_outcome(admin: AdminClient) -> None:
    task = make()
    add_execution(task, "CANCELLED", minutes_ago=30)
    add_execution(task, "SUCCESS", minutes_ago=30)

    html = admin.html("/")

    assert "Cancelled (1)" in html and "Success (1)" in html
