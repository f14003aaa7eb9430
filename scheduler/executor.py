"""The one RQ entry point: run one occurrence of a task and record it.

claim the Execution row -> gate (dependencies, overlap) -> run under the timeout ->
record SUCCESS / RETRYING / FAILED -> schedule the retry -> notify.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload

import jobs.registry as registry
from scheduler import metrics
from scheduler.liveness import BEATER
from scheduler.stopping import JobStopped, StopSwitch
from chime import occurrence as occ
from chime import lifecycle
from chime import live
from chime import rules
from chime.redis_keys import alive_key, inflight_key
from chime.lifecycle import Outcome
from chime.extensions import db, get_redis
from chime.logs import log_context
from chime.models import FINAL_STATUSES, Execution, Status, Task, Trigger
from chime.services import notify
from chime.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)
RUNNING_STALE_MARGIN_SECONDS = 60
DATABASE_RETRY_DELAY_SECONDS = 5
RECORD_RETRY_SECONDS = 120
RQ_TRACEBACK_CHARS = 2048  # the end of a failed run's traceback that RQ's failed registry keeps with its job


class JobTimeoutError(Exception):
    """The job ran past its task's timeout_seconds."""


class RunFailedError(Exception):
    """A run Chime recorded FAILED with no retry left. Raised once the outcome is stored, so that RQ ends
    the job as failed too (its queue's failed registry, `rq info`, rq-dashboard), with the job's error."""

    @classmethod
    def of(cls, call: Call, outcome: Outcome) -> RunFailedError:
        """The run's message and the end of its traceback (RQ keeps this text with the failed job for its
        failure TTL, once per failed run: the whole traceback stays in the execution log)."""
        text = f"execution {call.execution_id} of task {call.context.task_id} failed: {outcome.message}"
        if not outcome.traceback:
            return cls(text)
        return cls(f"{text}\n{outcome.traceback[-RQ_TRACEBACK_CHARS:]}")


def execute(task_id: int, trigger: str, version: int = 0, scheduled_for: str | None = None,
            attempt: int | None = None, task_created_at: str | None = None,
            args: dict[str, Any] | None = None, args_signature: str | None = None) -> dict[str, Any]:
    """RQ job function: run one occurrence inside the worker's app context.

    The occurrence's scheduled time and attempt are read from the job id, which is derived from
    them (`occ.occurrence_job_id`): the job's payload is then the same for every occurrence of a
    task, so the scheduler can copy the due job's hash to make the next one. `task_created_at`
    names the task the job was made for (a job of a deleted task never runs another task).
    `version` is no longer sent (the definition's version is the job hash's `chime_version`, read by
    the reconciler); it is still accepted from jobs an earlier release left queued. `args`, when given,
    replace the task's arguments for this run only (a run now with arguments, and its retries); they run
    only with the `args_signature` the app that queued them made (occ.args_signature, keyed with SECRET_KEY).

    A run recorded FAILED for good raises RunFailedError once everything is stored, so RQ ends the job
    in its queue's failed registry as well (`rq info`, rq-dashboard); every other outcome returns.
    """
    from scheduler.worker import worker_app
    from rq import get_current_job

    job = get_current_job()
    scheduled_at, attempt = occurrence_of(job.id if job is not None else None, scheduled_for, attempt)
    occurrence = Claim(task_id, scheduled_at, attempt, trigger,
                       datetime.fromisoformat(task_created_at) if task_created_at else None, args, args_signature)
    with worker_app().app_context():
        try:
            return run_occurrence(occurrence)
        except OperationalError as error:
            return requeue_when_database_is_down(task_id, scheduled_at.isoformat(), attempt, trigger, error)
        finally:
            db.session.remove()


def occurrence_of(job_id: str | None, scheduled_for: str | None, attempt: int | None) -> tuple[datetime, int]:
    """Return (scheduled_for, attempt) of the occurrence a job runs: from its id, which is the occurrence.

    Jobs written before the id was the only record passed them as arguments too; a copy of such a job
    (the scheduler copies the due job to make the next one) still holds the earlier occurrence's
    arguments, so the id always wins and the arguments serve only a job without an occurrence id.
    """
    due = occ.parse_job_id(job_id) if job_id else None
    if due is not None:
        return due.scheduled_for, due.attempt
    if scheduled_for is None or attempt is None:
        raise ValueError(f"job {job_id!r} names no occurrence: no occurrence id and no scheduled_for/attempt")
    return datetime.fromisoformat(scheduled_for), attempt


