"""The pure rules of pause and clone: when a paused task resumes by itself, and the name of a copy."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chime.controls import free_copy_name
from chime.policy import should_resume

NOW = datetime(2030, 1, 31, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("resume_at", "enabled", "expected"), [
    (NOW - timedelta(seconds=1), False, True),
    (NOW, False, True),
    (NOW + timedelta(seconds=1), False, False),
    (None, False, False),
    (NOW - timedelta(hours=1), True, False),
], ids=["time has passed", "time is now", "time not yet come", "paused with no resume time",
        "already enabled by someone"])
def test_a_paused_task_resumes_by_itself_once_its_resume_time_has_come(
        resume_at: datetime | None, enabled: bool, expected: bool) -> None:
    assert should_resume(resume_at=resume_at, enabled=enabled, now=NOW) is expected


def test_a_copy_is_named_copy_then_copy_2_and_so_on() -> None:
    assert free_copy_name("nightly", set()) == "nightly (copy)"
    assert free_copy_name("nightly", {"nightly (copy)"}) == "nightly (copy 2)"
    assert free_copy_name("nightly", {"nightly (copy)", "nightly (copy 2)"}) == "nightly (copy 3)"


def test_a_copy_of_a_long_name_is_cut_to_stay_within_200_characters() -> None:
    name = "x" * 200
    assert free_copy_name(name, set()) == "x" * 193 + " (copy)"
    assert len(free_copy_name(name, {"x" * 193 + " (copy)"})) == 200
