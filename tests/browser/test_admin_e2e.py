"""The admin in a real headless Chromium against the real app over HTTP."""
from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import DESKTOP, PHONE, LiveServer, log_in, screenshot
from tests.browser.seed import add_execution, seed_demo_data
from chime import services
from chime.extensions import db
from chime.models import Execution, Notification, Task
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work

pytestmark = pytest.mark.browser


def test_log_in_and_create_an_interval_task(page: Any, live_server: LiveServer) -> None:
    log_in(page)
    page.get_by_role("link", name="Tasks", exact=True).click()
    page.get_by_role("link", name="New task").first.click()
    page.get_by_label("Name").fill("Heartbeat")
    page.get_by_label("Job").select_option("echo")
    page.locator("[data-job-args=echo]").get_by_label("message").fill("still alive")
    page.get_by_role("radio", name="Cron").check()
    assert page.locator("#f-interval_seconds").is_hidden()
    page.get_by_role("radio", name="Interval").check()
    page.get_by_label("Interval (seconds)").fill("300")
    assert page.locator("#f-cron").is_hidden()  # the cron field belongs to another schedule type
    preview = page.locator("[data-preview-times] li")
    preview.nth(4).wait_for()
    assert preview.count() == 5
    assert "Every 5 min" in page.locator("[data-preview-description]").inner_text()
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r"/tasks/\d+$"))
    assert page.get_by_role("heading", name="Heartbeat").is_visible()
    assert "created" in page.locator(".flash").inner_text()
    with live_server.app_context():
        task = db.session.scalar(select(Task).where(Task.name == "Heartbeat"))
        assert (task.schedule_type, task.interval_seconds, task.args) == ("INTERVAL", 300, {"message": "still alive"})
        assert task.cron is None and task.next_run_at is not None


def test_disable_a_task_from_the_list(page: Any, live_server: LiveServer) -> None:
    with live_server.app_context(), unit_of_work():
        task_id = services.create_task({"name": "Sync", "job": "noop", "schedule_type": "INTERVAL",
                                        "interval_seconds": 60}, allow_shell=False).id
    log_in(page)
    page.goto("/tasks")
    page.wait_for_function("document.documentElement.dataset.live !== undefined")  # app.js has laid the page out
    row = page.get_by_role("row").filter(has_text="Sync")
    with page.expect_navigation():  # the form's POST and its redirect (the URL already matched **/tasks**)
        row.get_by_role("button", name="Disable Sync").click()
    assert "disabled" in page.locator(".flash").inner_text()
    assert page.get_by_role("row").filter(has_text="Sync").get_by_text("Disabled").is_visible()
    with live_server.app_context():
        assert db.session.get(Task, task_id).enabled is False


def test_detail_of_a_task_with_a_failed_run_shows_its_message(page: Any, live_server: LiveServer) -> None:
    with live_server.app_context():
        with unit_of_work():
            task = services.create_task({"name": "Import orders", "job": "noop", "schedule_type": "INTERVAL",
                                         "interval_seconds": 600}, allow_shell=False)
        add_execution(task, "FAILED", utcnow(), message="Connection refused by orders.example.com:443")
        db.session.commit()
        task_id = task.id
    log_in(page)
    page.goto(f"/tasks/{task_id}")
    history = page.get_by_role("table", name="Runs of Import orders")
    assert history.get_by_text("Connection refused by orders.example.com:443").is_visible()
    assert history.get_by_text("Failed").is_visible()
    history.get_by_role("link", name=re.compile(r"#\d+")).click()
    assert page.locator("[data-message]").inner_text() == "Connection refused by orders.example.com:443"


def test_bell_count_rises_without_a_reload(page: Any, live_server: LiveServer) -> None:
    log_in(page)
    count = page.locator("[data-bell-count]")
    assert count.is_hidden()
    page.evaluate("() => { window.__sameDocument = true; }")
    with live_server.app_context():
        db.session.add(Notification(level="ERROR", title="Backup failed", message="disk full"))
        db.session.commit()
    expect(count).to_have_text("1", timeout=8000)  # the bell polls every 4 s
    expect(count).to_be_visible()
    expect(page.locator(".toast").filter(has_text="Backup failed")).to_be_visible()
    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened
    assert page.locator("[data-tz]").inner_text() == "Europe/Berlin"


def fill_new_task_form(page: Any) -> None:
    page.get_by_label("Name").fill("Invoice reminders")
    page.get_by_label("Job").select_option("http_request")
    page.locator("#arg-http_request-url").fill("https://billing.example.com/remind")
    page.get_by_role("radio", name="Cron").check()
    page.get_by_label("Cron expression").fill("0 9 * * 1-5")
    page.get_by_label("Time zone").fill("Europe/Berlin")


def test_screenshots_of_every_page(page: Any, live_server: LiveServer) -> None:
    with live_server.app_context():
        tasks = seed_demo_data()
        flaky_id = tasks["Flaky partner sync"].id
        ping_id = tasks["Ping status page"].id
        failed_id = db.session.scalar(select(Execution.id).where(Execution.status == "FAILED").limit(1))
    page.goto("/login")
    screenshot(page, "login")
    log_in(page)
    pages = [
        ("dashboard", "/", True), ("tasks", "/tasks", False), ("task-form", "/tasks/new", False),
        ("task-edit", f"/tasks/{ping_id}/edit", False), ("task-detail", f"/tasks/{flaky_id}", True),
        ("logs", "/logs", False), ("log-detail", f"/logs/{failed_id}", False),
        ("notifications", "/notifications", False),
    ]
    for name, path, docs in pages:
        page.goto(path)
        if name == "task-form":
            fill_new_task_form(page)
        if name in ("task-form", "task-edit"):
            page.locator("[data-preview-times] li").first.wait_for()
            page.evaluate("() => window.scrollTo(0, 0)")
        screenshot(page, name, docs=docs)
    page.set_viewport_size(PHONE)
    for name, path, _ in pages:
        page.goto(path)
        screenshot(page, f"{name}-phone")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways at phone width ({width}px)"
    page.set_viewport_size(DESKTOP)
