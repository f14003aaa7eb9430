"""The reconciler: make Redis and the execution log agree with the database.

One pass, under a Redis lock so that only one runs at a time:
- enabled tasks whose pending occurrence is lost (or stale) get it back; a lost one that was due goes
  back at its due time so the dispatcher applies the misfire rule to it;
- overdue ONE_TIME tasks that never ran are run now with trigger RECOVERY;
- orphans (occurrences of deleted, disabled or changed tasks) leave the sorted set and the queues;
- RUNNING executions whose worker is gone are closed FAILED ("worker lost") and retried by policy;
- retries that were due but never enqueued are enqueued.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from rq.queue import Queue
from rq.utils import utcparse
from sqlalchemy import select, update

from scheduler import health, metrics
from scheduler import occurrence as occ
from scheduler.lock import Lock
from scheduler.policy import retry_delay_seconds, should_retry
from scheduler.triggers import next_fire_at
from webapp.extensions import db
from webapp.models import QUEUE_NAMES, Execution, Level, ScheduleType, Status, Task, Trigger
from webapp.services import add_notification, first_occurrence, schedule_of
from webapp.timeutil import isoformat, utcnow

log = logging.getLogger(__name__)

LOCK_KEY = "chime:reconciler:lock"
LOCK_TTL_SECONDS = 600
RECONCILE_JOB_ID = "chime-reconcile"
REDIS_BATCH = 5000
DB_BATCH = 5000
LOST_AFTER_SECONDS = occ.ALIVE_TTL_SECONDS + 5
RETRY_LATE_AFTER_SECONDS = 10
TIMEOUT_MARGIN_SECONDS = 120


@dataclass
class RedisView:
    """What Redis holds about occurrences, read in batches."""

    scheduled: dict[str, float]
    pending: dict[int, str]
    queued: dict[str, str]           # job id -> queue name
    job_fields: dict[str, tuple[datetime | None, str | None]]  # job id -> (created_at, origin)


def run_reconcile() -> dict[str, Any]:
    """RQ job entry point: one pass inside the worker's app."""
    from jobs.worker import worker_app
    from webapp.extensions import get_redis

    with worker_app().app_context():
        try:
            return reconcile(get_redis())
        finally:
            db.session.remove()


def reconcile(connection: Redis, now: datetime | None = None) -> dict[str, Any]:
    """Run one pass if no other is running; return (and store) its report."""
    lock = Lock(connection, LOCK_KEY, LOCK_TTL_SECONDS)
    if not lock.acquire_or_extend():
        return {"skipped": True, "reason": "another reconcile pass is running"}
    started = time.monotonic()
    now = now or utcnow()
    try:
        counts: Counter[str] = Counter()
        tasks = load_tasks()  # the database first: a task created after this is not judged by this pass
        view = read_redis(connection)
        counts["tasks_checked"] = len(tasks)
        remove_orphans(connection, view, tasks, counts)
        restore_pending(connection, view, tasks, now, counts)
        close_lost_executions(connection, now, counts)
        enqueue_missed_retries(connection, view, now, counts)
        report = {
            "started_at": isoformat(now),
            "finished_at": isoformat(utcnow()),
            "duration_ms": int((time.monotonic() - started) * 1000),
            **{key: counts.get(key, 0) for key in REPORT_KEYS},
        }
        health.save_reconcile_report(connection, report)
        metrics.record_repairs(connection, report)
        log.info("Reconcile pass: %s", report)
        return report
    finally:
        lock.release()


REPORT_KEYS = ("tasks_checked", "pending_restored", "missed_restored", "one_time_recovered", "stale_replaced",
               "orphans_removed", "executions_lost", "retries_enqueued")


def read_redis(connection: Redis) -> RedisView:
    """Read the sorted set, the pending index, the queues and job fields in batched round trips."""
    scheduled = {m.decode(): s for m, s in connection.zrange(occ.SCHEDULED_KEY, 0, -1, withscores=True)}
    pending = {int(k): v.decode() for k, v in connection.hgetall(occ.PENDING_KEY).items()}
    queued: dict[str, str] = {}
    for name in QUEUE_NAMES:
        for job_id in connection.lrange(Queue.redis_queue_namespace_prefix + name, 0, -1):
            queued[job_id.decode()] = name
    wanted = list(pending.values())
    fields: dict[str, tuple[datetime | None, str | None]] = {}
    for start in range(0, len(wanted), REDIS_BATCH):
        chunk = wanted[start:start + REDIS_BATCH]
        with connection.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hmget(occ.JOB_KEY.format(job_id=job_id), "created_at", "origin")
            for job_id, (created, origin) in zip(chunk, pipe.execute()):
                fields[job_id] = (utcparse(created.decode()) if created else None, origin.decode() if origin else None)
    return RedisView(scheduled, pending, queued, fields)


