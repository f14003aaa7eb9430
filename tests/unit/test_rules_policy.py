"""The pure decisions of alert rules: grouping, repeats while failing, mutes, which events a failure raises."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from chime.rules import GROUP, QUIET, SEND, SUPPRESS, decide, events_of, run_event, summary_due

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
WINDOW = 600


def choice(**overrides: object) -> str:
    values: dict = dict(now=NOW, last_sent_at=None, window_seconds=WINDOW, continuing=False,
                        repeat_every_hours=None, muted=False)
    values.update(overrides)
    return decide(**values)


def test_the_first_alert_goes_out_at_once() -> None:
    assert choice() == SEND


def test_a_repeat_within_the_window_is_grouped_and_one_after_it_goes_out() -> None:
    assert choice(last_sent_at=NOW - timedelta(seconds=599)) == GROUP
    assert choice(last_sent_at=NOW - timedelta(seconds=600)) == SEND


def test_a_task_that_stays_failing_is_quiet_unless_a_repeat_is_asked_and_due() -> None:
    assert choice(continuing=True, last_sent_at=NOW - timedelta(days=3)) == QUIET
    assert choice(continuing=True, repeat_every_hours=2, last_sent_at=NOW - timedelta(hours=1)) == QUIET
    assert choice(continuing=True, repeat_every_hours=2, last_sent_at=NOW - timedelta(hours=2)) == SEND


def test_a_mute_or_maintenance_suppresses_everything() -> None:
    assert choice(muted=True) == SUPPRESS
    assert choice(muted=True, continuing=True, repeat_every_hours=1) == SUPPRESS


def test_a_summary_is_due_once_the_window_ended_with_grouped_events() -> None:
    assert not summary_due(now=NOW, last_sent_at=NOW - timedelta(seconds=300), window_seconds=WINDOW, pending_count=4)
    assert summary_due(now=NOW, last_sent_at=NOW - timedelta(seconds=600), window_seconds=WINDOW, pending_count=4)
    assert not summary_due(now=NOW, last_sent_at=NOW - timedelta(hours=1), window_seconds=WINDOW, pending_count=0)


def test_a_final_failure_raises_failed_and_from_the_nth_in_a_row_failing() -> None:
    assert events_of("failed", 1, 3) == [("failed", False)]
    assert events_of("failed", 2, 3) == [("failed", True)]
    assert events_of("failed", 3, 3) == [("failed", True), ("failing", False)]
    assert events_of("failed", 4, 3) == [("failed", True), ("failing", True)]
    assert events_of("retrying", 0, 3) == [("retrying", False)]


def test_a_success_raises_recovered_only_after_a_failed_or_retrying_run() -> None:
    assert run_event("SUCCESS", "SUCCESS") is None
    assert run_event("SUCCESS", None) is None
    assert run_event("SUCCESS", "FAILED") == "recovered"
    assert run_event("FAILED", "SUCCESS") == "failed"
    assert run_event("RETRYING", "SUCCESS") == "retrying"
    assert run_event("SKIPPED", "SUCCESS") == "skipped"
    assert run_event("CANCELLED", "FAILED") is None
