"""Failures in the engine, in process: retries with their backoff, a flaky job, a timeout."""
from __future__ import annotations

import pytest

from tests.engine.helpers import create, executions, in_seconds, notifications, with_status
from tests.engine.inprocess.engine import InProcessEngine


@pytest.mark.parametrize("engine_database_url", ["sqlite", "postgres"], indirect=True)
def test_failing_task_walks_through_its_retries_to_failed(engine: InProcessEngine) -> None:
    task_id = create(name="broken", job="fail", args={"message": "boom"}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), max_retries=3, retry_backoff_seconds=1)
    engine.run_until(lambda: with_status(task_id, "FAILED"), 40, "the final failure")  # real time: retry_at is real
    runs = executions(task_id)
    assert [(r.attempt, r.status) for r in runs] == [(1, "RETRYING"), (2, "RETRYING"), (3, "RETRYING"), (4, "FAILED")]
    delays = [round((r.retry_at - r.finished_at).total_seconds()) for r in runs[:3]]
    assert delays == [1, 2, 4]
    assert all(later.started_at >= earlier.retry_at for earlier, later in zip(runs, runs[1:]))
    assert [r.trigger for r in runs] == ["SCHEDULE", "RETRY", "RETRY", "RETRY"]
    assert "boom" in runs[-1].message
    # the three retry warnings are one bell entry counted three times (issue 13: the bell groups repeats)
    assert sorted((n.level, n.count) for n in notifications(task_id)) == [("ERROR", 1), ("WARNING", 3)]


def test_fail_once_succeeds_on_the_second_attempt(engine: InProcessEngine) -> None:
    task_id = create(name="flaky", job="fail", args={"times": 1}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), retry_backoff_seconds=1)
    engine.run_next()
    engine.run_next()  # the retry, at its retry_at
    assert [(r.attempt, r.status) for r in executions(task_id)] == [(1, "RETRYING"), (2, "SUCCESS")]


def test_timeout_is_a_failure_that_names_the_limit(engine: InProcessEngine) -> None:
    task_id = create(name="slow", job="sleep", args={"seconds": 5}, schedule_type="ONE_TIME",
                     interval_seconds=None, run_at=in_seconds(0), timeout_seconds=1, max_retries=0)
    engine.run_next()
    [run] = with_status(task_id, "FAILED")
    assert run.message == "timed out after 1 s"