def requeue_when_database_is_down(task_id: int, scheduled_for: str, attempt: int, trigger: str,
                                  error: Exception) -> dict[str, Any]:
    """Put the same occurrence back (same job id) for later: an unreachable database never drops it.

    If the RUNNING row was already written, the duplicate delivery is ignored and the reconciler
    closes the row as "worker lost" and retries it by policy.
    """
    db.session.rollback()
    from rq import get_current_job

    job = get_current_job()
    log.warning("Database unavailable for task %s (%s); requeueing in %s s", task_id, error, DATABASE_RETRY_DELAY_SECONDS)
    if job is not None:
        occ.redeliver_later(get_redis(), job, utcnow() + timedelta(seconds=DATABASE_RETRY_DELAY_SECONDS))
    return {"requeued": True, "reason": str(error)[:200]}


@dataclass(frozen=True)
class Claim:
    """What a job asks for: one attempt of one occurrence of one task."""

    task_id: int
    scheduled_for: datetime
    attempt: int
    trigger: str
    task_created_at: datetime | None = None
    args: dict[str, Any] | None = None  # overridden for this run only (None: the task's own)
    args_signature: str | None = None  # occ.args_signature of `args`: only signed arguments run


@dataclass(frozen=True)
class Call:
    """A claimed run, as plain values: nothing below reads the database until the outcome is recorded."""

    execution_id: int
    job: str
    args: dict[str, Any]
    timeout_seconds: int
    context: registry.JobContext
    skip: Outcome | None  # the gate's decision, made inside the claim's transaction
    started_at: datetime  # the RUNNING row's started_at
    overridden_args: dict[str, Any] | None  # the row's args (a run with arguments of its own)
    job_id: str | None

    def running_row(self, task_id: int | None) -> Execution:
        """The claim's RUNNING row as values (lifecycle.running_row), for the record to close."""
        return lifecycle.running_row(
            execution_id=self.execution_id, task_id=task_id, task_name=self.context.task_name,
            attempt=self.context.attempt, trigger=self.context.trigger, scheduled_for=self.context.scheduled_for,
            started_at=self.started_at, job_id=self.job_id, args=self.overridden_args)


def run_occurrence(claim_: Claim) -> dict[str, Any]:
    """Claim, gate, run and record one occurrence; a duplicate delivery does nothing."""
    job_id, worker = current_job_identity()
    after = AfterRun(claim_.task_id, job_id)
    with log_context(task_id=claim_.task_id, job_id=job_id):
        try:
            call = claim(claim_, job_id, worker)
            if isinstance(call, dict):
                return call
            switch = StopSwitch()  # an operator's stop: the liveness thread trips it (scheduler.stopping)
            with liveness(call.execution_id, switch.trip, after), log_context(execution_id=call.execution_id):
                outcome = call.skip or perform(call, switch)
                after.recorded, status = record_until_stored(call, outcome)
        finally:
            after.send(get_redis())
        if after.recorded is not None and after.recorded.retry is not None:
            schedule_retry(after.recorded)
        if status == Status.FAILED.value:
            raise RunFailedError.of(call, outcome)
        return {"execution_id": call.execution_id, "status": status}


@contextmanager
def liveness(execution_id: int, on_stop: Callable[[str], None] | None = None,
             after: AfterRun | None = None) -> Iterator[None]:
    """Beat an expiring 'alive' key for a running execution while the block runs, so the reconciler can tell
    a lost worker; with each beat, read the run's stop key and call `on_stop(who asked)` while it is set.
    The beat is the process's one liveness thread (scheduler.liveness: no thread per run, no key written
    for a run shorter than a beat). A key it wrote is deleted with `after`'s pipeline (at once without one)."""
    connection = get_redis()
    watched = BEATER.watch(connection, execution_id, on_stop)
    try:
        yield
    finally:
        if BEATER.unwatch(watched):
            if after is not None:
                after.alive_key = alive_key(execution_id)
            else:
                try:
                    connection.delete(alive_key(execution_id))
                except RedisError:
                    pass


