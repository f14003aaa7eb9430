"""An operator's run controls: cancel an occurrence that waits, stop a run that runs. Both end CANCELLED.

- Cancel (`cancel_waiting`): one script (redis_scripts.CANCEL_WAITING_LUA) takes the job out of the
  schedule or off its queue if it still waits there, and the occurrence is recorded CANCELLED (a row, so
  the reconciler counts it as the occurrence's recorded outcome and never puts it back). A pending
  occurrence gives way to the task's next one. A job a worker took meanwhile is a ConflictError.
- Stop (`request_stop`): the run's stop key in Redis; the worker running it raises JobStopped inside
  the job within a liveness beat (scheduler.stopping) and records the run CANCELLED, never retried.

Like every use-case, both flush and never commit: the caller's unit of work does.
"""
from __future__ import annotations

from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chime import audit, lifecycle
from chime import occurrence as occ
from chime.enums import ScheduleType, Status, Trigger
from chime.errors import ConflictError, NotFoundError, UnavailableError
from chime.extensions import db, get_redis
from chime.models import QUEUE_NAMES, Execution, Task
from chime.redis_keys import job_key, stop_key
from chime.services import get_row, notify, schedule_of
from chime.triggers import next_fire_at

STOP_MARGIN_SECONDS = 600  # a stop request outlasts the run's timeout by this much, then expires


def cancel_waiting(queue: str, job_id: str, now: datetime) -> Execution:
    """Cancel the occurrence job `job_id` of `queue` that waits (scheduled or queued); return its
    CANCELLED row. NotFoundError for a job that is not a waiting occurrence of a task, ConflictError
    for one a worker has taken (stop it instead) or that has ended."""
    due = occ.parse_job_id(job_id) if queue in QUEUE_NAMES else None
    task = db.session.get(Task, due.task_id) if due is not None else None
    if due is None or task is None:
        raise NotFoundError("waiting job", job_id)
    connection = get_redis()
    origin = connection.hget(job_key(job_id), "origin")
    if origin is not None and origin.decode(errors="replace") != queue:
        raise NotFoundError(f"waiting job of queue {queue!r}", job_id)
    outcome = lifecycle.cancelled_waiting(audit.current_actor().label)
    execution = lifecycle.cancelled_row(task, due.scheduled_for, outcome, trigger=_trigger_of(connection, due),
                                        attempt=due.attempt, now=now, job_id=job_id)
    _claim_occurrence(execution, task)  # before Redis: a worker's claim of it now waits for this transaction
    try:
        cancelled = occ.cancel_waiting(connection, job_id, task.id, queue, now, _following(connection, task, due))
    except RedisError as error:
        raise UnavailableError(f"Redis is unavailable: {error}") from error
    if not cancelled.done:
        raise _not_waiting(job_id, cancelled.where)
    if cancelled.next_id is not None:
        task.next_run_at = occ.parse_job_id(cancelled.next_id).scheduled_for
    elif occ.pending_job_id(connection, task.id) is None and _was_pending(task, due):
        task.next_run_at = None
    lifecycle.note_on_task(task, Status.CANCELLED, ran=False)
    notify(task, lifecycle.notice_of(task.name, execution, outcome.reason, task.timezone), execution)
    audit.record("cancel", "execution", execution.id, task.name,
                 details={"job_id": job_id, "queue": queue, "where": cancelled.where,
                          "scheduled_for": due.scheduled_for.isoformat(), "attempt": due.attempt})
    return execution


def _claim_occurrence(execution: Execution, task: Task) -> None:
    """Insert the CANCELLED row; an occurrence that already has one (a worker claimed it) is a conflict."""
    try:
        with db.session.begin_nested():
            db.session.add(execution)
    except IntegrityError:
        running = db.session.scalar(select(Execution).where(
            Execution.task_id == task.id, Execution.scheduled_for == execution.scheduled_for,
            Execution.attempt == execution.attempt))
        if running is not None and running.status == Status.RUNNING:
            raise ConflictError(f"Job {execution.job_id} is already running (execution {running.id}): "
                                "stop it instead") from None
        raise ConflictError(f"The occurrence of job {execution.job_id} has already been recorded"
                            + (f" (execution {running.id}, {running.status})" if running else "")) from None


def _not_waiting(job_id: str, where: str) -> Exception:
    if where == "running":
        return ConflictError(f"Job {job_id} is already running: stop it instead")
    if where == "ended":
        return ConflictError(f"Job {job_id} has already ended")
    return NotFoundError("waiting job", job_id)


def _trigger_of(connection: Redis, due: occ.DueJob) -> str:
    """The trigger of a waiting occurrence: its job's description says it ("task 7 recovery ...")."""
    if due.manual:
        return Trigger.MANUAL.value
    if due.attempt > 1:
        return Trigger.RETRY.value
    description = connection.hget(job_key(due.job_id), "description") or b""
    words = description.decode(errors="replace").split()
    named = words[2].upper() if len(words) > 2 else ""
    return named if named in (Trigger.SCHEDULE.value, Trigger.RECOVERY.value) else Trigger.SCHEDULE.value


def _was_pending(task: Task, due: occ.DueJob) -> bool:
    return task.next_run_at is not None and task.next_run_at == due.scheduled_for


def _following(connection: Redis, task: Task, due: occ.DueJob) -> occ.Occurrence | None:
    """The occurrence that replaces `due` if `due` is the task's pending one: its next fire time."""
    if due.manual or due.attempt != 1 or task.schedule_type == ScheduleType.ONE_TIME.value or not task.enabled:
        return None
    if occ.pending_job_id(connection, task.id) != due.job_id:
        return None
    due_at = next_fire_at(schedule_of(task), due.scheduled_for)
    return occ.Occurrence.of(task, due_at) if due_at is not None else None


def request_stop(execution_id: int) -> Execution:
    """Ask the worker running execution `execution_id` to stop it; ConflictError if it is not running."""
    execution = get_row(Execution, execution_id)
    if execution.status != Status.RUNNING:
        raise ConflictError(f"Run {execution.id} is not running: it has already ended ({execution.status})")
    task = db.session.get(Task, execution.task_id) if execution.task_id is not None else None
    timeout = task.timeout_seconds if task is not None else 0
    actor = audit.current_actor().label
    try:
        first = get_redis().set(stop_key(execution.id), actor, ex=timeout + STOP_MARGIN_SECONDS, nx=True)
    except RedisError as error:
        raise UnavailableError(f"Redis is unavailable: {error}") from error
    if first:  # asking again while the stop is under way changes nothing, so it is recorded once
        audit.record("stop", "execution", execution.id, execution.task_name,
                     details={"job_id": execution.job_id, "task_id": execution.task_id})
    return execution
