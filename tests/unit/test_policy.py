"""Unit tests for chime.policy: retry backoff and misfire decisions."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from chime.policy import (
    DEFAULT_RETRY_BACKOFF_SECONDS,
    MAX_RETRY_DELAY_SECONDS,
    RUN,
    SKIP_MISSED,
    MisfireDecision,
    decide_misfire,
    retry_delay_seconds,
    should_retry,
)

UTC = timezone.utc
DUE_AT = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
GRACE_SECONDS = 60


@pytest.mark.parametrize(
    ("attempt", "expected_seconds"),
    [(1, 60), (2, 120), (3, 240), (4, 480), (6, 1920), (7, 3600), (8, 3600)],
    ids=[
        "first-retry-waits-base",
        "second-doubles",
        "third-doubles-again",
        "fourth",
        "sixth",
        "seventh-capped",
        "eighth-capped",
    ],
)
def test_retry_delay_doubles_from_the_base_up_to_the_cap(attempt: int, expected_seconds: int) -> None:
    assert retry_delay_seconds(attempt=attempt, base_seconds=DEFAULT_RETRY_BACKOFF_SECONDS) == expected_seconds


def test_retry_delay_is_capped_at_one_hour_by_default() -> None:
    assert MAX_RETRY_DELAY_SECONDS == 3600
    assert retry_delay_seconds(attempt=1, base_seconds=5000) == 3600


def test_retry_delay_honours_a_custom_cap() -> None:
    assert retry_delay_seconds(attempt=5, base_seconds=10, cap_seconds=100) == 100


def test_retry_delay_for_a_huge_attempt_number_is_the_cap_and_instant() -> None:
    started = time.perf_counter()
    assert retry_delay_seconds(attempt=10**18, base_seconds=60) == MAX_RETRY_DELAY_SECONDS
    assert time.perf_counter() - started < 0.01


def test_retry_delay_with_zero_base_is_zero() -> None:
    assert retry_delay_seconds(attempt=10, base_seconds=0) == 0


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"attempt": 0, "base_seconds": 60}, id="attempt-zero"),
        pytest.param({"attempt": -1, "base_seconds": 60}, id="negative-attempt"),
        pytest.param({"attempt": 1, "base_seconds": -1}, id="negative-base"),
        pytest.param({"attempt": 1, "base_seconds": 60, "cap_seconds": -1}, id="negative-cap"),
    ],
)
def test_retry_delay_rejects_impossible_arguments(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        retry_delay_seconds(**arguments)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "expected"),
    [
        (1, 3, True),
        (2, 3, True),
        (3, 3, True),
        (4, 3, False),
        (1, 0, False),
        (1, 1, True),
        (2, 1, False),
    ],
    ids=[
        "first-of-three-retries",
        "second-of-three",
        "third-of-three",
        "fourth-attempt-is-final",
        "no-retries-allowed",
        "one-retry-after-first-failure",
        "one-retry-used-up",
    ],
)
def test_should_retry_allows_one_plus_max_retries_attempts(attempt: int, max_retries: int, expected: bool) -> None:
    assert should_retry(attempt=attempt, max_retries=max_retries) is expected


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param({"attempt": 0, "max_retries": 3}, id="attempt-zero"),
        pytest.param({"attempt": 1, "max_retries": -1}, id="negative-max"),
    ],
)
def test_should_retry_rejects_impossible_arguments(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        should_retry(**arguments)


def seconds_after_due(seconds: float) -> datetime:
    return DUE_AT + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("schedule_type", "latest_due_at", "missed_count", "now", "expected"),
    [
        pytest.param(
            "CRON", DUE_AT, 1, seconds_after_due(0),
            MisfireDecision(RUN, DUE_AT, 1, 0.0, False),
            id="on-time",
        ),
        pytest.param(
            "INTERVAL", DUE_AT, 1, seconds_after_due(45),
            MisfireDecision(RUN, DUE_AT, 1, 45.0, False),
            id="late-but-within-grace",
        ),
        pytest.param(
            "CRON", DUE_AT, 1, seconds_after_due(60),
            MisfireDecision(RUN, DUE_AT, 1, 60.0, False),
            id="exactly-at-grace",
        ),
        pytest.param(
            "CRON", DUE_AT, 1, seconds_after_due(61),
            MisfireDecision(SKIP_MISSED, DUE_AT, 1, 61.0, False),
            id="single-occurrence-beyond-grace-is-skipped",
        ),
        pytest.param(
            "CRON", seconds_after_due(600), 11, seconds_after_due(630),
            MisfireDecision(RUN, seconds_after_due(600), 11, 30.0, True),
            id="coalesced-catch-up-within-grace",
        ),
        pytest.param(
            "INTERVAL", seconds_after_due(600), 11, seconds_after_due(700),
            MisfireDecision(SKIP_MISSED, seconds_after_due(600), 11, 100.0, False),
            id="coalesced-beyond-grace-is-skipped-once",
        ),
        pytest.param(
            "ONE_TIME", DUE_AT, 1, seconds_after_due(30),
            MisfireDecision(RUN, DUE_AT, 1, 30.0, False),
            id="one-time-on-time",
        ),
        pytest.param(
            "ONE_TIME", DUE_AT, 1, seconds_after_due(86400 * 30),
            MisfireDecision(RUN, DUE_AT, 1, 86400.0 * 30, True),
            id="one-time-far-past-runs-as-recovery",
        ),
    ],
)
def test_decide_misfire(
    schedule_type: str, latest_due_at: datetime, missed_count: int, now: datetime, expected: MisfireDecision
) -> None:
    decision = decide_misfire(
        schedule_type=schedule_type,
        scheduled_at=DUE_AT,
        latest_due_at=latest_due_at,
        missed_count=missed_count,
        now=now,
        grace_seconds=GRACE_SECONDS,
    )
    assert decision == expected


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"schedule_type": "WEEKLY"}, id="unknown-type"),
        pytest.param({"missed_count": 0}, id="nothing-missed"),
        pytest.param({"grace_seconds": -1}, id="negative-grace"),
        pytest.param({"latest_due_at": DUE_AT - timedelta(seconds=1)}, id="latest-before-scheduled"),
    ],
)
def test_decide_misfire_rejects_impossible_arguments(overrides: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "schedule_type": "CRON",
        "scheduled_at": DUE_AT,
        "latest_due_at": DUE_AT,
        "missed_count": 1,
        "now": DUE_AT,
        "grace_seconds": GRACE_SECONDS,
    }
    with pytest.raises(ValueError):
        decide_misfire(**{**arguments, **overrides})  # type: ignore[arg-type]