def current_job_identity() -> tuple[str | None, str]:
    """Return (RQ job id, worker name) for the running job, when run by RQ."""
    from rq import get_current_job

    job = get_current_job()
    default_worker = f"{socket.gethostname()}.{os.getpid()}"
    if job is None:
        return None, default_worker
    return job.id, job.worker_name or default_worker


def claim(claim_: Claim, job_id: str | None, worker: str) -> Call | dict[str, Any]:
    """Insert the RUNNING row and make the gate's decision, in one short transaction.

    Returns the run as plain values, or a result for a job that must not run: its task is gone,
    disabled, or is not the task it was made for; or this attempt already has its row (a duplicate).
    """
    task = task_to_claim(claim_.task_id)
    refusal = refuse(task, claim_)
    if refusal:
        db.session.rollback()
        log.info("Dropping job %s: %s", job_id, refusal)
        return {"dropped": True, "reason": refusal}
    skip = gate(task, claim_.trigger)  # before anything is written: its reads flush nothing
    now = utcnow()
    execution = lifecycle.claim(task, scheduled_for=claim_.scheduled_for, attempt=claim_.attempt,
                                trigger=claim_.trigger, now=now, worker=worker, job_id=job_id)
    execution.args = claim_.args
    if skip is None:
        lifecycle.start(task)
    db.session.add(execution)
    try:
        db.session.flush()  # one flush: the RUNNING row and the task's last_run_at and status
        call = Call(execution.id, task.job, dict(task.args or {} if claim_.args is None else claim_.args),
                    task.timeout_seconds,
                    registry.JobContext(task_id=task.id, execution_id=execution.id, attempt=claim_.attempt,
                                        scheduled_for=claim_.scheduled_for, task_name=task.name,
                                        trigger=str(claim_.trigger)),
                    skip, now, claim_.args, job_id)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("Duplicate delivery of task %s %s attempt %s ignored (job %s)", claim_.task_id,
                 claim_.scheduled_for, claim_.attempt, job_id)
        return {"duplicate": True}
    return call


def task_to_claim(task_id: int) -> Task | None:
    """The task, fresh and locked until the claim commits, with its parents in the same statement (none for
    most tasks: no second query). The lock (FOR NO KEY UPDATE on Postgres, SQLite's write lock) serialises
    two claims of one task, so the gate's overlap query sees a run the other one committed; rows that only
    reference the task (another claim's insert, a skip) are not blocked."""
    return db.session.scalars(
        select(Task).options(joinedload(Task.parents)).where(Task.id == task_id)
        .with_for_update(key_share=True, of=Task).execution_options(populate_existing=True)).unique().first()


def refuse(task: Task | None, claim_: Claim) -> str:
    """Say why a job must not run its task ('' when it may)."""
    if task is None:
        return f"task {claim_.task_id} is deleted"
    if claim_.task_created_at is not None and as_utc(task.created_at) != as_utc(claim_.task_created_at):
        return f"task {claim_.task_id} is not the task the job was made for (that one was deleted)"
    if not task.enabled and claim_.trigger != Trigger.MANUAL.value:
        return f"task {claim_.task_id} is disabled"
    if claim_.args is not None and not isinstance(claim_.args, dict):
        return f"the arguments the job names for task {claim_.task_id} are not an object"
    if claim_.args is not None and not occ.args_signed(current_app.config["SECRET_KEY"], claim_.task_id, claim_.args,
                                                       claim_.args_signature):
        return (f"the arguments the job names for task {claim_.task_id} are not signed with this deployment's "
                "SECRET_KEY (every process must share it)")
    return ""


