"""The task form's preview with a From instant, in headless Chromium: a fall-back hour, and a friendly error.

Europe/Berlin falls back on Sun 25 Oct 2026 at 01:00Z (03:00 CEST -> 02:00 CET). '0 * * * *' starts with
'*' in its hour field, so (cronie's crontab(5)) it follows real time and runs at 02:00 in both passes.
"""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, log_in

pytestmark = pytest.mark.browser


def fill_cron(page: Any, expression: str, zone: str) -> None:
    page.goto("/tasks/new")
    page.get_by_role("radio", name="Cron").check()
    page.get_by_label("Cron expression").fill(expression)
    page.get_by_label("Time zone").fill(zone)


def test_the_preview_from_an_instant_shows_both_passes_of_a_fall_back_hour(page: Any, live_server: LiveServer) -> None:
    log_in(page)
    fill_cron(page, "0 * * * *", "Europe/Berlin")
    page.get_by_label("From", exact=True).fill("2026-10-25T00:30:00+02:00")
    times = page.locator("[data-preview-times] time")
    expect(times.first).to_have_attribute("datetime", "2026-10-24T23:00:00+00:00")
    # 01:00 CEST, 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET
    assert times.evaluate_all("els => els.map(e => e.dateTime)") == [
        "2026-10-24T23:00:00+00:00", "2026-10-25T00:00:00+00:00", "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:00:00+00:00", "2026-10-25T03:00:00+00:00",
    ]


@pytest.mark.parametrize("schedule_type", ["Cron", "Interval"])
def test_a_from_without_an_offset_gets_a_friendly_error(page: Any, live_server: LiveServer, schedule_type: str) -> None:
    log_in(page)
    fill_cron(page, "0 9 * * 1-5", "Europe/Berlin")
    if schedule_type == "Interval":
        page.get_by_role("radio", name="Interval").check()
        page.get_by_label("Interval (seconds)").fill("300")
    page.get_by_label("From", exact=True).fill("2026-10-25T02:30")
    error = page.locator("[data-preview-error]")
    expect(error).to_contain_text("Preview from: '2026-10-25T02:30' has no UTC offset")
    expect(page.locator("[data-preview-times] li")).to_have_count(0)
