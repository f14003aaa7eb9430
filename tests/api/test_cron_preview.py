"""GET /api/cron/preview/ with `from`: what an expression does across a DST change (SQLite and Postgres).

Expected instants come from cronie's rules (see tests/unit/test_cron_rules.py). Europe/Berlin falls
back on Sun 25 Oct 2026 at 01:00Z (03:00 CEST -> 02:00 CET: 02:00-02:59 happen at 00:00-00:59Z and
again at 01:00-01:59Z) and springs forward on Sun 29 Mar 2026 at 01:00Z (02:00 CET -> 03:00 CEST).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from webapp.api.openapi import openapi_document

PREVIEW = "/api/cron/preview/"


def runs(api: Any, **query: str) -> list[str]:
    response = api.get(PREVIEW, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["next_runs"]


def test_preview_from_before_a_fall_back_shows_an_hourly_job_in_both_passes(api: Any) -> None:
    # Wildcard hour: 01:00 CEST = 23:00Z, 02:00 CEST = 00:00Z, 02:00 CET = 01:00Z, 03:00 CET = 02:00Z.
    assert runs(api, cron="0 * * * *", timezone="Europe/Berlin", count="4", **{"from": "2026-10-25T00:30:00+02:00"}) == [
        "2026-10-24T23:00:00+00:00", "2026-10-25T00:00:00+00:00",
        "2026-10-25T01:00:00+00:00", "2026-10-25T02:00:00+00:00",
    ]


def test_preview_from_before_a_fall_back_shows_a_fixed_time_job_once(api: Any) -> None:
    # Fixed time: 02:30 CEST = 00:30Z on the first pass only; Mon 26 Oct 02:30 CET = 01:30Z.
    assert runs(api, cron="30 2 * * *", timezone="Europe/Berlin", count="2", **{"from": "2026-10-24T22:00:00Z"}) == [
        "2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00",
    ]


def test_preview_from_before_a_spring_forward_skips_the_missing_half_hours(api: Any) -> None:
    # Wildcard minutes: 01:30 CET = 00:30Z, 02:00 and 02:30 never happen, 03:00 CEST = 01:00Z.
    assert runs(api, cron="*/30 * * * *", timezone="Europe/Berlin", count="3", **{"from": "2026-03-29T01:10:00+01:00"}) == [
        "2026-03-29T00:30:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00",
    ]


def test_preview_without_from_or_with_an_empty_one_starts_now(api: Any) -> None:
    before = datetime.now(timezone.utc)
    first = datetime.fromisoformat(runs(api, cron="* * * * *", count="1")[0])
    assert before < first <= before + timedelta(minutes=2)  # the next whole minute
    assert runs(api, cron="@yearly", count="2", **{"from": " "}) == runs(api, cron="@yearly", count="2")


@pytest.mark.parametrize(("value", "message_part"), [
    pytest.param("2026-10-25T02:30:00", "has no UTC offset", id="naive-time"),
    pytest.param("2026-10-25", "has no UTC offset", id="date-only"),
    pytest.param("next sunday", "is not an ISO 8601 date-time", id="prose"),
    pytest.param("2026-10-32T00:00:00Z", "is not an ISO 8601 date-time", id="no-such-day"),
    pytest.param("0001-01-01T00:00:00+01:00", "out of range", id="before-year-one-in-utc"),
    pytest.param("2026-10-25T00:00:00Z" + " " * 60, "ISO 8601 date-time with a UTC offset", id="too-long"),
])
def test_a_naive_or_malformed_from_is_a_400_naming_it(api: Any, value: str, message_part: str) -> None:
    response = api.get(PREVIEW, query_string={"cron": "@hourly", "from": value})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error" and set(body["fields"]) == {"from"}
    assert message_part in body["fields"]["from"]


def test_a_bad_from_is_reported_with_a_bad_expression(api: Any) -> None:
    response = api.get(PREVIEW, query_string={"cron": "61 * * * *", "from": "tomorrow"})
    assert response.status_code == 400 and set(response.get_json()["fields"]) == {"cron", "from"}


def test_the_openapi_document_describes_from() -> None:
    parameters = openapi_document()["paths"][PREVIEW]["get"]["parameters"]
    (from_parameter,) = [p for p in parameters if p["name"] == "from"]
    assert from_parameter["in"] == "query" and not from_parameter["required"]
    assert from_parameter["schema"]["format"] == "date-time" and "offset" in from_parameter["description"]
