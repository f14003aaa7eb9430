"""Decide retries and misfires: pure functions of their arguments, no clock and no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chime.enums import ScheduleType

DEFAULT_RETRY_BACKOFF_SECONDS = 60
MAX_RETRY_DELAY_SECONDS = 3600
SCHEDULER_STALE_AFTER_SECONDS = 15
"""A scheduler dispatches while the lock holder's last heartbeat is at most this old (scheduler.health)."""

RUN = "RUN"
SKIP_MISSED = "SKIP_MISSED"


def retry_delay_seconds(*, attempt: int, base_seconds: int, cap_seconds: int = MAX_RETRY_DELAY_SECONDS) -> int:
    """Return the delay before retry number `attempt`: base * 2**(attempt-1), capped."""
    if attempt < 1:
        raise ValueError("attempt must be 1 or more (1 is the first retry).")
    if base_seconds < 0 or cap_seconds < 0:
        raise ValueError("base_seconds and cap_seconds must not be negative.")
    doublings = attempt - 1
    if base_seconds == 0:
        return 0
    if doublings >= cap_seconds.bit_length():  # base * 2**doublings >= 2**doublings > cap
        return cap_seconds
    return min(base_seconds << doublings, cap_seconds)


def should_retry(*, attempt: int, max_retries: int) -> bool:
    """Tell whether the failed 1-based `attempt` gets another try under `max_retries`."""
    if attempt < 1:
        raise ValueError("attempt must be 1 or more (1 is the first run).")
    if max_retries < 0:
        raise ValueError("max_retries must not be negative.")
    return attempt <= max_retries


@dataclass(frozen=True)
class MisfireDecision:
    """What to do about a due occurrence: run it (maybe late) or record it as missed."""

    action: str
    scheduled_for: datetime
    missed_count: int
    late_seconds: float
    recovery: bool


def decide_misfire(
    *,
    schedule_type: str,
    scheduled_at: datetime,
    latest_due_at: datetime,
    missed_count: int,
    now: datetime,
    grace_seconds: int,
) -> MisfireDecision:
    """Decide whether a due occurrence runs, runs as a coalesced catch-up, or is skipped."""
    _check_misfire_arguments(schedule_type, scheduled_at, latest_due_at, missed_count, grace_seconds)
    if schedule_type == ScheduleType.ONE_TIME:
        late_seconds = _seconds_between(scheduled_at, now)
        return MisfireDecision(RUN, scheduled_at, 1, late_seconds, late_seconds > grace_seconds)
    if missed_count == 1 and _seconds_between(scheduled_at, now) <= grace_seconds:
        return MisfireDecision(RUN, scheduled_at, 1, _seconds_between(scheduled_at, now), False)
    latest_late_seconds = _seconds_between(latest_due_at, now)
    if missed_count > 1 and latest_late_seconds <= grace_seconds:
        return MisfireDecision(RUN, latest_due_at, missed_count, latest_late_seconds, True)
    return MisfireDecision(SKIP_MISSED, latest_due_at, missed_count, latest_late_seconds, False)


def _seconds_between(earlier: datetime, later: datetime) -> float:
    """Return later - earlier in seconds."""
    return (later - earlier).total_seconds()


def _check_misfire_arguments(
    schedule_type: str, scheduled_at: datetime, latest_due_at: datetime, missed_count: int, grace_seconds: int
) -> None:
    """Raise ValueError for arguments no caller should pass."""
    if schedule_type not in frozenset(ScheduleType):
        raise ValueError(f"Unknown schedule type {schedule_type!r}.")
    if missed_count < 1:
        raise ValueError("missed_count must be 1 or more (the due occurrence itself counts).")
    if grace_seconds < 0:
        raise ValueError("grace_seconds must not be negative.")
    if latest_due_at < scheduled_at:
        raise ValueError("latest_due_at must not be before scheduled_at.")


def should_resume(*, resume_at: datetime | None, enabled: bool, now: datetime) -> bool:
    """Tell whether a paused task resumes by itself now: it is still disabled and its resume time has come."""
    return resume_at is not None and not enabled and resume_at <= now
