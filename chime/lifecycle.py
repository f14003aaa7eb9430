"""The life of one execution: one transition table, the retry decision and the texts of each outcome.

An occurrence is PENDING while it has no row (it waits in Redis, scheduled or queued). A worker's
claim writes its row RUNNING; it ends SUCCESS, RETRYING, FAILED, SKIPPED or CANCELLED (an operator
stopped it). Some occurrences never run and are recorded SKIPPED straight away (the dispatcher, a change
to the task), or CANCELLED (an operator took it off its queue or out of the schedule). A run ending
RETRYING, or closed FAILED as lost with retries left, has a `retry_at`: its next attempt is a new
occurrence (trigger RETRY, attempt + 1) that starts PENDING again.

    PENDING --CLAIM--> RUNNING --SUCCEED--> SUCCESS
       |                  |----FAIL-------> RETRYING (retries left) | FAILED (none left)
       |                  |----LOSE-------> FAILED (retried by policy all the same)
       |                  |----SKIP-------> SKIPPED (the claim's gate: DEPENDENCY_FAILED; OVERLAP, not MANUAL)
       |                  '----CANCEL-----> CANCELLED (STOPPED by an operator; never retried)
       |-------SKIP-----------------------> SKIPPED (OVERLAP, MISSED, DROPPED_OVERDUE: SCHEDULE only)
       '-------CANCEL---------------------> CANCELLED (WAITING: taken off its queue or the schedule)

Every decision is made on a typed reason; the message stored with a run is only its text.
The decisions are pure (they take `now`); `claim`, `start`, `skipped_row` and `close_run` write the
decision onto rows (no session calls: the caller adds, flushes and commits); `running_row` rebuilds a
claimed run from its values, so the executor closes it without reading it back (`closed_fields`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chime import occurrence as occ
from chime.enums import Level, Overlap, Status, Trigger
from chime.models import Execution, Task
from chime.policy import retry_delay_seconds, should_retry
from chime.timeutil import as_utc, local_text
from chime.triggers import DEFAULT_MISSED_LIMIT

MAX_MESSAGE_CHARS = 4000
MAX_TRACEBACK_CHARS = 16 * 1024  # a failed run keeps the end of its job's traceback, where the error is
TRACEBACK_CUT_MARKER = "[... traceback cut: only its last {kept} characters are kept ...]\n"
TIMEOUT_MARGIN_SECONDS = 120  # a run still beating this long past its timeout is taken for lost


class Event(str, enum.Enum):
    """What happens to an occurrence."""

    CLAIM = "CLAIM"  # a worker writes its row RUNNING
    SUCCEED = "SUCCEED"  # the job returned
    FAIL = "FAIL"  # the job raised or ran past its timeout
    LOSE = "LOSE"  # the reconciler found its worker gone
    SKIP = "SKIP"  # recorded without running the job
    CANCEL = "CANCEL"  # an operator cancelled it while it waited, or stopped it while it ran


class SkipReason(str, enum.Enum):
    """Why an occurrence was recorded SKIPPED."""

    OVERLAP = "OVERLAP"  # overlap=SKIP and an earlier run was queued or running
    DEPENDENCY_FAILED = "DEPENDENCY_FAILED"  # a parent's latest final run is not SUCCESS
    MISSED = "MISSED"  # due while the engine was down, past the misfire grace
    DROPPED_OVERDUE = "DROPPED_OVERDUE"  # the task was changed or disabled before it was dispatched


class FailReason(str, enum.Enum):
    """Why a run ended FAILED (or RETRYING)."""

    ERROR = "ERROR"  # the job raised
    TIMEOUT = "TIMEOUT"  # the job ran past timeout_seconds
    WORKER_LOST = "WORKER_LOST"  # its worker stopped beating
    OUTLIVED_TIMEOUT = "OUTLIVED_TIMEOUT"  # still beating long after its timeout


class CancelReason(str, enum.Enum):
    """Why an occurrence was recorded CANCELLED."""

    WAITING = "WAITING"  # an operator took it off its queue (or out of the schedule) before a worker did
    STOPPED = "STOPPED"  # an operator stopped it while it ran


Reason = SkipReason | FailReason | CancelReason | None
LOST = frozenset({FailReason.WORKER_LOST, FailReason.OUTLIVED_TIMEOUT})


@dataclass(frozen=True)
class Transition:
    """One allowed move: from `source` on `event` with one of `reasons`, for an occurrence of one of
    `triggers`, to `target`. `retries_left` tells FAIL's two targets apart (None: it does not matter).
    """

    source: Status
    event: Event
    target: Status
    reasons: frozenset[Reason]
    triggers: frozenset[Trigger] = frozenset(Trigger)
    retries_left: bool | None = None


NO_REASON: frozenset[Reason] = frozenset({None})
RAN_AND_FAILED: frozenset[Reason] = frozenset({FailReason.ERROR, FailReason.TIMEOUT})
SCHEDULED_ONLY = frozenset({Trigger.SCHEDULE})  # the dispatcher and a task's change judge scheduled occurrences
NOT_MANUAL = frozenset(Trigger) - {Trigger.MANUAL}  # "Run now" ignores the overlap policy
TRANSITIONS = (
    Transition(Status.PENDING, Event.CLAIM, Status.RUNNING, NO_REASON),
    Transition(Status.PENDING, Event.SKIP, Status.SKIPPED,
               frozenset({SkipReason.OVERLAP, SkipReason.MISSED, SkipReason.DROPPED_OVERDUE}), SCHEDULED_ONLY),
    Transition(Status.RUNNING, Event.SKIP, Status.SKIPPED, frozenset({SkipReason.OVERLAP}), NOT_MANUAL),
    Transition(Status.RUNNING, Event.SKIP, Status.SKIPPED, frozenset({SkipReason.DEPENDENCY_FAILED})),
    Transition(Status.RUNNING, Event.SUCCEED, Status.SUCCESS, NO_REASON),
    Transition(Status.RUNNING, Event.FAIL, Status.RETRYING, RAN_AND_FAILED, retries_left=True),
    Transition(Status.RUNNING, Event.FAIL, Status.FAILED, RAN_AND_FAILED, retries_left=False),
    Transition(Status.RUNNING, Event.LOSE, Status.FAILED, frozenset(LOST)),
    Transition(Status.PENDING, Event.CANCEL, Status.CANCELLED, frozenset({CancelReason.WAITING})),
    Transition(Status.RUNNING, Event.CANCEL, Status.CANCELLED, frozenset({CancelReason.STOPPED})),
)
# Rows in these statuses with a retry_at owe their next attempt (a lost run stays FAILED).
AWAITING_RETRY = (Status.RETRYING, Status.FAILED)


class IllegalTransition(ValueError):
    """Raised for a move the transition table does not allow."""


def next_status(source: Status | str, event: Event, reason: Reason = None, *, retries_left: bool = False,
                trigger: Trigger | str | None = None) -> Status:
    """Return the status an occurrence (of `trigger`; None: any) in `source` moves to on `event`;
    raise IllegalTransition if it may not."""
    source = Status(source)
    for move in TRANSITIONS:
        if (move.source, move.event) == (source, event) and reason in move.reasons \
                and move.retries_left in (None, retries_left) and (trigger is None or Trigger(trigger) in move.triggers):
            return move.target
    raise IllegalTransition(f"{source.value} may not move on {event.value} with reason {reason} (trigger {trigger})")


def may(source: Status | str, event: Event) -> bool:
    """Say whether any move leaves `source` on `event` (a run closed meanwhile may not end again)."""
    return any((move.source.value, move.event) == (Status(source).value, event) for move in TRANSITIONS)


def task_status_after(task_status: str | None, run_status: Status, *, ran: bool = True) -> str:
    """The task's status once one of its runs moved to `run_status`: a skip, or an occurrence that did not
    run (`ran` False: cancelled while it waited), never hides a run in progress."""
    if (run_status == Status.SKIPPED or not ran) and task_status == Status.RUNNING.value:
        return task_status
    return run_status.value


def overlap_applies(overlap: str, trigger: str) -> bool:
    """Say whether the overlap policy may skip a claimed run of `trigger` (the table says which may be)."""
    if overlap != Overlap.SKIP.value:
        return False
    try:
        next_status(Status.RUNNING, Event.SKIP, SkipReason.OVERLAP, trigger=trigger)
    except IllegalTransition:
        return False
    return True


# -- outcomes: what happened, with its typed reason and its text ----------------------------------

@dataclass(frozen=True)
class Outcome:
    """What happened to a run (or an occurrence that did not run), and why."""

    event: Event
    reason: Reason
    message: str
    result: Any = None
    traceback: str | None = None  # the job's own traceback, for a run that raised or timed out

    @property
    def status(self) -> Status:
        """The status this outcome records when no retry is left, whatever it moves from."""
        return next(move.target for move in TRANSITIONS if move.event == self.event and self.reason in move.reasons
                    and move.retries_left in (None, False))


def succeeded(result: Any) -> Outcome:
    return Outcome(Event.SUCCEED, None, "", result)


def raised(error: BaseException, traceback: str | None = None) -> Outcome:
    return Outcome(Event.FAIL, FailReason.ERROR, f"{type(error).__name__}: {error}"[:MAX_MESSAGE_CHARS],
                   traceback=bounded_traceback(traceback))


def timed_out(timeout_seconds: int, traceback: str | None = None) -> Outcome:
    return Outcome(Event.FAIL, FailReason.TIMEOUT, f"timed out after {timeout_seconds} s",
                   traceback=bounded_traceback(traceback))


def bounded_traceback(text: str | None) -> str | None:
    """A traceback cut to MAX_TRACEBACK_CHARS: its end (the frames nearest the error), after a marker."""
    if not text or len(text) <= MAX_TRACEBACK_CHARS:
        return text or None
    kept = MAX_TRACEBACK_CHARS - len(TRACEBACK_CUT_MARKER.format(kept=MAX_TRACEBACK_CHARS))
    return TRACEBACK_CUT_MARKER.format(kept=kept) + text[-kept:]


LOST_MESSAGES = {FailReason.WORKER_LOST: "worker lost", FailReason.OUTLIVED_TIMEOUT: "worker lost: outlived its timeout"}


def lost(reason: FailReason) -> Outcome:
    return Outcome(Event.LOSE, reason, LOST_MESSAGES[reason])


def lost_reason(*, is_alive: bool, started_at: datetime, timeout_seconds: int, now: datetime) -> FailReason | None:
    """Why a RUNNING run is lost (no liveness beat, or far past its timeout); None while it is not."""
    if not is_alive:
        return FailReason.WORKER_LOST
    if started_at < now - timedelta(seconds=timeout_seconds + TIMEOUT_MARGIN_SECONDS):
        return FailReason.OUTLIVED_TIMEOUT
    return None


def cancelled_waiting(actor: str) -> Outcome:
    """Cancelled by `actor` while it waited on its queue or in the schedule: it never ran."""
    return Outcome(Event.CANCEL, CancelReason.WAITING, f"cancelled by {actor} before it ran")


def stopped(actor: str | None) -> Outcome:
    """Stopped by `actor` (None: not known to the worker) while it ran."""
    return Outcome(Event.CANCEL, CancelReason.STOPPED, f"stopped by {actor}" if actor else "stopped by an operator")


def overlap_skip(missed_count: int = 1) -> Outcome:
    """Skipped: the previous run still runs; the text says how many occurrences a coalesced skip covers."""
    message = "previous run still running"
    if missed_count > 1:
        message = f"{message}: {missed_count} occurrence(s) skipped"
    return Outcome(Event.SKIP, SkipReason.OVERLAP, message)


def dependency_skip(parent_name: str, parent_id: int, latest_status: str | None) -> Outcome:
    """Skipped: a parent's latest final run (None: it never ran) is not SUCCESS."""
    state = "never ran" if latest_status is None else f"latest run {latest_status}"
    return Outcome(Event.SKIP, SkipReason.DEPENDENCY_FAILED,
                   f"dependency {parent_name!r} (task {parent_id}) has not succeeded: {state}")