def load_tasks() -> dict[int, Task]:
    """Load every task, in batches."""
    tasks: dict[int, Task] = {}
    for task in db.session.scalars(select(Task).order_by(Task.id).execution_options(yield_per=DB_BATCH)):
        tasks[task.id] = task
    return tasks


def remove_orphans(connection: Redis, view: RedisView, tasks: dict[int, Task], counts: Counter[str]) -> None:
    """Drop occurrences of deleted or disabled tasks, and scheduled ones that are not the task's pending one."""
    orphans_scheduled, orphans_queued = [], []
    for job_id in view.scheduled:
        due = occ.parse_job_id(job_id)
        if due is None:
            continue
        task = tasks.get(due.task_id)
        live = task is not None and task.enabled
        if not live or (due.attempt == 1 and not due.manual and view.pending.get(due.task_id) != job_id):
            orphans_scheduled.append(job_id)
    for job_id, queue in view.queued.items():
        due = occ.parse_job_id(job_id)
        if due is not None and not due.manual and (tasks.get(due.task_id) is None or not tasks[due.task_id].enabled):
            orphans_queued.append((job_id, queue))
    with connection.pipeline() as pipe:
        for job_id in orphans_scheduled:
            pipe.zrem(occ.SCHEDULED_KEY, job_id)
            pipe.delete(occ.JOB_KEY.format(job_id=job_id))
            view.scheduled.pop(job_id, None)
        for job_id, queue in orphans_queued:
            pipe.lrem(Queue.redis_queue_namespace_prefix + queue, 0, job_id)
            pipe.delete(occ.JOB_KEY.format(job_id=job_id))
        for task_id, job_id in list(view.pending.items()):
            task = tasks.get(task_id)
            if task is None or not task.enabled:
                pipe.hdel(occ.PENDING_KEY, task_id)
                view.pending.pop(task_id)
        pipe.execute()
    counts["orphans_removed"] += len(orphans_scheduled) + len(orphans_queued)
    for job_id in orphans_scheduled + [j for j, _ in orphans_queued]:
        log.info("Reconcile: removed orphan occurrence %s", job_id)


def restore_pending(connection: Redis, view: RedisView, tasks: dict[int, Task], now: datetime,
                    counts: Counter[str]) -> None:
    """Give every enabled task with nothing pending its occurrence back, in batches.

    A ONE_TIME task with an occurrence queued or running is left alone (it is being handled).
    """
    active = active_task_ids(connection, view, tasks)
    ran = one_time_tasks_that_ran()  # after the in-flight read (see active_task_ids)
    restores: list[tuple[int, occ.Occurrence | None]] = []
    for task in tasks.values():
        if not task.enabled:
            continue
        pending_id = view.pending.get(task.id)
        stale = pending_id in view.scheduled
        if stale and not is_stale(task, view.job_fields.get(pending_id)):
            continue
        if not stale and task.schedule_type == ScheduleType.ONE_TIME.value and task.id in active:
            continue
        if not stale and is_overdue_one_time(task, now, task.id in ran):
            recover_one_time(connection, task, now, counts)
            restores.append((task.id, None))
            continue
        counts["stale_replaced" if stale else "pending_restored"] += 1
        restores.append((task.id, wanted_occurrence(task, now, ran, stale, counts)))
    occ.replace_pending_many(connection, restores)
    rows = [{"id": task_id, "next_run_at": o.scheduled_for if o else None} for task_id, o in restores]
    for start in range(0, len(rows), DB_BATCH):
        db.session.execute(update(Task), rows[start:start + DB_BATCH])
    db.session.commit()
    if restores:
        log.info("Reconcile: %s occurrence(s) restored or replaced", len(restores))


def one_time_tasks_that_ran() -> set[int]:
    """Return the ONE_TIME tasks that already have a non-manual run for their run_at (one query)."""
    query = (select(Execution.task_id).join(Task, Task.id == Execution.task_id)
             .where(Task.schedule_type == ScheduleType.ONE_TIME.value, Execution.scheduled_for == Task.run_at,
                    Execution.trigger != Trigger.MANUAL.value).distinct())
    return set(db.session.scalars(query))


def is_overdue_one_time(task: Task, now: datetime, has_run: bool) -> bool:
    return (task.schedule_type == ScheduleType.ONE_TIME.value and not has_run
            and task.run_at is not None and task.run_at <= now)


