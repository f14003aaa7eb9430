"""The execution log pages, the notifications page and the chart's numbers."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from tests.admin.conftest import AdminClient, add_execution, add_notification, add_task
from webapp import queries
from chime.extensions import db
from chime.models import Notification


def runs_shown(html: str) -> set[str]:
    """The run numbers the page links to (not its other /logs/ links, such as the exports)."""
    return set(re.findall(r'href="/logs/(\d+)">#\1</a>', html))


def test_log_filters(admin: AdminClient) -> None:
    alpha, beta = add_task("alpha"), add_task("beta")
    ok = add_execution(alpha, "SUCCESS", minutes_ago=10)
    failed = add_execution(alpha, "FAILED", minutes_ago=120, message="boom")
    manual = add_execution(beta, "SUCCESS", minutes_ago=60 * 24 * 3, trigger="MANUAL")
    retry = add_execution(beta, "FAILED", minutes_ago=30, trigger="RETRY", attempt=2)
    every = {str(e.id) for e in (ok, failed, manual, retry)}
    assert runs_shown(admin.html("/logs")) == every
    assert runs_shown(admin.html(f"/logs?task={alpha.id}")) == {str(ok.id), str(failed.id)}
    assert runs_shown(admin.html("/logs?status=FAILED")) == {str(failed.id), str(retry.id)}
    assert runs_shown(admin.html("/logs?trigger=MANUAL")) == {str(manual.id)}
    assert runs_shown(admin.html("/logs?range=1h")) == {str(ok.id), str(retry.id)}
    assert runs_shown(admin.html("/logs?range=24h&status=FAILED")) == {str(failed.id), str(retry.id)}
    assert runs_shown(admin.html(f"/logs?task={beta.id}&status=FAILED&trigger=RETRY")) == {str(retry.id)}
    assert "No run matches these filters." in admin.html("/logs?status=SKIPPED")
    assert runs_shown(admin.html("/logs?status=nonsense&trigger=nonsense")) == every  # unknown choices are ignored
    assert "task: must be a whole number" in admin.html("/logs?task=x", status=400)  # a malformed id is refused


def test_log_time_range_is_read_in_the_browsers_zone(admin: AdminClient) -> None:
    task = add_task()
    run = add_execution(task, minutes_ago=0)
    local = run.created_at.astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    before = (local - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    after = (local + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert runs_shown(admin.html(f"/logs?tz=Europe/Berlin&since={before}&until={after}")) == {str(run.id)}
    assert runs_shown(admin.html(f"/logs?tz=Europe/Berlin&since={after}")) == set()
    assert runs_shown(admin.html(f"/logs?tz=Europe/Berlin&until={before}")) == set()


def test_logs_paginate(admin: AdminClient) -> None:
    task = add_task()
    for n in range(30):
        add_execution(task, minutes_ago=n)
    assert "Showing 1–25 of 30 runs" in admin.html("/logs")
    assert "Showing 26–30 of 30 runs" in admin.html("/logs?status=SUCCESS&page=2")
    assert 'href="/logs?status=SUCCESS&amp;page=1"' in admin.html("/logs?status=SUCCESS&page=2")


def test_log_detail_shows_message_result_and_timing(admin: AdminClient) -> None:
    task = add_task("alpha")
    run = add_execution(task, "FAILED", message="Traceback:\n  boom", result={"b": [1, 2], "a": "x"},
                        worker="w-1", job_id="chime-1-2-1")
    html = admin.html(f"/logs/{run.id}")
    assert "Traceback:\n  boom" in html
    assert '{\n  &#34;a&#34;: &#34;x&#34;,\n  &#34;b&#34;: [\n    1,\n    2\n  ]\n}' in html  # pretty JSON
    assert "2.0 s" in html and "w-1" in html and "chime-1-2-1" in html
    assert f'href="/tasks/{task.id}"' in html


def test_log_of_a_deleted_task(admin: AdminClient) -> None:
    run = add_execution(None, "SUCCESS")
    assert "(deleted)" in admin.html(f"/logs/{run.id}")
    assert "(deleted)" in admin.html("/logs")


def unread() -> int:
    return db.session.scalar(select(func.count()).select_from(Notification).where(Notification.read.is_(False)))


def test_notifications_page_lists_and_marks_read(admin: AdminClient) -> None:
    task = add_task("alpha")
    first = add_notification("alpha failed", task=task, message="exit 1")
    add_notification("beta recovered", level="SUCCESS")
    add_notification("old news", read=True)
    html = admin.html("/notifications")
    assert "alpha failed" in html and "beta recovered" in html and "old news" in html
    assert "2 unread." in html and html.count('<tr class="unread">') == 2
    assert "old news" not in admin.html("/notifications?show=unread")
    response = admin.post(f"/notifications/{first.id}/read", {"next": "/notifications?show=unread"})
    assert response.status_code == 302 and response.headers["Location"] == "/notifications?show=unread"
    assert unread() == 1
    db.session.expire_all()
    assert db.session.get(Notification, first.id).read is True


def test_mark_all_read(admin: AdminClient) -> None:
    for n in range(3):
        add_notification(f"n{n}")
    response = admin.post("/notifications/read-all")
    assert response.status_code == 302
    assert unread() == 0
    html = admin.html("/notifications")
    assert "Marked 3 notifications read." in html and "All caught up." in html


def test_mark_read_of_an_unknown_notification_is_404(admin: AdminClient) -> None:
    assert admin.post("/notifications/999/read").status_code == 404


def test_hourly_outcomes_buckets_by_hour_and_status(app: Any) -> None:
    task = add_task()
    now = datetime.now(timezone.utc)
    add_execution(task, "SUCCESS", minutes_ago=0.5)
    add_execution(task, "FAILED", minutes_ago=0.5)
    add_execution(task, "SUCCESS", minutes_ago=60 * 5)
    add_execution(task, "RUNNING", minutes_ago=60 * 5)
    add_execution(task, "SUCCESS", minutes_ago=60 * 30)  # outside the window
    buckets = queries.hourly_outcomes(now)
    assert len(buckets) == 24
    assert buckets[-1].start == now.replace(minute=0, second=0, microsecond=0)
    assert sum(b.total for b in buckets) == 4
    five_hours_ago = now - timedelta(hours=5)
    index = 23 - (now.replace(minute=0, second=0, microsecond=0)
                  - five_hours_ago.replace(minute=0, second=0, microsecond=0)).seconds // 3600
    assert buckets[index].counts == {"SUCCESS": 1, "OTHER": 1}
    if now.minute >= 1:  # both recent runs are in the current hour
        assert buckets[-1].counts == {"SUCCESS": 1, "FAILED": 1}


def test_each_run_counts_in_the_hour_its_creation_falls_in_start_included_end_excluded(app: Any) -> None:
    now = datetime(2026, 11, 30, 21, 40, tzinfo=timezone.utc)  # the chart: 22:00 yesterday to this 21:00 hour
    task = add_task()
    for status, created_at in [
        ("SUCCESS", datetime(2026, 11, 29, 21, 59, 59, 999999, tzinfo=timezone.utc)),  # before the first hour
        ("SUCCESS", datetime(2026, 11, 29, 22, 0, tzinfo=timezone.utc)),  # the first hour's first instant
        ("PENDING", datetime(2026, 11, 29, 22, 59, 59, tzinfo=timezone.utc)),  # the first hour, not an outcome
        ("FAILED", datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)),  # the hour from 12:00
        ("CANCELLED", datetime(2026, 11, 30, 12, 59, 59, 999999, tzinfo=timezone.utc)),  # still the 12:00 hour
        ("RETRYING", datetime(2026, 11, 30, 21, 59, 59, tzinfo=timezone.utc)),  # the current hour, ahead of now
        ("SUCCESS", datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc)),  # after the current hour
    ]:
        add_execution(task, status, created_at=created_at)
    buckets = queries.hourly_outcomes(now)
    assert [bucket.start.hour for bucket in buckets] == [22, 23] + list(range(22))
    by_hour = {bucket.start: bucket.counts for bucket in buckets if bucket.counts}
    assert by_hour == {
        datetime(2026, 11, 29, 22, tzinfo=timezone.utc): {"SUCCESS": 1, "OTHER": 1},
        datetime(2026, 11, 30, 12, tzinfo=timezone.utc): {"FAILED": 1, "CANCELLED": 1},
        datetime(2026, 11, 30, 21, tzinfo=timezone.utc): {"RETRYING": 1},
    }


def selected_options(html: str) -> set[str]:
    return {chunk.split('"')[0] for chunk in html.split('<option value="')[1:] if '" selected>' in chunk.split(">")[0] + ">"}


def test_the_log_and_task_filters_show_what_is_selected(admin: AdminClient) -> None:
    alpha = add_task("alpha")
    add_task("beta")
    logs = admin.html(f"/logs?task={alpha.id}&status=FAILED&trigger=RETRY&range=24h")
    assert selected_options(logs) == {str(alpha.id), "FAILED", "RETRY", "24h"}
    assert '<option value="">All tasks</option>' in logs and "<option value=\"RETRY\" selected>Retry</option>" in logs
    tasks = admin.html("/tasks?status=FAILED&type=CRON&enabled=false")
    assert selected_options(tasks) == {"FAILED", "CRON", "false"}
    assert selected_options(admin.html("/tasks?enabled=true")) == {"true"}
    assert selected_options(admin.html("/tasks")) == set()