def missed_skip(missed_count: int, late_seconds: float, grace_seconds: int) -> Outcome:
    """Skipped: missed while the engine was down, the latest past the grace (count capped at the limit)."""
    count_text = f"at least {missed_count}" if missed_count >= DEFAULT_MISSED_LIMIT else str(missed_count)
    return Outcome(Event.SKIP, SkipReason.MISSED,
                   f"missed: {count_text} occurrence(s) due while the engine was down; "
                   f"latest {late_seconds:.0f} s late (grace {grace_seconds} s)")


def dropped_overdue_skip(*, disabled: bool, overdue_count: int) -> Outcome:
    """Skipped: a change took overdue occurrences out of the schedule before they were dispatched."""
    why = "disabled" if disabled else "changed"
    return Outcome(Event.SKIP, SkipReason.DROPPED_OVERDUE,
                   f"not run: the task was {why} before the scheduler dispatched {overdue_count} overdue occurrence(s)")


# -- ending a run, and its retry -------------------------------------------------------------------

@dataclass(frozen=True)
class Ending:
    """How a RUNNING run ends: what its row records."""

    event: Event
    status: Status
    reason: Reason
    message: str
    finished_at: datetime
    retry_at: datetime | None = None
    result: Any = None
    traceback: str | None = None


def retry_at(*, attempt: int, max_retries: int, backoff_seconds: int, failed_at: datetime) -> datetime | None:
    """When the failed `attempt` is tried again (backoff·2^(attempt-1), capped); None when none is left."""
    if not should_retry(attempt=attempt, max_retries=max_retries):
        return None
    return failed_at + timedelta(seconds=retry_delay_seconds(attempt=attempt, base_seconds=backoff_seconds))