def wanted_occurrence(task: Task, now: datetime, ran: set[int], stale: bool,
                      counts: Counter[str]) -> occ.Occurrence | None:
    """Return the occurrence a task should have pending; a lost due one keeps its time (misfire rule)."""
    missed_at = task.next_run_at
    if (not stale and task.schedule_type != ScheduleType.ONE_TIME.value and missed_at is not None
            and missed_at <= now and is_fire_time(task, missed_at)):
        counts["pending_restored"] -= 1
        counts["missed_restored"] += 1
        return occ.Occurrence(task_id=task.id, scheduled_for=missed_at, attempt=1, trigger=Trigger.SCHEDULE.value,
                              version=task.version, queue=task.queue, timeout_seconds=task.timeout_seconds)
    return first_occurrence(task, now, has_run=task.id in ran)


def active_task_ids(connection: Redis, view: RedisView, tasks: dict[int, Task]) -> set[int]:
    """Return the ONE_TIME tasks with an occurrence queued or running (being handled: not overdue).

    Redis is read before the database: an occurrence leaves the in-flight set only after its
    Execution row is committed, so a run is seen in one place or the other, never in neither.
    """
    ids = {d.task_id for d in map(occ.parse_job_id, view.queued) if d is not None}
    one_time = [t.id for t in tasks.values() if t.enabled and t.schedule_type == ScheduleType.ONE_TIME.value]
    for start in range(0, len(one_time), DB_BATCH):
        ids |= occ.busy_task_ids(connection, one_time[start:start + DB_BATCH])
    running = db.session.scalars(select(Execution.task_id).where(Execution.status == Status.RUNNING.value)).all()
    return ids | {t for t in running if t is not None}


def is_stale(task: Task, fields: tuple[datetime | None, str | None] | None) -> bool:
    """Say whether a pending occurrence was made before the task's last change, or for another queue."""
    if fields is None:
        return True
    created_at, origin = fields
    return origin != task.queue or (created_at is not None and task.updated_at is not None
                                    and created_at < task.updated_at - timedelta(seconds=1))


def is_fire_time(task: Task, at: datetime) -> bool:
    return next_fire_at(schedule_of(task), at - timedelta(microseconds=1)) == at


def recover_one_time(connection: Redis, task: Task, now: datetime, counts: Counter[str]) -> None:
    """Run an overdue ONE_TIME task now, with trigger RECOVERY."""
    occurrence = occ.Occurrence(task_id=task.id, scheduled_for=task.run_at, attempt=1,
                                trigger=Trigger.RECOVERY.value, version=task.version, queue=task.queue,
                                timeout_seconds=task.timeout_seconds)
    occ.push_now(connection, occurrence, now)
    add_notification(task, Level.INFO, f"{task.name!r} recovered",
                     f"The run due at {isoformat(task.run_at)} was missed; it is running now.")
    counts["one_time_recovered"] += 1


def close_lost_executions(connection: Redis, now: datetime, counts: Counter[str]) -> None:
    """Close RUNNING executions whose worker is gone (no liveness key) or that outlived their timeout."""
    running = db.session.scalars(select(Execution).where(Execution.status == Status.RUNNING.value,
                                                         Execution.started_at <= now - timedelta(seconds=LOST_AFTER_SECONDS))).all()
    if not running:
        return
    with connection.pipeline(transaction=False) as pipe:
        for execution in running:
            pipe.exists(occ.ALIVE_KEY.format(execution_id=execution.id))
        alive = pipe.execute()
    for execution, is_alive in zip(running, alive):
        task = execution.task
        overdue = task is not None and execution.started_at < now - timedelta(
            seconds=task.timeout_seconds + TIMEOUT_MARGIN_SECONDS)
        if is_alive and not overdue:
            continue
        close_lost(connection, execution, now, "worker lost" if not is_alive else "worker lost: outlived its timeout")
        counts["executions_lost"] += 1
    db.session.commit()


