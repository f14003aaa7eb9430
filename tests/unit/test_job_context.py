"""A job's context names its occurrence with an idempotency key shared by all its attempts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.registry import JobContext

AT = datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)


def test_every_attempt_of_one_occurrence_has_the_same_idempotency_key() -> None:
    first = JobContext(task_id=7, execution_id=10, attempt=1, scheduled_for=AT)
    retry = JobContext(task_id=7, execution_id=11, attempt=2, scheduled_for=AT.astimezone(timezone(timedelta(hours=2))))

    assert first.idempotency_key == retry.idempotency_key == "chime-7-20260329T013000.000000Z"


def test_other_occurrences_and_other_tasks_have_other_keys() -> None:
    keys = {JobContext(task_id=7, scheduled_for=AT).idempotency_key,
            JobContext(task_id=7, scheduled_for=AT + timedelta(microseconds=1)).idempotency_key,
            JobContext(task_id=8, scheduled_for=AT).idempotency_key}

    assert len(keys) == 3 and JobContext().idempotency_key is None
