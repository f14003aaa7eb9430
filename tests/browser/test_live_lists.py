"""The notifications list and the logs list follow new rows pushed by the server (GET /events) without a
reload: the live server and the test share one app, whose commits publish on Redis like any process's."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, log_in
from tests.browser.seed import add_execution
from chime import services
from chime.extensions import db
from chime.models import Notification
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work

pytestmark = pytest.mark.browser

WAIT_MS = 15_000


def open_live(page: Any, path: str) -> None:
    page.goto(path)
    expect(page.locator("html")).to_have_attribute("data-live", "push")
    page.evaluate("() => { window.__sameDocument = true; }")


def test_a_new_notification_appears_in_the_open_list_and_marking_it_read_still_works(
        page: Any, live_server: LiveServer) -> None:
    log_in(page)
    open_live(page, "/notifications")
    expect(page.get_by_text("No notifications yet.")).to_be_visible()
    with live_server.app_context():
        db.session.add(Notification(level="ERROR", title="Backup failed", message="disk full"))
        db.session.commit()
    expect(page.locator("tbody").get_by_text("Backup failed")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("1 unread.")).to_be_visible()
    assert page.evaluate("() => window.__sameDocument") is True
    page.get_by_role("button", name="Mark “Backup failed” read").click()  # the swapped-in form posts as served
    expect(page.get_by_text("All caught up.")).to_be_visible()


def test_a_new_run_appears_in_the_open_logs_list(page: Any, live_server: LiveServer) -> None:
    with live_server.app_context(), unit_of_work():
        task_id = services.create_task({"name": "Nightly export", "job": "noop", "schedule_type": "INTERVAL",
                                        "interval_seconds": 3600}, allow_shell=False).id
    log_in(page)
    open_live(page, "/logs")
    with live_server.app_context():
        add_execution(services.get_task(task_id), "FAILED", utcnow(), message="export bucket is gone")
        db.session.commit()
    expect(page.locator("tbody tr").filter(has_text="export bucket is gone")).to_be_visible(timeout=WAIT_MS)
    assert page.evaluate("() => window.__sameDocument") is True