def close_lost(connection: Redis, execution: Execution, now: datetime, message: str) -> None:
    """Mark one execution FAILED and schedule its retry as the task's policy says."""
    execution.status = Status.FAILED.value
    execution.message = message
    execution.finished_at = now
    execution.duration_ms = int((now - execution.started_at).total_seconds() * 1000)
    task = execution.task
    if task is None:
        return
    task.status = task.last_status = Status.FAILED.value
    if should_retry(attempt=execution.attempt, max_retries=task.max_retries):
        delay = retry_delay_seconds(attempt=execution.attempt, base_seconds=task.retry_backoff_seconds)
        execution.retry_at = now + timedelta(seconds=delay)
        retry = occ.Occurrence(task_id=task.id, scheduled_for=execution.scheduled_for, attempt=execution.attempt + 1,
                               trigger=Trigger.RETRY.value, version=task.version, queue=task.queue,
                               timeout_seconds=task.timeout_seconds)
        occ.schedule_at(connection, retry, execution.retry_at)
        add_notification(task, Level.WARNING, f"{task.name!r} lost its worker; retrying",
                         f"Attempt {execution.attempt} {message}. Retry at {isoformat(execution.retry_at)}", execution)
    else:
        add_notification(task, Level.ERROR, f"{task.name!r} failed", f"Attempt {execution.attempt} {message}", execution)
    occ.finish_inflight(connection, task.id, execution.job_id or "")
    log.warning("Reconcile: execution %s of task %s closed: %s", execution.id, task.id, message)


def enqueue_missed_retries(connection: Redis, view: RedisView, now: datetime, counts: Counter[str]) -> None:
    """Enqueue retries whose time passed but which are nowhere in Redis and never ran."""
    waiting = db.session.scalars(select(Execution).where(
        Execution.retry_at.is_not(None), Execution.retry_at <= now - timedelta(seconds=RETRY_LATE_AFTER_SECONDS),
        Execution.status.in_([Status.RETRYING.value, Status.FAILED.value]))).all()
    inflight = set()
    for execution in waiting:
        task = execution.task
        if task is None or not task.enabled:
            continue
        retry_id = occ.occurrence_job_id(task.id, execution.scheduled_for, execution.attempt + 1, Trigger.RETRY.value)
        if retry_id in view.scheduled or retry_id in view.queued or retry_id in inflight:
            continue
        if next_attempt_exists(execution):
            continue
        retry = occ.Occurrence(task_id=task.id, scheduled_for=execution.scheduled_for, attempt=execution.attempt + 1,
                               trigger=Trigger.RETRY.value, version=task.version, queue=task.queue,
                               timeout_seconds=task.timeout_seconds)
        occ.schedule_at(connection, retry, now)
        inflight.add(retry_id)
        counts["retries_enqueued"] += 1
        log.info("Reconcile: retry %s of execution %s enqueued", retry_id, execution.id)


def next_attempt_exists(execution: Execution) -> bool:
    found = db.session.scalar(select(Execution.id).where(
        Execution.task_id == execution.task_id, Execution.scheduled_for == execution.scheduled_for,
        Execution.attempt == execution.attempt + 1).limit(1))
    return found is not None


def ensure_periodic_job(scheduler: Any, interval_seconds: int) -> None:
    """Keep the periodic reconcile job in rq-scheduler's sorted set (it is lost with Redis)."""
    connection = scheduler.connection
    if connection.zscore(occ.SCHEDULED_KEY, RECONCILE_JOB_ID) is not None:
        return
    if connection.exists(occ.JOB_KEY.format(job_id=RECONCILE_JOB_ID)) and \
            connection.hget(occ.JOB_KEY.format(job_id=RECONCILE_JOB_ID), "status") in (b"queued", b"started"):
        return
    scheduler.schedule(scheduled_time=datetime.utcnow(), func="scheduler.reconcile.run_reconcile",
                       interval=interval_seconds, id=RECONCILE_JOB_ID, queue_name="high", result_ttl=600,
                       timeout=LOCK_TTL_SECONDS)
    log.info("Scheduled the periodic reconcile every %s s", interval_seconds)


PRUNE_JOB_ID = "chime-prune-logs"
PRUNE_INTERVAL_SECONDS = 3600
PRUNE_TIMEOUT_SECONDS = 1800


def ensure_retention_job(scheduler: Any) -> None:
    """Keep the hourly log-retention job (webapp.retention.run_prune) in rq-scheduler's sorted set."""
    connection = scheduler.connection
    if connection.zscore(occ.SCHEDULED_KEY, PRUNE_JOB_ID) is not None:
        return
    if connection.hget(occ.JOB_KEY.format(job_id=PRUNE_JOB_ID), "status") in (b"queued", b"started"):
        return
    scheduler.schedule(scheduled_time=datetime.utcnow(), func="webapp.retention.run_prune",
                       interval=PRUNE_INTERVAL_SECONDS, id=PRUNE_JOB_ID, queue_name="low", result_ttl=600,
                       timeout=PRUNE_TIMEOUT_SECONDS)
    log.info("Scheduled the log-retention prune every %s s", PRUNE_INTERVAL_SECONDS)
