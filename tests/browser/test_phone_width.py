"""At phone width (390 x 844) the task list, the notifications list, the run history (logs list, task page) and
a task's alert deliveries show their key columns and actions without sideways scrolling, neither of the page
nor inside a box."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from chime.extensions import db
from chime.models import Delivery, DeliveryAttempt
from chime.timeutil import utcnow
from tests.browser.conftest import PHONE, LiveServer, log_in, screenshot
from tests.browser.seed import seed_demo_data

pytestmark = pytest.mark.browser

OVERFLOWS = """() => {
  const boxes = [...document.querySelectorAll('.table-wrap, table')].filter(el => el.scrollWidth > el.clientWidth + 1);
  return {page: document.scrollingElement.scrollWidth, boxes: boxes.map(el => el.className || el.tagName)};
}"""


@pytest.fixture
def phone(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    with live_server.app_context():
        tasks = seed_demo_data()
        live_server.extra["task_ids"] = {name: task.id for name, task in tasks.items()}
    context = browser.new_context(viewport=PHONE, timezone_id="Europe/Berlin", locale="en-GB",
                                  base_url=live_server.url, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    log_in(tab)
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def assert_fits(page: Any, name: str) -> None:
    screenshot(page, f"phone-{name}")
    measured = page.evaluate(OVERFLOWS)
    assert measured["page"] <= PHONE["width"], f"{name}: the page is {measured['page']} px wide"
    assert measured["boxes"] == [], f"{name}: these boxes scroll sideways: {measured['boxes']}"


def test_the_task_list_fits_a_phone_with_its_names_states_and_actions(phone: Any) -> None:
    phone.goto("/tasks")
    row = phone.locator("tbody tr").filter(has_text="Flaky partner sync")
    expect(row.get_by_text("Flaky partner sync")).to_be_visible()
    expect(row.locator("td[data-label=Status]")).to_be_visible()
    expect(row.get_by_role("button").first).to_be_visible()
    assert_fits(phone, "tasks")


def test_the_notifications_list_fits_a_phone_with_its_mark_read_buttons(phone: Any) -> None:
    phone.goto("/notifications")
    expect(phone.get_by_text("‘Flaky partner sync’ failed")).to_be_visible()
    expect(phone.get_by_role("button", name="Mark “‘Flaky partner sync’ failed” read")).to_be_visible()
    assert_fits(phone, "notifications")


def test_the_logs_list_fits_a_phone_with_outcomes_and_messages(phone: Any) -> None:
    phone.goto("/logs")
    first = phone.locator("tbody tr").first
    expect(first.locator("td[data-label=Outcome] .badge")).to_be_visible()
    expect(first.locator("td[data-label=Task]")).to_be_visible()
    assert_fits(phone, "logs")


def test_a_task_page_and_its_run_history_fit_a_phone(phone: Any, live_server: LiveServer) -> None:
    phone.goto(f"/tasks/{live_server.extra['task_ids']['Flaky partner sync']}")
    history = phone.get_by_role("table", name="Runs of Flaky partner sync")
    expect(history.locator("td[data-label=Outcome] .badge").first).to_be_visible()
    expect(history.locator("td[data-label=Message]").first).to_contain_text("partner API answered 502")
    assert_fits(phone, "task")


def test_a_tasks_alert_deliveries_fit_a_phone(phone: Any, live_server: LiveServer) -> None:
    task_id = live_server.extra["task_ids"]["Flaky partner sync"]
    with live_server.app_context():
        at = utcnow() - timedelta(minutes=5)
        row = Delivery(delivery_id="0b7c6f1e-3c1d-4f7e-9a51-2f0c1e9d8a77", channel_id=None,
                       channel_name="ops-webhook-with-a-rather-long-name", event="failed", task_id=task_id,
                       status="delivered", attempts=2, payload={"event": "failed"}, created_at=at)
        row.attempt_log = [
            DeliveryAttempt(attempt=1, attempted_at=at, ok=False, response_status=503,
                            error="the receiver answered HTTP 503: " + "upstream-unavailable-" * 8),
            DeliveryAttempt(attempt=2, attempted_at=at + timedelta(seconds=30), ok=True, response_status=204)]
        db.session.add(row)
        db.session.commit()
    phone.goto(f"/tasks/{task_id}/deliveries")
    table = phone.get_by_role("table", name="Alert deliveries of Flaky partner sync")
    expect(table.locator("td[data-label=Outcome] .badge").first).to_be_visible()
    expect(table.locator("td[data-label=Error]").last).to_contain_text("HTTP 503")
    assert_fits(phone, "task-deliveries")