def gate(task: Task, trigger: str) -> Outcome | None:
    """Return a skip when a parent has not succeeded or a previous run still runs (called before the claim
    writes its own row: any RUNNING row of the task is another run)."""
    for parent in task.parents:
        latest = db.session.scalar(
            select(Execution.status).where(Execution.task_id == parent.id,
                                           Execution.status.in_([s.value for s in FINAL_STATUSES]))
            .order_by(Execution.id.desc()).limit(1))
        if latest != Status.SUCCESS:
            return lifecycle.dependency_skip(parent.name, parent.id, latest)
    if lifecycle.overlap_applies(task.overlap, trigger) and other_run_active(task):
        return lifecycle.overlap_skip()
    return None


def other_run_active(task: Task) -> bool:
    """Say whether an execution of the task is RUNNING and not stale."""
    fresh_after = utcnow() - timedelta(seconds=task.timeout_seconds + RUNNING_STALE_MARGIN_SECONDS)
    other = db.session.scalar(
        select(Execution.id).where(Execution.task_id == task.id, Execution.status == Status.RUNNING.value,
                                   Execution.started_at >= fresh_after)
        .limit(1))
    return other is not None


def perform(call: Call, switch: StopSwitch | None = None) -> Outcome:
    """Run the job function under the task's timeout, stoppable by `switch`; no database transaction is
    open; never raise."""
    context = call.context
    switch = switch or StopSwitch()
    try:
        with time_limit(call.timeout_seconds), switch.armed():
            result = registry.run(call.job, call.args, context=context)
    except JobStopped:
        log.info("Task %s execution %s stopped by %s", context.task_id, context.execution_id, switch.requested_by)
        return lifecycle.stopped(switch.requested_by)
    except JobTimeoutError as error:
        return lifecycle.timed_out(call.timeout_seconds, job_traceback(error))
    except Exception as error:  # noqa: BLE001 - a job's failure is data, not a crash
        log.info("Task %s execution %s failed: %r", context.task_id, context.execution_id, error)
        return lifecycle.raised(error, job_traceback(error))
    return lifecycle.succeeded(result)


# Chime's own frames around a job's call (this module's, the registry's): left out of the job's traceback.
MACHINERY_FILES = frozenset({os.path.abspath(__file__), os.path.abspath(registry.__file__)})


def job_traceback(error: BaseException) -> str:
    """The traceback of a job's error from the job's own frames: the executor's and the registry's frames
    (the call into the job, the timer that stopped it) are left out; chained causes are kept."""
    summary = traceback.TracebackException.from_exception(error)
    for exception in _chain(summary):
        exception.stack = traceback.StackSummary.from_list(
            [frame for frame in exception.stack if os.path.abspath(frame.filename) not in MACHINERY_FILES])
    return "".join(summary.format())


def _chain(summary: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    seen: set[int] = set()
    pending = [summary]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [linked for linked in (current.__cause__, current.__context__) if linked is not None]


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise JobTimeoutError in the main thread after `seconds`; restore any outer timer after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: Any) -> None:
        raise JobTimeoutError()

    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:
            signal.setitimer(signal.ITIMER_REAL, max(previous_delay - (time.monotonic() - started), 0.001))


@dataclass(frozen=True)
class Recorded:
    """What was stored, as plain values for the Redis work done after the commit."""

    task_id: int
    execution_id: int
    status: str
    duration_seconds: float
    lag_seconds: float | None
    retry: occ.Occurrence | None
    retry_at: datetime | None


def record_until_stored(call: Call, outcome: Outcome) -> tuple[Recorded | None, str]:
    """Record the outcome, retrying while the database is unreachable (the job must not run twice).
    Return what was stored (None: the run had been closed meanwhile, nothing was) and the status."""
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    delay = 0.5
    while True:
        try:
            # The task row first, locked (FOR NO KEY UPDATE on Postgres; SQLite's write lock): read fresh for
            # its retry policy and notifications, in the order the reconciler and a task's deletion lock
            # (task, then run). Inserting a row that references the task (a claim, a skip) is not blocked.
            task = db.session.get(Task, call.context.task_id, with_for_update={"key_share": True},
                                  populate_existing=True)
            recorded = record(task, call.running_row(call.context.task_id if task is not None else None), outcome)
            break
        except OperationalError as error:
            db.session.rollback()
            if time.monotonic() > deadline:
                raise
            log.warning("Recording execution %s failed (%s); retrying in %.1f s", call.execution_id, error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10)
    return recorded, recorded.status if recorded is not None else outcome.status.value