def end(outcome: Outcome, *, attempt: int, max_retries: int, backoff_seconds: int, now: datetime) -> Ending:
    """Decide how a RUNNING run ends on `outcome` at `now`: its status and, after a failure, its retry."""
    again_at = None
    if outcome.event in (Event.FAIL, Event.LOSE):
        again_at = retry_at(attempt=attempt, max_retries=max_retries, backoff_seconds=backoff_seconds, failed_at=now)
    status = next_status(Status.RUNNING, outcome.event, outcome.reason, retries_left=again_at is not None)
    return Ending(outcome.event, status, outcome.reason, outcome.message, now, again_at, outcome.result,
                  outcome.traceback)


def end_of_run(outcome: Outcome, execution: Execution, task: Any | None, now: datetime) -> Ending:
    """How `execution` ends on `outcome`, by its task's retry policy (a deleted task retries nothing)."""
    return end(outcome, attempt=execution.attempt, max_retries=task.max_retries if task is not None else 0,
               backoff_seconds=task.retry_backoff_seconds if task is not None else 0, now=now)


def retry_of(task: Any, execution: Execution) -> occ.Occurrence:
    """The next attempt of a run's occurrence (trigger RETRY), with the run's overridden arguments if it had any."""
    return occ.Occurrence.of(task, as_utc(execution.scheduled_for), execution.attempt + 1, Trigger.RETRY.value,
                             args=execution.args)


