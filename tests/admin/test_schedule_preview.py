"""The task form's live preview with a `from` instant: the runs around a DST change, and friendly errors.

Expected instants come from cronie's rules (see tests/unit/test_cron_rules.py). Europe/Berlin springs
forward on Sun 29 Mar 2026 at 01:00Z (02:00 CET -> 03:00 CEST) and falls back on Sun 25 Oct 2026 at
01:00Z (03:00 CEST -> 02:00 CET).
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.admin.conftest import AdminClient


def preview(admin: AdminClient, **query: str) -> dict[str, Any]:
    response = admin.get("/tasks/preview", query_string=query)
    assert response.status_code == 200
    return response.get_json()


def test_cron_preview_from_before_a_spring_forward_skips_the_missing_runs(admin: AdminClient) -> None:
    body = preview(admin, schedule_type="CRON", cron="*/30 * * * *", timezone="Europe/Berlin",
                   **{"from": "2026-03-29T01:10:00+01:00"})
    # 01:30 CET = 00:30Z; 02:00 and 02:30 never happen; 03:00, 03:30, 04:00, 04:30 CEST = 01:00Z ... 02:30Z.
    assert body["error"] is None and body["description"] == "Every 30 minutes"
    assert body["next_runs"] == ["2026-03-29T00:30:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00",
                                 "2026-03-29T02:00:00+00:00", "2026-03-29T02:30:00+00:00"]


def test_cron_preview_from_before_a_fall_back_runs_a_fixed_time_once(admin: AdminClient) -> None:
    body = preview(admin, schedule_type="CRON", cron="30 2 * * *", timezone="Europe/Berlin",
                   **{"from": "2026-10-25T00:00:00+02:00"})
    # 02:30 CEST = 00:30Z (not again at 02:30 CET = 01:30Z); then 02:30 CET daily from Mon 26 Oct.
    assert body["next_runs"][:3] == ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00",
                                     "2026-10-27T01:30:00+00:00"]


def test_interval_preview_from_lists_the_runs_after_it(admin: AdminClient) -> None:
    body = preview(admin, schedule_type="INTERVAL", interval_seconds="3600", timezone="Europe/Berlin",
                   start_at="2031-01-01T00:00", **{"from": "2031-06-01T12:30:00+02:00"})
    # Hourly from 2030-12-31T23:00Z; the first after 10:30Z is 11:00Z.
    assert body["next_runs"][:2] == ["2031-06-01T11:00:00+00:00", "2031-06-01T12:00:00+00:00"]


@pytest.mark.parametrize(("value", "message_part"), [
    pytest.param("2026-10-25T02:30", "has no UTC offset", id="naive-time"),
    pytest.param("soon", "is not an ISO 8601 date-time", id="prose"),
])
def test_a_naive_or_malformed_from_gets_a_friendly_error_and_no_runs(
    admin: AdminClient, value: str, message_part: str
) -> None:
    body = preview(admin, schedule_type="CRON", cron="0 9 * * 1-5", timezone="Europe/Berlin", **{"from": value})
    assert body["next_runs"] == [] and body["error"].startswith("Preview from: ") and message_part in body["error"]


def test_the_task_form_offers_a_from_field_for_the_preview(admin: AdminClient) -> None:
    html = admin.html("/tasks/new")
    assert 'data-preview-from' in html and '<label for="preview-from">From</label>' in html
