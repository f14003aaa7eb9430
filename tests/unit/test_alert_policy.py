"""The alert delivery's pure decisions: the retry schedule, its budget, links, and scrubbing secrets."""
from __future__ import annotations

import hashlib
import hmac

from chime.alerts import retry_delay_seconds, run_link, scrub
from chime.senders import signature


def schedule(first: float, budget: float) -> list[float]:
    """When each attempt is scheduled, after the alert, when every one fails (the first at 0)."""
    starts, done = [0.0], 1
    while (delay := retry_delay_seconds(done, first, budget)) is not None:
        starts.append(starts[-1] + delay)
        done += 1
    return starts


def test_retries_wait_30_then_60_then_120_seconds_doubling_within_an_hour() -> None:
    assert schedule(30, 3600) == [0, 30, 90, 210, 450, 930, 1890]  # the next, at 3810 s, is past the hour


def test_no_attempt_is_scheduled_past_the_budget() -> None:
    assert schedule(0.25, 1.0) == [0, 0.25, 0.75]  # the next would be at 1.75 s
    assert schedule(10, 5) == [0]


def test_the_signature_is_the_hmac_of_timestamp_dot_body() -> None:
    body = b'{"event":"failed"}'
    expected = hmac.new(b"key", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("key", 1700000000, body) == f"sha256={expected}"


def test_a_link_points_at_the_run_else_the_task_under_the_public_url() -> None:
    assert run_link({"execution_id": 5, "task_id": 2}, "https://chime.example.com") == "https://chime.example.com/logs/5"
    assert run_link({"task_id": 2}, "https://chime.example.com") == "https://chime.example.com/tasks/2"
    assert run_link({"execution_id": 5}, "") is None


def test_secrets_are_masked_in_error_text_and_the_text_is_bounded() -> None:
    text = scrub("POST https://hooks.slack.com/services/T/B/SECRETtoken failed", ["https://hooks.slack.com/services/T/B/SECRETtoken"])
    assert "SECRETtoken" not in text and "********" in text
    assert len(scrub("x" * 5000, [])) == 1000