# -- notifications ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Notice:
    """A notification to add (the task's notify policy may still mute its level)."""

    level: Level
    title: str
    message: str = ""


QUIET_SKIPS = frozenset({SkipReason.OVERLAP, SkipReason.DROPPED_OVERDUE})


def notice_of(task_name: str, execution: Execution, reason: Reason, tz: str = "UTC") -> Notice | None:
    """The notification a run's end (or a skip) deserves; None for the quiet ones. Times in `tz` (the task's)."""
    label, attempt = f"{task_name!r}", execution.attempt
    status, message, again_at = Status(execution.status), execution.message, local_text(execution.retry_at, tz)
    if status == Status.SUCCESS:
        return Notice(Level.SUCCESS, f"{label} succeeded", f"Attempt {attempt} took {execution.duration_ms} ms")
    if status == Status.SKIPPED:
        return None if reason in QUIET_SKIPS else Notice(Level.WARNING, f"{label} skipped", message)
    if status == Status.CANCELLED:
        verb = "stopped" if reason == CancelReason.STOPPED else "cancelled"
        return Notice(Level.WARNING, f"{label} {verb}", f"Attempt {attempt} {message}")
    if reason in LOST:
        if again_at:
            return Notice(Level.WARNING, f"{label} lost its worker; retrying", f"Attempt {attempt} {message}. Retry at {again_at}")
        return Notice(Level.ERROR, f"{label} failed", f"Attempt {attempt} {message}")
    if status == Status.RETRYING:
        return Notice(Level.WARNING, f"{label} failed; retrying", f"Attempt {attempt} failed: {message}. Retry at {again_at}")
    return Notice(Level.ERROR, f"{label} failed", f"Attempt {attempt} failed: {message}")


def catch_up_notice(task_name: str, scheduled_for: datetime, missed_count: int, late_seconds: float,
                    tz: str = "UTC") -> Notice:
    """The dispatcher runs one coalesced catch-up (trigger RECOVERY) for missed occurrences."""
    return Notice(Level.INFO, f"{task_name!r} recovered",
                  f"Running the occurrence due at {local_text(scheduled_for, tz)} ({missed_count} missed, {late_seconds:.0f} s late)")