def record(task: Task | None, run: Execution, outcome: Outcome) -> Recorded | None:
    """Store the outcome and its notification in one transaction; None if the run was closed meanwhile.

    `run` is the claim's RUNNING row as values (not read back): its end is stored with one conditional
    UPDATE (`close_if_running`), so of this outcome and anything else closing the run (the reconciler
    finding it lost, a stop closed by the reconciler) exactly one is stored, whichever commits first.
    A task deleted while it ran keeps its run's outcome in the log, with nothing to retry or notify.
    """
    ending = lifecycle.end_of_run(outcome, run, task, utcnow())
    previous_status = task.last_status if task is not None else None
    lifecycle.close_run(run, task, ending)
    if not close_if_running(run):
        closed = db.session.execute(select(Execution.status, Execution.message).where(Execution.id == run.id)).first()
        log.warning("Execution %s was already closed as %s (%s); its late outcome %s is not recorded", run.id,
                    closed.status if closed else "deleted", closed.message if closed else "", outcome.status)
        db.session.rollback()
        return None
    if task is not None:
        notify(task, lifecycle.notice_of(task.name, run, ending.reason, task.timezone), run)
        rules.note_run(task, run, previous_status)  # at most one small outbox row (chime.rules)
    recorded = Recorded(
        run.task_id or 0, run.id, ending.status.value, run.duration_ms / 1000,
        (as_utc(run.started_at) - as_utc(run.scheduled_for)).total_seconds()
        if run.trigger == Trigger.SCHEDULE else None,
        lifecycle.retry_of(task, run) if ending.retry_at else None, ending.retry_at)
    log.info("Execution %s of task %s finished %s in %s ms", run.id, run.task_id, ending.status.value,
             run.duration_ms)
    db.session.commit()
    return recorded


def close_if_running(run: Execution) -> bool:
    """Write the closed run's fields (lifecycle.CLOSED_FIELDS) onto its row if the row is still RUNNING;
    say whether it was. The row is not read first: the UPDATE's own condition decides (on Postgres a
    concurrent close holding the row makes it wait, then re-check the condition on the row it committed)."""
    result = db.session.execute(
        update(Execution).where(Execution.id == run.id, Execution.status == Status.RUNNING.value)
        .values({name: getattr(run, name) for name in lifecycle.CLOSED_FIELDS})
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    live.note_written(db.session, "run", run.task_id)  # a statement, not a flush: announce it too (chime.live)
    return True


@dataclass
class AfterRun:
    """The Redis work left once a run's outcome is committed (or the job did not run), sent in one pipeline:
    delete the alive key if a beat wrote it, forget the in-flight marker (a later occurrence must not find
    this finished run busy), add the metrics. A Redis outage loses only the samples: the reconciler clears
    a stale marker and keys expire."""

    task_id: int
    job_id: str | None
    alive_key: str | None = None
    recorded: Recorded | None = None

    def send(self, connection: Any) -> None:
        if self.job_id is None and self.alive_key is None and self.recorded is None:
            return
        try:
            with connection.pipeline(transaction=False) as pipe:
                if self.alive_key is not None:
                    pipe.delete(self.alive_key)
                if self.job_id is not None:
                    pipe.zrem(inflight_key(self.task_id), self.job_id)
                if self.recorded is not None:
                    metrics.add_execution(pipe, task_id=self.recorded.task_id, status=self.recorded.status,
                                          duration_seconds=self.recorded.duration_seconds,
                                          lag_seconds=self.recorded.lag_seconds)
                pipe.execute()
        except RedisError as error:
            log.warning("Redis work after job %s not done (alive key, in-flight marker, metrics): %s",
                        self.job_id, error)


def schedule_retry(recorded: Recorded) -> None:
    """Put the next attempt into the scheduler's sorted set; the reconciler covers a Redis outage."""
    try:
        occ.schedule_at(get_redis(), recorded.retry, recorded.retry_at)
    except RedisError as error:
        log.warning("Retry of execution %s not scheduled (Redis: %s); the reconciler will enqueue it",
                    recorded.execution_id, error)
