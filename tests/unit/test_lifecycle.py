"""The life of one execution, transition by transition.

The expected table, the retry schedule and the texts come from the README ("Semantics in one
breath", the Notification model, the fault table) and the texts the engine has always stored.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import product
from types import SimpleNamespace

import pytest

from chime import lifecycle
from chime.lifecycle import CancelReason, Event, FailReason, IllegalTransition, SkipReason
from chime.models import Execution, Level, Status, Task

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
RUNNING, PENDING = Status.RUNNING, Status.PENDING

# (source, event, reason, retries left) -> target. An occurrence without a row is PENDING.
ALLOWED = {
    (PENDING, Event.CLAIM, None, False): RUNNING,
    (PENDING, Event.SKIP, SkipReason.OVERLAP, False): Status.SKIPPED,
    (PENDING, Event.SKIP, SkipReason.MISSED, False): Status.SKIPPED,
    (PENDING, Event.SKIP, SkipReason.DROPPED_OVERDUE, False): Status.SKIPPED,
    (RUNNING, Event.SKIP, SkipReason.OVERLAP, False): Status.SKIPPED,
    (RUNNING, Event.SKIP, SkipReason.DEPENDENCY_FAILED, False): Status.SKIPPED,
    (RUNNING, Event.SUCCEED, None, False): Status.SUCCESS,
    (RUNNING, Event.FAIL, FailReason.ERROR, True): Status.RETRYING,
    (RUNNING, Event.FAIL, FailReason.TIMEOUT, True): Status.RETRYING,
    (RUNNING, Event.FAIL, FailReason.ERROR, False): Status.FAILED,
    (RUNNING, Event.FAIL, FailReason.TIMEOUT, False): Status.FAILED,
    # A lost run is closed FAILED "worker lost" and retried by policy all the same (README fault table).
    (RUNNING, Event.LOSE, FailReason.WORKER_LOST, True): Status.FAILED,
    (RUNNING, Event.LOSE, FailReason.WORKER_LOST, False): Status.FAILED,
    (RUNNING, Event.LOSE, FailReason.OUTLIVED_TIMEOUT, True): Status.FAILED,
    (RUNNING, Event.LOSE, FailReason.OUTLIVED_TIMEOUT, False): Status.FAILED,
    # Issue 15: an operator cancels a queued occurrence (recorded without running) or stops a running one.
    (PENDING, Event.CANCEL, CancelReason.WAITING, False): Status.CANCELLED,
    (RUNNING, Event.CANCEL, CancelReason.STOPPED, False): Status.CANCELLED,
}
EVERY_MOVE = list(product(Status, Event, [None, *SkipReason, *FailReason, *CancelReason], [False, True]))
# Retries left matter only to FAIL; a move that does not depend on them is allowed either way.
IGNORES_RETRIES = {(s, e, r): t for (s, e, r, left), t in ALLOWED.items() if e not in (Event.FAIL, Event.LOSE)}
REFUSED = [m for m in EVERY_MOVE if m not in ALLOWED and m[:3] not in IGNORES_RETRIES]


@pytest.mark.parametrize(("source", "event", "reason", "retries_left"), list(ALLOWED),
                         ids=lambda v: getattr(v, "value", str(v)))
def test_every_allowed_transition_reaches_its_status(source: Status, event: Event, reason: object,
                                                     retries_left: bool) -> None:
    target = ALLOWED[(source, event, reason, retries_left)]
    assert lifecycle.next_status(source, event, reason, retries_left=retries_left) == target


@pytest.mark.parametrize(("source", "event", "reason", "retries_left"), REFUSED,
                         ids=lambda v: getattr(v, "value", str(v)))
def test_every_other_transition_is_refused(source: Status, event: Event, reason: object, retries_left: bool) -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.next_status(source, event, reason, retries_left=retries_left)


@pytest.mark.parametrize("final", [Status.SUCCESS, Status.RETRYING, Status.FAILED, Status.SKIPPED, Status.CANCELLED])
def test_a_closed_run_may_not_end_again(final: Status) -> None:
    assert not any(lifecycle.may(final, event) for event in Event)


def test_a_running_run_may_end_on_any_outcome() -> None:
    assert all(lifecycle.may(RUNNING, event) for event in (Event.SUCCEED, Event.FAIL, Event.LOSE, Event.SKIP))
    assert not lifecycle.may(RUNNING, Event.CLAIM)


def failure_at(attempt: int, **policy: int) -> lifecycle.Ending:
    return lifecycle.end(lifecycle.raised(RuntimeError("boom")), attempt=attempt, now=T0,
                         **{"max_retries": 3, "backoff_seconds": 60, **policy})


def test_failures_retry_after_60_120_240_seconds_then_fail_under_the_default_policy() -> None:
    endings = [failure_at(attempt) for attempt in (1, 2, 3, 4)]
    assert [e.status for e in endings] == [Status.RETRYING] * 3 + [Status.FAILED]
    assert [e.retry_at for e in endings] == [T0 + timedelta(seconds=s) for s in (60, 120, 240)] + [None]
    assert {e.message for e in endings} == {"RuntimeError: boom"}


def test_a_retry_never_waits_more_than_an_hour() -> None:
    assert failure_at(10, max_retries=20).retry_at == T0 + timedelta(hours=1)


def test_a_task_without_retries_fails_at_once() -> None:
    ending = failure_at(1, max_retries=0)
    assert (ending.status, ending.retry_at) == (Status.FAILED, None)


def test_a_timeout_is_a_failure_that_names_the_limit() -> None:
    ending = lifecycle.end(lifecycle.timed_out(5), attempt=1, max_retries=0, backoff_seconds=60, now=T0)
    assert (ending.status, ending.reason, ending.message) == (Status.FAILED, FailReason.TIMEOUT, "timed out after 5 s")


def test_a_success_records_the_result_and_no_retry() -> None:
    ending = lifecycle.end(lifecycle.succeeded({"ok": 1}), attempt=2, max_retries=3, backoff_seconds=60, now=T0)
    assert (ending.status, ending.result, ending.retry_at, ending.finished_at) == (Status.SUCCESS, {"ok": 1}, None, T0)


def test_a_lost_run_is_failed_with_its_retry_scheduled_by_policy() -> None:
    ending = lifecycle.end(lifecycle.lost(FailReason.WORKER_LOST), attempt=1, max_retries=3, backoff_seconds=60, now=T0)
    assert (ending.status, ending.message, ending.retry_at) == (Status.FAILED, "worker lost", T0 + timedelta(seconds=60))


def test_a_skip_at_the_gate_is_never_retried() -> None:
    ending = lifecycle.end(lifecycle.overlap_skip(), attempt=1, max_retries=3, backoff_seconds=60, now=T0)
    assert (ending.status, ending.retry_at) == (Status.SKIPPED, None)


def test_a_worker_without_a_beat_is_lost_and_one_far_past_its_timeout_too() -> None:
    started = T0 - timedelta(seconds=30)
    assert lifecycle.lost_reason(is_alive=False, started_at=started, timeout_seconds=300, now=T0) == FailReason.WORKER_LOST
    assert lifecycle.lost_reason(is_alive=True, started_at=started, timeout_seconds=300, now=T0) is None
    late = T0 - timedelta(seconds=300 + 121)
    assert lifecycle.lost_reason(is_alive=True, started_at=late, timeout_seconds=300, now=T0) == FailReason.OUTLIVED_TIMEOUT
    assert lifecycle.end(lifecycle.lost(FailReason.OUTLIVED_TIMEOUT), attempt=1, max_retries=0, backoff_seconds=60,
                         now=T0).message == "worker lost: outlived its timeout"


def test_the_next_attempt_is_a_retry_of_the_same_occurrence() -> None:
    task = SimpleNamespace(id=7, version=2, queue="high", timeout_seconds=30, created_at=T0)
    retry = lifecycle.retry_of(task, SimpleNamespace(scheduled_for=T0, attempt=2, args=None))
    assert (retry.task_id, retry.scheduled_for, retry.attempt, retry.trigger, retry.args) == (7, T0, 3, "RETRY", None)


def test_the_retry_of_a_run_given_its_own_arguments_is_given_the_same_ones() -> None:
    task = SimpleNamespace(id=7, version=2, queue="high", timeout_seconds=30, created_at=T0)
    retry = lifecycle.retry_of(task, SimpleNamespace(scheduled_for=T0, attempt=1, args={"message": "given"}))
    assert retry.args == {"message": "given"}


def test_a_traceback_up_to_16_kib_is_kept_whole_and_a_longer_one_keeps_its_end_after_a_marker() -> None:
    whole = "Traceback (most recent call last):\n" + "x" * 100
    assert lifecycle.bounded_traceback(whole) == whole
    assert lifecycle.bounded_traceback("") is None and lifecycle.bounded_traceback(None) is None
    long = "Traceback (most recent call last):\n" + "a" * 20_000 + "RuntimeError: the end\n"
    cut = lifecycle.bounded_traceback(long)
    assert len(cut) <= 16 * 1024
    assert cut.startswith("[... traceback cut") and cut.endswith("RuntimeError: the end\n")
    assert lifecycle.raised(RuntimeError("x"), long).traceback == cut


def test_manual_runs_ignore_the_overlap_policy() -> None:
    assert lifecycle.overlap_applies("SKIP", "SCHEDULE") and lifecycle.overlap_applies("SKIP", "RETRY")
    assert not lifecycle.overlap_applies("SKIP", "MANUAL")
    assert not lifecycle.overlap_applies("ALLOW", "SCHEDULE")


def test_a_skip_never_hides_a_run_in_progress_from_the_task() -> None:
    assert lifecycle.task_status_after("RUNNING", Status.SKIPPED) == "RUNNING"
    assert lifecycle.task_status_after("SUCCESS", Status.SKIPPED) == "SKIPPED"
    assert lifecycle.task_status_after("RUNNING", Status.FAILED) == "FAILED"


@pytest.mark.parametrize(("skip", "reason", "message"), [
    (lifecycle.overlap_skip(), SkipReason.OVERLAP, "previous run still running"),
    (lifecycle.overlap_skip(3), SkipReason.OVERLAP, "previous run still running: 3 occurrence(s) skipped"),
    (lifecycle.dependency_skip("parent", 4, "FAILED"), SkipReason.DEPENDENCY_FAILED,
     "dependency 'parent' (task 4) has not succeeded: latest run FAILED"),
    (lifecycle.dependency_skip("parent", 4, None), SkipReason.DEPENDENCY_FAILED,
     "dependency 'parent' (task 4) has not succeeded: never ran"),
    (lifecycle.missed_skip(3, 90.4, 60), SkipReason.MISSED,
     "missed: 3 occurrence(s) due while the engine was down; latest 90 s late (grace 60 s)"),
    (lifecycle.missed_skip(1000, 90, 60), SkipReason.MISSED,
     "missed: at least 1000 occurrence(s) due while the engine was down; latest 90 s late (grace 60 s)"),
    (lifecycle.dropped_overdue_skip(disabled=True, overdue_count=1), SkipReason.DROPPED_OVERDUE,
     "not run: the task was disabled before the scheduler dispatched 1 overdue occurrence(s)"),
    (lifecycle.dropped_overdue_skip(disabled=False, overdue_count=2), SkipReason.DROPPED_OVERDUE,
     "not run: the task was changed before the scheduler dispatched 2 overdue occurrence(s)"),
])
def test_each_skip_carries_its_typed_reason_and_its_text(skip: lifecycle.Outcome, reason: SkipReason,
                                                         message: str) -> None:
    assert (skip.event, skip.reason, skip.message, skip.status) == (Event.SKIP, reason, message, Status.SKIPPED)


def run(status: Status, *, message: str = "", retry_at: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(status=status, attempt=2, message=message, duration_ms=1500, retry_at=retry_at)


@pytest.mark.parametrize(("execution", "reason", "notice"), [
    (run(Status.SUCCESS), None, (Level.SUCCESS, "'backup' succeeded", "Attempt 2 took 1500 ms")),
    (run(Status.RETRYING, message="boom", retry_at=T0), FailReason.ERROR,
     (Level.WARNING, "'backup' failed; retrying", "Attempt 2 failed: boom. Retry at 2030-01-01 12:00:00 UTC (+00:00)")),
    (run(Status.FAILED, message="timed out after 5 s"), FailReason.TIMEOUT,
     (Level.ERROR, "'backup' failed", "Attempt 2 failed: timed out after 5 s")),
    (run(Status.FAILED, message="worker lost", retry_at=T0), FailReason.WORKER_LOST,
     (Level.WARNING, "'backup' lost its worker; retrying", "Attempt 2 worker lost. Retry at 2030-01-01 12:00:00 UTC (+00:00)")),
    (run(Status.FAILED, message="worker lost"), FailReason.WORKER_LOST,
     (Level.ERROR, "'backup' failed", "Attempt 2 worker lost")),
    (run(Status.SKIPPED, message="dependency 'a' (task 1) has not succeeded: never ran"), SkipReason.DEPENDENCY_FAILED,
     (Level.WARNING, "'backup' skipped", "dependency 'a' (task 1) has not succeeded: never ran")),
    (run(Status.SKIPPED, message="missed: 3 occurrence(s)"), SkipReason.MISSED,
     (Level.WARNING, "'backup' skipped", "missed: 3 occurrence(s)")),
])
def test_each_outcome_has_its_notification(execution: SimpleNamespace, reason: object, notice: tuple) -> None:
    assert lifecycle.notice_of("backup", execution, reason) == lifecycle.Notice(*notice)


@pytest.mark.parametrize("reason", [SkipReason.OVERLAP, SkipReason.DROPPED_OVERDUE])
def test_overlap_and_dropped_skips_are_quiet_whatever_their_text(reason: SkipReason) -> None:
    assert lifecycle.notice_of("backup", run(Status.SKIPPED, message="anything at all"), reason) is None


def test_recoveries_are_announced_as_info() -> None:
    assert lifecycle.catch_up_notice("backup", T0, 2, 30.2) == lifecycle.Notice(
        Level.INFO, "'backup' recovered", "Running the occurrence due at 2030-01-01 12:00:00 UTC (+00:00) (2 missed, 30 s late)")
    assert lifecycle.one_time_recovery_notice("backup", T0) == lifecycle.Notice(
        Level.INFO, "'backup' recovered", "The run due at 2030-01-01 12:00:00 UTC (+00:00) was missed; it is running now.")


def test_closing_a_run_writes_its_ending_onto_the_run_and_its_task() -> None:
    task = Task(id=3, name="backup", status="RUNNING", max_retries=3, retry_backoff_seconds=60)
    execution = Execution(status="RUNNING", attempt=1, started_at=T0 - timedelta(seconds=2), message="")
    lifecycle.close_run(execution, task, failure_at(1))
    assert (execution.status, execution.message, execution.duration_ms, execution.retry_at) == (
        "RETRYING", "RuntimeError: boom", 2000, T0 + timedelta(seconds=60))
    assert (task.status, task.last_status) == ("RETRYING", "RETRYING")


def test_a_run_already_closed_cannot_be_closed_again() -> None:
    execution = Execution(status="FAILED", attempt=1, started_at=T0, message="worker lost")
    with pytest.raises(IllegalTransition):
        lifecycle.close_run(execution, None, failure_at(1))
    assert execution.message == "worker lost"


def test_a_skip_recorded_without_running_takes_no_time_and_leaves_a_running_task_running() -> None:
    task = Task(id=3, name="backup", status="RUNNING")
    row = lifecycle.skipped_row(task, T0, lifecycle.overlap_skip(), trigger="SCHEDULE", attempt=1, now=T0)
    lifecycle.note_on_task(task, row.status)
    assert (row.status, row.started_at, row.finished_at, row.duration_ms, row.message) == (
        "SKIPPED", T0, T0, 0, "previous run still running")
    assert (task.status, task.last_status) == ("RUNNING", "SKIPPED")


def test_a_claim_writes_a_running_row_and_the_task_runs_only_once_past_the_gate() -> None:
    task = Task(id=3, name="backup", status="SUCCESS")
    row = lifecycle.claim(task, scheduled_for=T0, attempt=1, trigger="SCHEDULE", now=T0, worker="w1", job_id="j")
    assert (row.status, row.started_at, row.worker, row.job_id, task.last_run_at) == ("RUNNING", T0, "w1", "j", T0)
    assert task.status == "SUCCESS"
    lifecycle.start(task)
    assert task.status == "RUNNING"


@pytest.mark.parametrize("trigger", ["SCHEDULE", "RETRY", "RECOVERY"])
def test_a_claimed_run_of_any_trigger_but_manual_may_be_skipped_for_overlap(trigger: str) -> None:
    assert lifecycle.next_status(RUNNING, Event.SKIP, SkipReason.OVERLAP, trigger=trigger) == Status.SKIPPED


def test_a_manual_run_is_never_skipped_for_overlap_but_honours_dependencies() -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.next_status(RUNNING, Event.SKIP, SkipReason.OVERLAP, trigger="MANUAL")
    assert lifecycle.next_status(RUNNING, Event.SKIP, SkipReason.DEPENDENCY_FAILED, trigger="MANUAL") == Status.SKIPPED


@pytest.mark.parametrize("reason", [SkipReason.OVERLAP, SkipReason.MISSED, SkipReason.DROPPED_OVERDUE])
@pytest.mark.parametrize("trigger", ["MANUAL", "RETRY", "RECOVERY"])
def test_only_scheduled_occurrences_are_recorded_skipped_without_a_claim(reason: SkipReason, trigger: str) -> None:
    assert lifecycle.next_status(PENDING, Event.SKIP, reason, trigger="SCHEDULE") == Status.SKIPPED
    with pytest.raises(IllegalTransition):
        lifecycle.next_status(PENDING, Event.SKIP, reason, trigger=trigger)


@pytest.mark.parametrize("trigger", ["SCHEDULE", "MANUAL", "RETRY", "RECOVERY"])
def test_a_run_of_any_trigger_is_claimed_and_ends_like_any_other(trigger: str) -> None:
    assert lifecycle.next_status(PENDING, Event.CLAIM, trigger=trigger) == RUNNING
    assert lifecycle.next_status(RUNNING, Event.SUCCEED, trigger=trigger) == Status.SUCCESS
    assert lifecycle.next_status(RUNNING, Event.FAIL, FailReason.ERROR, retries_left=True, trigger=trigger) == Status.RETRYING
    assert lifecycle.next_status(RUNNING, Event.LOSE, FailReason.WORKER_LOST, trigger=trigger) == Status.FAILED


# -- cancel and stop (issue 15) ------------------------------------------------------------------------

def test_a_stopped_run_ends_cancelled_and_is_never_retried_whatever_the_policy() -> None:
    ending = lifecycle.end(lifecycle.stopped("ada"), attempt=1, max_retries=5, backoff_seconds=60, now=T0)
    assert (ending.status, ending.reason, ending.retry_at, ending.message) == (
        Status.CANCELLED, CancelReason.STOPPED, None, "stopped by ada")


def test_a_stopped_run_turns_its_task_cancelled() -> None:
    task = Task(id=3, name="backup", status="RUNNING", max_retries=3, retry_backoff_seconds=60)
    execution = Execution(status="RUNNING", attempt=1, started_at=T0 - timedelta(seconds=1), message="")
    lifecycle.close_run(execution, task, lifecycle.end_of_run(lifecycle.stopped("ada"), execution, task, T0))
    assert (execution.status, execution.retry_at, task.status, task.last_status) == (
        "CANCELLED", None, "CANCELLED", "CANCELLED")


def test_a_cancelled_waiting_occurrence_is_recorded_without_running_and_leaves_a_running_task_running() -> None:
    task = Task(id=3, name="backup", status="RUNNING")
    row = lifecycle.cancelled_row(task, T0, lifecycle.cancelled_waiting("ada"), trigger="SCHEDULE", attempt=1,
                                  now=T0, job_id="chime-3-1-1")
    lifecycle.note_on_task(task, row.status, ran=False)
    assert (row.status, row.started_at, row.finished_at, row.duration_ms, row.message, row.job_id) == (
        "CANCELLED", None, T0, 0, "cancelled by ada before it ran", "chime-3-1-1")
    assert (task.status, task.last_status) == ("RUNNING", "CANCELLED")


def test_a_waiting_occurrence_of_any_trigger_may_be_cancelled_but_a_closed_run_may_not_be_stopped() -> None:
    assert {lifecycle.next_status(PENDING, Event.CANCEL, CancelReason.WAITING, trigger=t) for t in
            ("SCHEDULE", "MANUAL", "RETRY", "RECOVERY")} == {Status.CANCELLED}
    assert not lifecycle.may(Status.SUCCESS, Event.CANCEL) and not lifecycle.may(Status.CANCELLED, Event.CANCEL)


def test_cancel_and_stop_notify_a_warning_that_says_which_it_was() -> None:
    stopped = SimpleNamespace(status="CANCELLED", attempt=2, message="stopped by ada", retry_at=None, duration_ms=5)
    waiting = SimpleNamespace(status="CANCELLED", attempt=1, message="cancelled by ada before it ran", retry_at=None,
                              duration_ms=0)
    assert lifecycle.notice_of("backup", stopped, CancelReason.STOPPED) == lifecycle.Notice(
        Level.WARNING, "'backup' stopped", "Attempt 2 stopped by ada")
    assert lifecycle.notice_of("backup", waiting, CancelReason.WAITING) == lifecycle.Notice(
        Level.WARNING, "'backup' cancelled", "Attempt 1 cancelled by ada before it ran")
