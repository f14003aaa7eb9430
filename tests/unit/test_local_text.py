"""Times in messages are written in the task's time zone with its offset, to the second (issue 13)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chime.timeutil import local_text

INSTANT = datetime(2026, 11, 30, 3, 26, 57, 224654, tzinfo=timezone.utc)  # the "Retry at" instant


@pytest.mark.parametrize(("zone", "expected"), [
    ("Europe/Berlin", "2026-11-30 04:26:57 CET (+01:00)"),
    ("UTC", "2026-11-30 03:26:57 UTC (+00:00)"),
    ("America/New_York", "2026-11-29 22:26:57 EST (-05:00)"),
    ("Asia/Kolkata", "2026-11-30 08:56:57 IST (+05:30)"),
    ("Australia/Sydney", "2026-11-30 14:26:57 AEDT (+11:00)"),
])
def test_an_instant_is_written_in_the_zone_with_its_abbreviation_and_offset(zone: str, expected: str) -> None:
    assert local_text(INSTANT, zone) == expected


def test_summer_time_shows_the_summer_offset() -> None:
    assert local_text(datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc), "Europe/Berlin") == "2026-07-01 14:00:00 CEST (+02:00)"


def test_a_zone_without_an_abbreviation_shows_only_its_offset() -> None:
    assert local_text(INSTANT, "America/Sao_Paulo") == "2026-11-30 00:26:57 (-03:00)"


def test_an_unknown_zone_falls_back_to_utc_and_nothing_is_none() -> None:
    assert local_text(INSTANT, "Nowhere/Atlantis") == "2026-11-30 03:26:57 UTC (+00:00)"
    assert local_text(None, "Europe/Berlin") is None