def one_time_recovery_notice(task_name: str, run_at: datetime, tz: str = "UTC") -> Notice:
    """The reconciler runs an overdue ONE_TIME task now (trigger RECOVERY)."""
    return Notice(Level.INFO, f"{task_name!r} recovered", f"The run due at {local_text(run_at, tz)} was missed; it is running now.")


# -- writing a decision onto rows (no session calls) ------------------------------------------------

def claim(task: Task, *, scheduled_for: datetime, attempt: int, trigger: str, now: datetime,
          worker: str, job_id: str | None) -> Execution:
    """PENDING -> RUNNING: the row a worker's claim inserts; the task last ran now.

    The task itself turns RUNNING only once the gate lets the run go (`start`).
    """
    task.last_run_at = now
    return Execution(task_id=task.id, task_name=task.name, status=next_status(Status.PENDING, Event.CLAIM, trigger=trigger).value,
                     attempt=attempt, trigger=trigger, scheduled_for=scheduled_for, started_at=now, worker=worker,
                     job_id=job_id)


def start(task: Task) -> None:
    """A claimed run passed the gate and runs: the task shows it."""
    task.status = task_status_after(task.status, Status.RUNNING)


def skipped_row(task: Task, scheduled_for: datetime, outcome: Outcome, *, trigger: str, attempt: int,
                now: datetime) -> Execution:
    """PENDING -> SKIPPED: the row of an occurrence recorded without running."""
    status = next_status(Status.PENDING, outcome.event, outcome.reason, trigger=trigger)
    return Execution(task_id=task.id, task_name=task.name, status=status.value, attempt=attempt, trigger=trigger,
                     scheduled_for=scheduled_for, started_at=now, finished_at=now, duration_ms=0,
                     message=outcome.message)


def cancelled_row(task: Task, scheduled_for: datetime, outcome: Outcome, *, trigger: str, attempt: int,
                  now: datetime, job_id: str | None) -> Execution:
    """PENDING -> CANCELLED: the row of an occurrence an operator cancelled before a worker took it."""
    status = next_status(Status.PENDING, outcome.event, outcome.reason, trigger=trigger)
    return Execution(task_id=task.id, task_name=task.name, status=status.value, attempt=attempt, trigger=trigger,
                     scheduled_for=scheduled_for, started_at=None, finished_at=now, duration_ms=0,
                     message=outcome.message, job_id=job_id)


def note_on_task(task: Task, run_status: Status | str, *, ran: bool = True) -> None:
    """A run of the task reached a final status (or RETRYING): the task's status and last status follow.
    `ran` False: the occurrence never ran (it does not replace a run in progress as the task's status)."""
    task.status = task_status_after(task.status, Status(run_status), ran=ran)
    task.last_status = Status(run_status).value


CLOSED_FIELDS = ("status", "message", "result", "finished_at", "duration_ms", "retry_at", "traceback")


def closed_fields(execution: Execution, ending: Ending) -> dict[str, Any]:
    """The columns (CLOSED_FIELDS) a run's end writes; raise IllegalTransition if the run may not end so."""
    next_status(execution.status, ending.event, ending.reason, retries_left=ending.retry_at is not None,
                trigger=execution.trigger)
    return {"status": ending.status.value, "message": ending.message, "result": ending.result,
            "finished_at": ending.finished_at,
            "duration_ms": int((ending.finished_at - as_utc(execution.started_at)).total_seconds() * 1000),
            "retry_at": ending.retry_at, "traceback": ending.traceback}


def close_run(execution: Execution, task: Task | None, ending: Ending) -> None:
    """RUNNING -> the ending's status: write it onto the run and its task (None: deleted while it ran)."""
    for name, value in closed_fields(execution, ending).items():
        setattr(execution, name, value)
    if task is not None:
        note_on_task(task, ending.status)


def running_row(*, execution_id: int, task_id: int | None, task_name: str, attempt: int, trigger: str,
                scheduled_for: datetime, started_at: datetime, job_id: str | None,
                args: dict[str, Any] | None) -> Execution:
    """The RUNNING row a claim wrote, rebuilt from its values (not attached to any session): the executor
    closes it with `close_run` and stores the closed fields with one conditional UPDATE, without reading it."""
    return Execution(id=execution_id, task_id=task_id, task_name=task_name, status=Status.RUNNING.value,
                     attempt=attempt, trigger=trigger, scheduled_for=scheduled_for, started_at=started_at,
                     job_id=job_id, args=args, message="")
