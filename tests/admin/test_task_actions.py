"""Task list, detail and the buttons: toggle, run now, delete (with confirmation)."""
from __future__ import annotations

from typing import Any

from chime import occurrence as occ
from tests.admin.conftest import AdminClient, add_execution, add_task
from chime import services
from chime.extensions import db
from chime.models import Task
from chime.unit_of_work import unit_of_work


def make(name: str = "job", **fields: Any) -> Task:
    payload = {"name": name, "job": "noop", "schedule_type": "INTERVAL", "interval_seconds": 300, **fields}
    with unit_of_work():
        return services.create_task(payload, allow_shell=False)


def test_task_list_searches_filters_and_paginates(admin: AdminClient) -> None:
    for n in range(30):
        add_task(f"task-{n:02d}", status="FAILED" if n % 10 == 0 else "PENDING", enabled=n % 2 == 0,
                 schedule_type="CRON" if n == 7 else "INTERVAL", cron="0 * * * *" if n == 7 else None,
                 interval_seconds=None if n == 7 else 60)
    first = admin.html("/tasks")
    assert "Showing 1–25 of 30 tasks" in first and "task-24" in first and "task-25" not in first
    second = admin.html("/tasks?page=2")
    assert "Showing 26–30 of 30 tasks" in second and "task-25" in second
    assert "Showing 1–1 of 1 tasks" in admin.html("/tasks?q=task-07")
    assert "Showing 1–3 of 3 tasks" in admin.html("/tasks?status=FAILED")
    assert "Showing 1–15 of 15 tasks" in admin.html("/tasks?enabled=false")
    assert "Showing 1–1 of 1 tasks" in admin.html("/tasks?type=CRON")
    assert "No task matches these filters." in admin.html("/tasks?q=nothing%25like_this")
    assert "Showing 1–25" in admin.html("/tasks?status=bogus&type=bogus")  # unknown choices are ignored
    assert "page: must be between 1 and" in admin.html("/tasks?page=-3", status=400)  # a bad page is refused


def test_task_list_shows_badges_and_relative_next_runs(admin: AdminClient) -> None:
    task = make("soon")
    html = admin.html("/tasks")
    assert '<span class="badge badge-pending">Pending</span>' in html
    assert '<span class="badge badge-on">Enabled</span>' in html
    iso = task.next_run_at.isoformat()
    assert f'<time datetime="{iso}" data-format="relative"' in html and ">in 5 min</time>" in html
    assert "Every 5 min" in html


def test_toggle_disables_and_enables_and_returns_to_the_list(admin: AdminClient, redis_client: Any) -> None:
    task = make()
    assert occ.pending_job_id(redis_client, task.id) is not None
    response = admin.post(f"/tasks/{task.id}/toggle", {"next": "/tasks?q=job"})
    assert response.status_code == 302 and response.headers["Location"] == "/tasks?q=job"
    db.session.expire_all()
    assert db.session.get(Task, task.id).enabled is False
    assert occ.pending_job_id(redis_client, task.id) is None
    assert "Task “job” disabled." in admin.html("/tasks?q=job")
    admin.post(f"/tasks/{task.id}/toggle", {"next": "https://evil.example/"})
    db.session.expire_all()
    assert db.session.get(Task, task.id).enabled is True


def test_run_now_queues_a_job_on_the_tasks_queue(admin: AdminClient, redis_client: Any) -> None:
    task = make(queue="high", enabled=False)
    response = admin.post(f"/tasks/{task.id}/run")
    assert response.status_code == 302 and response.headers["Location"] == f"/tasks/{task.id}"
    assert redis_client.llen("rq:queue:high") == 1
    job_id = redis_client.lindex("rq:queue:high", 0).decode()
    assert job_id.startswith(f"chime-{task.id}-") and job_id.endswith("-m")
    assert "queued to run now on queue high" in admin.html(f"/tasks/{task.id}")


def test_detail_shows_settings_dependencies_next_runs_and_history(admin: AdminClient) -> None:
    parent = make("parent")
    child = make("child", depends_on=[parent.id], args={}, cron=None)
    for n in range(25):
        add_execution(child, "FAILED" if n == 24 else "SUCCESS", minutes_ago=100 - n,
                      message="exit 3: disk full" if n == 24 else "")
    html = admin.html(f"/tasks/{child.id}")
    assert f'href="/tasks/{parent.id}">parent</a>' in html
    assert "exit 3: disk full" in html and "2.0 s" in html
    assert html.count("<time datetime=") >= 5 + 20
    assert "Showing 1–20 of 25 runs" in html
    assert "Showing 21–25 of 25 runs" in admin.html(f"/tasks/{child.id}?page=2")
    parent_html = admin.html(f"/tasks/{parent.id}")
    assert f'href="/tasks/{child.id}">child</a>' in parent_html  # needed by


def test_delete_asks_for_confirmation_first(admin: AdminClient, redis_client: Any) -> None:
    task = make("doomed")
    html = admin.html(f"/tasks/{task.id}/delete")
    assert "Delete “doomed”?" in html and "Delete task" in html
    assert db.session.get(Task, task.id) is not None  # GET changes nothing
    response = admin.post(f"/tasks/{task.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/tasks"
    db.session.expire_all()
    assert db.session.get(Task, task.id) is None
    assert occ.pending_job_id(redis_client, task.id) is None
    assert "Task “doomed” deleted." in admin.html("/tasks")


def test_delete_without_removing_the_dependency_is_refused_with_409_when_tasks_depend_on_it(
        admin: AdminClient) -> None:
    parent = make("parent")
    make("child", depends_on=[parent.id])
    assert "Remove the dependency and delete" in admin.html(f"/tasks/{parent.id}/delete")
    response = admin.post(f"/tasks/{parent.id}/delete")  # a form without detach (e.g. a dependant added since)
    assert response.status_code == 409
    assert "cannot be deleted: tasks depend on it" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Task, parent.id) is not None


def test_schedule_preview_endpoint(admin: AdminClient) -> None:
    body = admin.get("/tasks/preview?schedule_type=INTERVAL&interval_seconds=3600&timezone=Europe/Berlin"
                     "&start_at=2031-01-01T00:00").get_json()
    assert body["next_runs"][0] == "2030-12-31T23:00:00+00:00" and len(body["next_runs"]) == 5
    assert body["description"] == "Every 1 h" and body["error"] is None
    body = admin.get("/tasks/preview?schedule_type=ONE_TIME&run_at=2031-06-01T09:00&timezone=Europe/Berlin").get_json()
    assert body["next_runs"] == ["2031-06-01T07:00:00+00:00"]
    assert admin.get("/tasks/preview?schedule_type=INTERVAL&interval_seconds=x").get_json()["error"]
    assert "Unknown time zone" in admin.get("/tasks/preview?schedule_type=INTERVAL&interval_seconds=5"
                                            "&timezone=Nowhere/City").get_json()["error"]


def test_the_task_list_searches_names_and_jobs_like_the_api_and_lists_by_name(admin: AdminClient) -> None:
    make("zeta", job="echo", args={"message": "hi"})
    make("alpha")
    make("Echo-ish")
    html = admin.html("/tasks?q=ECHO")
    assert "Showing 1–2 of 2 tasks" in html and "alpha" not in html
    assert html.index("Echo-ish") < html.index("zeta")  # by name, whatever the ids
