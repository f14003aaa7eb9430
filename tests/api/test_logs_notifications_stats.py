"""The execution log, notifications, stats, jobs and cron preview routes, on SQLite and Postgres."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler import health
from tests.api.test_tasks import make_task
from tests.conftest import AUTH
from tests.conftest import test_config as make_config
from webapp import create_app
from chime.extensions import db
from chime.models import Execution, Notification, Task

CLOSED_REDIS_URL = "redis://127.0.0.1:1/0"
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def add_execution(task: dict[str, Any] | None, *, status: str = "SUCCESS", trigger: str = "SCHEDULE",
                  created_at: datetime | None = None, minutes_ago: int = 0, **fields: Any) -> int:
    """Store one execution-log row directly and return its id."""
    when = NOW - timedelta(minutes=minutes_ago)
    execution = Execution(task_id=task["id"] if task else None, task_name=task["name"] if task else "gone",
                          status=status, attempt=1, trigger=trigger, scheduled_for=when,
                          created_at=created_at or when, **fields)
    db.session.add(execution)
    db.session.commit()
    return execution.id


def add_notification(task: dict[str, Any] | None = None, *, title: str = "hello", read: bool = False,
                     level: str = "INFO") -> int:
    notification = Notification(task_id=task["id"] if task else None, level=level, title=title,
                                message="details", read=read)
    db.session.add(notification)
    db.session.commit()
    return notification.id


def ids(page: dict[str, Any]) -> list[int]:
    return [row["id"] for row in page["results"]]


@pytest.fixture
def task(api: Any) -> dict[str, Any]:
    return make_task(api)


@pytest.fixture
def app_without_redis(app: Any, database_url: str) -> Iterator[Any]:
    """A second app on the same (prepared) database whose REDIS_URL points at a closed port.

    Call it after the first app's writes: it ends the first app's open transaction, which on
    SQLite holds the write lock (BEGIN IMMEDIATE) the second app would wait for.
    """
    db.session.remove()
    down = create_app(make_config(database_url, CLOSED_REDIS_URL))
    yield down
    with down.app_context():
        db.session.remove()
        db.engine.dispose()


# --------------------------------------------------------------------------- the execution log


def test_logs_are_listed_newest_first_one_page_at_a_time(api: Any, task: dict[str, Any]) -> None:
    stored = [add_execution(task, minutes_ago=n) for n in range(5)]
    first = api.get("/api/logs/?limit=2").get_json()
    assert first["count"] == 5
    assert ids(first) == sorted(stored, reverse=True)[:2]
    assert first["previous"] is None and "offset=2" in first["next"] and "limit=2" in first["next"]
    last = api.get("/api/logs/?limit=2&offset=4").get_json()
    assert ids(last) == [min(stored)]
    assert last["next"] is None and "offset=2" in last["previous"]


def test_a_log_page_link_keeps_the_filters(api: Any, task: dict[str, Any]) -> None:
    for n in range(3):
        add_execution(task, status="FAILED", minutes_ago=n)
    page = api.get("/api/logs/?status=FAILED&limit=1").get_json()
    assert "status=FAILED" in page["next"]
    assert api.get(page["next"]).get_json()["count"] == 3


def test_logs_filter_by_task(api: Any, task: dict[str, Any]) -> None:
    other = make_task(api, name="other")
    mine = add_execution(task)
    add_execution(other)
    assert ids(api.get(f"/api/logs/?task_id={task['id']}").get_json()) == [mine]


def test_logs_filter_by_status_in_any_case(api: Any, task: dict[str, Any]) -> None:
    failed = add_execution(task, status="FAILED", minutes_ago=1)
    add_execution(task, status="SUCCESS", minutes_ago=2)
    assert ids(api.get("/api/logs/?status=FAILED").get_json()) == [failed]
    assert ids(api.get("/api/logs/?status=failed").get_json()) == [failed]


def test_logs_filter_by_trigger(api: Any, task: dict[str, Any]) -> None:
    manual = add_execution(task, trigger="MANUAL", minutes_ago=1)
    add_execution(task, trigger="SCHEDULE", minutes_ago=2)
    assert ids(api.get("/api/logs/?trigger=MANUAL").get_json()) == [manual]


def test_logs_filter_by_since_inclusive_and_until_exclusive(api: Any, task: dict[str, Any]) -> None:
    base = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    early, middle, late = (add_execution(task, minutes_ago=n, created_at=base + timedelta(hours=h))
                           for n, h in ((3, 0), (2, 1), (1, 2)))
    assert ids(api.get("/api/logs/?since=2030-01-01T13:00:00%2B00:00").get_json()) == [late, middle]
    assert ids(api.get("/api/logs/?until=2030-01-01T13:00:00Z").get_json()) == [early]
    assert ids(api.get("/api/logs/?since=2030-01-01T12:30:00&until=2030-01-01T14:00:00").get_json()) == [middle]
    assert ids(api.get("/api/logs/?since=2030-01-01T14:30:00%2B01:00").get_json()) == [late]  # 13:30 UTC


def test_log_filters_combine(api: Any, task: dict[str, Any]) -> None:
    other = make_task(api, name="other")
    wanted = add_execution(task, status="FAILED", trigger="RETRY", minutes_ago=1)
    add_execution(task, status="FAILED", trigger="SCHEDULE", minutes_ago=2)
    add_execution(other, status="FAILED", trigger="RETRY", minutes_ago=3)
    query = f"task_id={task['id']}&status=FAILED&trigger=RETRY&since=2000-01-01T00:00:00Z"
    assert ids(api.get(f"/api/logs/?{query}").get_json()) == [wanted]


@pytest.mark.parametrize("query,field", [
    ("status=DONE", "status"), ("trigger=CRON", "trigger"), ("since=yesterday", "since"), ("until=2030-13-01", "until"),
    ("task_id=0", "task_id"), ("task_id=abc", "task_id"), ("limit=0", "limit"), ("limit=501", "limit"),
    ("offset=-1", "offset"),
])
def test_a_bad_log_filter_is_a_400_naming_it(api: Any, query: str, field: str) -> None:
    response = api.get(f"/api/logs/?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"
    assert field in response.get_json()["fields"]


def test_a_task_log_lists_only_that_task_newest_first(api: Any, task: dict[str, Any]) -> None:
    other = make_task(api, name="other")
    older = add_execution(task, minutes_ago=2)
    newer = add_execution(task, minutes_ago=1, status="FAILED")
    add_execution(other)
    page = api.get(f"/api/tasks/{task['id']}/logs/").get_json()
    assert page["count"] == 2 and ids(page) == [newer, older]
    assert ids(api.get(f"/api/tasks/{task['id']}/logs/?status=FAILED").get_json()) == [newer]
    assert ids(api.get(f"/api/tasks/{task['id']}/logs/?limit=1&offset=1").get_json()) == [older]


def test_a_task_log_of_a_missing_task_is_a_404(api: Any) -> None:
    response = api.get("/api/tasks/999/logs/")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_a_task_log_rejects_a_bad_filter(api: Any, task: dict[str, Any]) -> None:
    assert api.get(f"/api/tasks/{task['id']}/logs/?task_id=abc").status_code == 400
    assert api.get(f"/api/tasks/{task['id']}/logs/?trigger=SOMETIMES").status_code == 400


def test_one_log_entry_shows_every_field(api: Any, task: dict[str, Any]) -> None:
    started = NOW - timedelta(seconds=3)
    execution_id = add_execution(task, status="SUCCESS", started_at=started, finished_at=NOW, duration_ms=3000,
                                 message="done", result={"message": "hi"}, worker="w1", job_id="chime-x")
    entry = api.get(f"/api/logs/{execution_id}/").get_json()
    assert entry == {
        "id": execution_id, "task_id": task["id"], "task_name": task["name"], "status": "SUCCESS", "attempt": 1,
        "trigger": "SCHEDULE", "scheduled_for": NOW.isoformat(), "started_at": started.isoformat(),
        "finished_at": NOW.isoformat(), "duration_ms": 3000, "message": "done", "result": {"message": "hi"},
        "worker": "w1", "job_id": "chime-x", "retry_at": None, "created_at": NOW.isoformat(),
        "args": None, "traceback": None,
    }


def test_a_missing_log_entry_is_a_404(api: Any) -> None:
    response = api.get("/api/logs/12345/")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert "12345" in response.get_json()["message"]


def test_a_log_entry_outlives_its_task(api: Any, task: dict[str, Any]) -> None:
    execution_id = add_execution(task)
    assert api.delete(f"/api/tasks/{task['id']}/").status_code == 204
    entry = api.get(f"/api/logs/{execution_id}/").get_json()
    assert entry["task_id"] is None and entry["task_name"] == task["name"]


# --------------------------------------------------------------------------- notifications


def test_notifications_are_listed_newest_first_and_filtered_by_unread(api: Any) -> None:
    old_read = add_notification(title="old", read=True)
    unread = add_notification(title="new")
    page = api.get("/api/notifications/").get_json()
    assert page["count"] == 2 and ids(page) == [unread, old_read]
    assert ids(api.get("/api/notifications/?unread=true").get_json()) == [unread]
    assert ids(api.get("/api/notifications/?unread=false").get_json()) == [old_read]
    assert api.get("/api/notifications/?unread=maybe").status_code == 400


def test_a_notification_shows_its_fields(api: Any, task: dict[str, Any]) -> None:
    notification_id = add_notification(task, title="ping failed", level="ERROR")
    shown = api.get("/api/notifications/").get_json()["results"][0]
    assert shown["id"] == notification_id and shown["task_id"] == task["id"] and shown["execution_id"] is None
    assert (shown["level"], shown["title"], shown["message"], shown["read"]) == ("ERROR", "ping failed", "details",
                                                                                 False)
    assert shown["created_at"].endswith("+00:00")


def test_marking_one_notification_read(api: Any) -> None:
    first = add_notification(title="a")
    second = add_notification(title="b")
    response = api.post(f"/api/notifications/{first}/read/")
    assert response.status_code == 200
    assert response.get_json()["id"] == first and response.get_json()["read"] is True
    assert ids(api.get("/api/notifications/?unread=true").get_json()) == [second]
    assert api.post(f"/api/notifications/{first}/read/").get_json()["read"] is True  # again: still fine


def test_marking_a_missing_notification_read_is_a_404(api: Any) -> None:
    response = api.post("/api/notifications/999/read/")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_read_all_marks_every_unread_one_and_says_how_many(api: Any) -> None:
    for n in range(3):
        add_notification(title=f"n{n}")
    add_notification(title="seen", read=True)
    assert api.post("/api/notifications/read-all/").get_json() == {"marked_read": 3}
    assert api.get("/api/notifications/?unread=true").get_json()["count"] == 0
    assert api.post("/api/notifications/read-all/").get_json() == {"marked_read": 0}


# --------------------------------------------------------------------------- stats


def test_stats_have_the_documented_shape(api: Any) -> None:
    stats = api.get("/api/stats/").get_json()
    assert set(stats) == {"tasks", "executions", "next_runs", "queues", "workers", "scheduler", "reconciler",
                          "notifications"}
    assert stats["tasks"] == {"total": 0, "enabled": 0, "by_status": {}}
    assert stats["executions"] == {"total": 0, "by_status": {}, "last_24h": 0}
    assert stats["next_runs"] == []
    assert stats["queues"] == {"high": 0, "default": 0, "low": 0}
    assert stats["workers"] == {"count": 0, "names": []}
    assert stats["scheduler"] == {"alive": False, "last_heartbeat": None}
    assert stats["reconciler"] == {"last_run_at": None, "last_report": None}
    assert stats["notifications"] == {"unread": 0}


def test_stats_count_tasks_by_status_and_enabled(api: Any) -> None:
    make_task(api, name="a")
    make_task(api, name="b", enabled=False)
    c = make_task(api, name="c")
    db.session.get(Task, c["id"]).status = "FAILED"
    db.session.commit()
    assert api.get("/api/stats/").get_json()["tasks"] == {"total": 3, "enabled": 2,
                                                          "by_status": {"PENDING": 2, "FAILED": 1}}


def test_stats_count_executions_by_status_and_in_the_last_day(api: Any, task: dict[str, Any]) -> None:
    add_execution(task, status="SUCCESS", minutes_ago=1)
    add_execution(task, status="FAILED", minutes_ago=2)
    add_execution(task, status="SUCCESS", minutes_ago=3, created_at=NOW - timedelta(days=2))
    executions = api.get("/api/stats/").get_json()["executions"]
    assert executions == {"total": 3, "by_status": {"SUCCESS": 2, "FAILED": 1}, "last_24h": 2}


def test_stats_list_at_most_ten_next_runs_soonest_first_and_only_enabled(api: Any) -> None:
    for n in range(12):
        make_task(api, name=f"every-{n}", interval_seconds=3600 - n * 60)
    make_task(api, name="off", interval_seconds=1, enabled=False)
    next_runs = api.get("/api/stats/").get_json()["next_runs"]
    assert len(next_runs) == 10
    times = [datetime.fromisoformat(run["next_run_at"]) for run in next_runs]
    assert times == sorted(times)
    assert "off" not in {run["name"] for run in next_runs}
    assert set(next_runs[0]) == {"task_id", "name", "next_run_at"}


def test_stats_show_queue_depths(api: Any, task: dict[str, Any]) -> None:
    api.post(f"/api/tasks/{task['id']}/run/")
    assert api.get("/api/stats/").get_json()["queues"] == {"high": 0, "default": 1, "low": 0}


def test_stats_show_a_live_scheduler_and_the_last_reconcile(api: Any, redis_client: Any) -> None:
    health.beat_scheduler(redis_client, "scheduler-1", True)
    report = {"finished_at": "2030-01-01T00:00:05+00:00", "orphans_removed": 2}
    health.save_reconcile_report(redis_client, report)
    stats = api.get("/api/stats/").get_json()
    assert stats["scheduler"]["alive"] is True
    assert abs(datetime.fromisoformat(stats["scheduler"]["last_heartbeat"]) - datetime.now(timezone.utc)) < \
        timedelta(minutes=1)
    assert stats["reconciler"] == {"last_run_at": "2030-01-01T00:00:05+00:00", "last_report": report}


def test_stats_count_unread_notifications(api: Any) -> None:
    add_notification(title="a")
    add_notification(title="b")
    add_notification(title="c", read=True)
    assert api.get("/api/stats/").get_json()["notifications"] == {"unread": 2}


def test_stats_without_redis_still_answer_with_nulls(api: Any, task: dict[str, Any], app_without_redis: Any) -> None:
    stats = app_without_redis.test_client().get("/api/stats/", headers=AUTH).get_json()
    assert stats["tasks"]["total"] == 1
    assert stats["queues"] is None
    assert stats["workers"] == {"count": None, "names": []}
    assert stats["scheduler"] == {"alive": False, "last_heartbeat": None}


# --------------------------------------------------------------------------- jobs


def test_jobs_list_the_six_built_ins_by_name_with_their_parameters(api: Any) -> None:
    jobs = api.get("/api/jobs/").get_json()
    names = [job["name"] for job in jobs]
    assert names == sorted(names)
    assert {"echo", "fail", "http_request", "noop", "shell", "sleep"} <= set(names)
    by_name = {job["name"]: job for job in jobs}
    assert by_name["noop"]["parameters"] == []
    assert by_name["echo"]["parameters"] == [
        {"name": "message", "type": "string", "required": True, "default": None, "nullable": False}]
    assert [p["name"] for p in by_name["http_request"]["parameters"]] == [
        "url", "method", "headers", "json", "timeout_seconds", "expected_statuses"]
    assert [p["name"] for p in by_name["fail"]["parameters"]] == ["message", "times"]  # the context is not one
    assert by_name["sleep"]["parameters"][0] == {"name": "seconds", "type": "number", "required": True,
                                                 "default": None, "nullable": False}
    assert by_name["shell"]["parameters"][1]["default"] == 300
    assert all(job["description"] for job in jobs)


# --------------------------------------------------------------------------- cron preview


def test_cron_preview_lists_five_runs_by_default_and_describes_the_expression(api: Any) -> None:
    body = api.get("/api/cron/preview/?cron=0 9 * * 1-5").get_json()
    assert body["description"] == "At 09:00, Monday through Friday"
    runs = [datetime.fromisoformat(t) for t in body["next_runs"]]
    assert len(runs) == 5
    assert runs == sorted(runs) and runs[0] > datetime.now(timezone.utc)
    assert all(r.utcoffset() == timedelta(0) and (r.hour, r.minute, r.weekday() < 5) == (9, 0, True) for r in runs)


def test_cron_preview_count_sets_how_many_runs(api: Any) -> None:
    assert len(api.get("/api/cron/preview/?cron=@hourly&count=12").get_json()["next_runs"]) == 12
    assert len(api.get("/api/cron/preview/?cron=@hourly&count=1").get_json()["next_runs"]) == 1


def test_cron_preview_reads_the_expression_in_the_time_zone(api: Any) -> None:
    body = api.get("/api/cron/preview/?cron=0 9 * * *&timezone=Europe/Berlin&count=3").get_json()
    for text in body["next_runs"]:
        instant = datetime.fromisoformat(text)
        assert text.endswith("+00:00")
        local = instant.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (9, 0)


@pytest.mark.parametrize("query,fields", [
    ("cron=61 * * * *", {"cron"}),
    ("cron=* * * *", {"cron"}),
    ("", {"cron"}),
    ("cron=@daily&timezone=Mars/Olympus", {"timezone"}),
    ("cron=nope&timezone=Nowhere/Land", {"cron", "timezone"}),
])
def test_cron_preview_of_a_bad_expression_or_zone_is_a_400_naming_it(api: Any, query: str, fields: set[str]) -> None:
    response = api.get(f"/api/cron/preview/?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert set(body["fields"]) == fields and all(body["fields"].values())


@pytest.mark.parametrize("count", ["0", "51", "many"])
def test_cron_preview_count_out_of_bounds_is_a_400(api: Any, count: str) -> None:
    response = api.get(f"/api/cron/preview/?cron=@daily&count={count}")
    assert response.status_code == 400
    assert "count" in response.get_json()["fields"]
