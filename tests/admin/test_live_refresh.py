"""What the pages' live refresh needs: the task's and the engine's JSON endpoints and the poll hooks."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import redis as redis_lib
from rq import Worker

from scheduler import health
from tests.admin.conftest import AdminClient, add_execution, add_task
from tests.services import free_port
from chime import services
from chime.unit_of_work import unit_of_work
from chime.extensions import db


def test_task_live_json_has_the_task_and_its_next_fire_times(admin: AdminClient) -> None:
    with unit_of_work():
        task = services.create_task({"name": "tick", "job": "noop", "schedule_type": "INTERVAL",
                                     "interval_seconds": 60}, allow_shell=False)
    response = admin.get(f"/tasks/{task.id}/live")
    assert response.status_code == 200 and response.is_json
    data = response.get_json()
    assert data["task"]["id"] == task.id and data["task"]["enabled"] is True
    assert data["task"]["status"] == task.status and data["task"]["last_run_at"] is None
    runs = [datetime.fromisoformat(at) for at in data["next_runs"]]
    assert len(runs) == 5 and all(b - a == runs[1] - runs[0] for a, b in zip(runs, runs[1:]))
    assert (runs[1] - runs[0]).total_seconds() == 60 and all(r.utcoffset().total_seconds() == 0 for r in runs)


def test_task_live_json_of_a_disabled_task_and_of_a_missing_one(admin: AdminClient) -> None:
    task = add_task("off", enabled=False)
    data = admin.get(f"/tasks/{task.id}/live").get_json()
    assert data["task"]["enabled"] is False and len(data["next_runs"]) == 5  # what it would do when enabled
    assert admin.get("/tasks/999999/live").status_code == 404


def test_task_live_json_needs_a_session(app: Any, client: Any) -> None:
    task = add_task("private")
    response = client.get(f"/tasks/{task.id}/live")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_detail_page_marks_its_live_parts(admin: AdminClient) -> None:
    task = add_task("watched")
    run = add_execution(task, "RUNNING")
    run.duration_ms = run.finished_at = None
    db.session.commit()
    html = admin.html(f"/tasks/{task.id}")
    assert f'data-poll-url="/tasks/{task.id}/live"' in html
    assert f'data-poll-url="/api/tasks/{task.id}/logs/?limit=20"' in html
    assert 'data-columns="run outcome trigger attempt scheduled started duration message"' in html
    assert f'<tr data-run-id="{run.id}" data-run-state="RUNNING/1/">' in html
    for hook in ("data-task-status", "data-task-enabled", "data-task-toggle", "data-task-last-run",
                 "data-task-next-runs"):
        assert hook in html
    for minutes in range(20):
        add_execution(task, minutes_ago=10 + minutes)
    assert "data-live-runs" not in admin.html(f"/tasks/{task.id}?page=2")  # only the newest page is live


def test_logs_page_is_live_only_without_filters(admin: AdminClient) -> None:
    task = add_task("logged")
    run = add_execution(task, "SUCCESS")
    html = admin.html("/logs?tz=Europe/Berlin")
    assert 'data-poll-url="/api/logs/?limit=25"' in html
    assert f'<tr data-run-id="{run.id}" data-run-state="SUCCESS/1/2000">' in html
    for query in (f"task={task.id}", "status=FAILED", "trigger=MANUAL", "range=24h", "since=2024-01-01T00:00",
                  "until=2024-01-01T00:00"):
        assert "data-live-runs" not in admin.html(f"/logs?{query}"), query
    assert "data-live-runs" in admin.html("/logs?status=bogus")  # ignored values are no filter


# --------------------------------------------------------------------------- the dashboard's engine card and banner


def test_engine_live_json_raises_both_alerts_when_nothing_runs(admin: AdminClient) -> None:
    response = admin.get("/engine/live")
    assert response.status_code == 200 and response.is_json
    data = response.get_json()
    assert data["alerts"] == ["The scheduler is not running: no task will fire on schedule.",
                              "No worker is running: queued runs are waiting."]
    assert data["scheduler"] == {"alive": False, "last_heartbeat": None}
    assert data["workers"] == {"count": 0, "names": []}
    assert data["queues"] == {"high": 0, "default": 0, "low": 0}
    assert data["reconciler"] == {"last_run_at": None} and data["notifications"] == {"unread": 0}


def test_engine_live_json_follows_the_scheduler_and_the_workers(admin: AdminClient, redis_client: Any) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    worker = Worker(["default"], connection=redis_client, name="worker-live")
    worker.register_birth()
    try:
        alive = admin.get("/engine/live").get_json()
    finally:
        worker.register_death()
    redis_client.hdel(health.SCHEDULER_HEARTBEAT_KEY, "scheduler-1")  # what a scheduler does when it stops
    stopped = admin.get("/engine/live").get_json()
    assert alive["alerts"] == [] and alive["scheduler"]["alive"] is True
    assert alive["workers"] == {"count": 1, "names": ["worker-live"]}
    assert stopped["scheduler"]["alive"] is False and stopped["workers"]["count"] == 0
    assert len(stopped["alerts"]) == 2


def test_engine_live_json_says_when_redis_is_unreachable(admin: AdminClient, app: Any) -> None:
    app.extensions["redis"] = redis_lib.Redis(host="127.0.0.1", port=free_port())
    data = admin.get("/engine/live").get_json()
    assert data["alerts"] == ["Redis is unreachable: nothing can be scheduled or run."]
    assert data["queues"] is None and data["workers"]["count"] is None


def test_engine_live_json_needs_a_session(app: Any, client: Any) -> None:
    response = client.get("/engine/live")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_dashboard_marks_its_live_engine_card_and_keeps_a_hidden_banner(admin: AdminClient, redis_client: Any) -> None:
    html = admin.html("/")
    assert 'data-live-engine data-poll-url="/engine/live"' in html
    for hook in ("data-engine-scheduler", "data-engine-workers", "data-engine-queues", "data-engine-reconciler",
                 "data-engine-unread", "data-engine-alerts"):
        assert hook in html
    assert re.search(r'data-engine-alert>', html)  # shown: nothing runs
    health.beat_scheduler(redis_client, "scheduler-1", True)
    worker = Worker(["default"], connection=redis_client, name="worker-live")
    worker.register_birth()
    try:
        html = admin.html("/")
    finally:
        worker.register_death()
    assert re.search(r'data-engine-alert hidden>', html)  # there for app.js to show, hidden while all runs
