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
from collections import Counter, namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from redis import Redis
from rq.utils import utcparse
from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from scheduler import health, metrics
from chime import occurrence as occ
from scheduler.lock import Lock
from chime import lifecycle, watchdog
from chime.triggers import next_fire_at
from chime.database import begin_read_only, id_batches, one_of
from chime.extensions import db
from chime.models import Execution, ScheduleType, Status, Task, Trigger
from chime.services import first_occurrence, notify, save_next_run_times, schedule_of
from chime.schemas.reconcile import ReconcileCounts
from chime.redis_keys import LIVENESS_SINCE_KEY, QUEUE_NAMES, RECONCILER_LOCK_KEY, alive_key, queue_key, stop_key
from chime.timeutil import as_utc, isoformat, utcnow

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 600
REDIS_BATCH = 5000  # job hashes read per script call
DB_BATCH = 5000
REPAIR_BATCH = 2000  # repairs per round trip
REPAIRS_PER_CALL = 200  # repairs per script call (Redis runs a call alone: a few ms)
LOST_AFTER_SECONDS = occ.ALIVE_TTL_SECONDS  # no liveness beat for this long: the worker is lost
ABANDONED_AFTER_SECONDS = 30  # a live worker claims the job it took within milliseconds
RETRY_LATE_AFTER_SECONDS = 10


@dataclass
class RedisView:
    """What Redis holds about occurrences, read in batches."""

    scheduled: dict[str, Any]         # job id -> anything (membership is what counts)
    pending: dict[int, str]
    queued: dict[str, str]           # job id -> queue name
    job_fields: dict[str, JobFields]  # pending job id -> what staleness is judged on


class JobFields(NamedTuple):  # a NamedTuple, not a dataclass: one is made per pending job
    created_at: datetime | None  # read only for a job without a version (parsing it is the slow part)
    origin: str | None
    version: int | None  # None for a job written before versions were kept in the hash


def run_reconcile() -> dict[str, Any]:
    """RQ job entry point: one pass inside the worker's app."""
    from scheduler.worker import worker_app
    from chime.extensions import get_redis

    with worker_app().app_context():
        try:
            return reconcile(get_redis())
        finally:
            db.session.remove()


def reconcile(connection: Redis, now: datetime | None = None) -> dict[str, Any]:
    """Run one pass if no other is running; return (and store) its report.

    No database transaction stays open across a Redis call (a paused pass must not hold SQLite's
    write lock), and every repair in Redis is a script that re-checks, at that instant, that the
    occurrence it touches is still the one the pass judged -- the scheduler may have moved it since.
    """
    lock = Lock(connection, RECONCILER_LOCK_KEY, LOCK_TTL_SECONDS)
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
        clear_stale_inflight(connection, now, counts)
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
        watchdog.report_repairs(report, now)  # `reconcile_repaired` with the counts, when it repaired anything
        log.info("Reconcile pass: %s", report)
        return report
    finally:
        lock.release()


REPORT_KEYS = tuple(ReconcileCounts.model_fields)  # the counts a report holds (its schema says which)


def read_redis(connection: Redis) -> RedisView:
    """Read the sorted set, the pending index, the queues and job fields in batched round trips.

    The sorted set's members only (their scores are not judged); the job fields of REDIS_BATCH pending
    jobs per script call (occ.read_job_fields), not one command each.
    """
    with connection.pipeline(transaction=False) as pipe:
        pipe.zrange(occ.SCHEDULED_KEY, 0, -1)
        pipe.hgetall(occ.PENDING_KEY)
        for name in QUEUE_NAMES:
            pipe.lrange(queue_key(name), 0, -1)
        members, pending_index, *queues = pipe.execute()
    scheduled = dict.fromkeys(m.decode() for m in members)
    pending = {int(k): v.decode() for k, v in pending_index.items()}
    queued = {job_id.decode(): name for name, jobs in zip(QUEUE_NAMES, queues) for job_id in jobs}
    wanted = list(pending.values())
    fields: dict[str, JobFields] = {}
    for start in range(0, len(wanted), REDIS_BATCH):
        chunk = wanted[start:start + REDIS_BATCH]
        values = occ.read_job_fields(connection, chunk, JOB_FIELD_NAMES)
        for job_id, (created, origin, version) in zip(chunk, values):
            if created is not None or origin is not None:
                fields[job_id] = job_fields_of(created, origin, version)
    return RedisView(scheduled, pending, queued, fields)


JOB_FIELD_NAMES = ("created_at", "origin", occ.VERSION_FIELD)


def job_fields_of(created: bytes | None, origin: bytes | None, version: bytes | None) -> JobFields:
    known = int(version) if version and version.isdigit() else None
    return JobFields(utcparse(created.decode()) if created and known is None else None,
                     origin.decode() if origin else None, known)


TaskRow = Any  # a BriefTask or a FullTask (attributes named as Task's)

# What every task is judged on first: whether it is enabled, and whether its pending occurrence is stale.
BRIEF_COLUMNS = (Task.id, Task.enabled, Task.schedule_type, Task.queue, Task.version)
# What a task needing a repair is judged on besides: its schedule (services.schedule_of), what an occurrence
# is made of (occ.Occurrence.of), updated_at (staleness of an old job) and next_run_at (written back only
# when it changes).
TASK_COLUMNS = (*BRIEF_COLUMNS, Task.run_at, Task.cron, Task.interval_seconds, Task.timezone, Task.start_at,
                Task.end_at, Task.created_at, Task.updated_at, Task.timeout_seconds, Task.next_run_at)
# Plain tuples with named fields: reading a field is ~10x cheaper than a SQLAlchemy Row's attribute.
BriefTask = namedtuple("BriefTask", [column.key for column in BRIEF_COLUMNS])  # type: ignore[misc]
FullTask = namedtuple("FullTask", [column.key for column in TASK_COLUMNS])  # type: ignore[misc]


def load_tasks() -> dict[int, TaskRow]:
    """Load every task's BRIEF_COLUMNS, in a read-only transaction that ends before Redis is read.

    Plain rows of a few columns, not ORM objects (building 100,000 of those, and their instants, was most
    of a pass): the tasks that need a repair are read again in full (load_full_tasks).
    """
    return read_rows(select(*BRIEF_COLUMNS), BriefTask)


def load_full_tasks(task_ids: set[int], all_tasks: int) -> dict[int, TaskRow]:
    """TASK_COLUMNS of those of `task_ids` that exist and are enabled now (read-only; a task deleted or
    disabled since the pass began is not repaired). Many of the `all_tasks`: one scan, not IN lists."""
    query = select(*TASK_COLUMNS).where(Task.enabled.is_(True))
    if len(task_ids) > all_tasks // 2:
        return {task_id: row for task_id, row in read_rows(query, FullTask).items() if task_id in task_ids}
    ids = sorted(task_ids)
    rows: dict[int, TaskRow] = {}
    for batch in id_batches(ids):
        rows.update(read_rows(query.where(one_of(Task.id, batch)), FullTask))
    return rows


def read_rows(query: Any, shape: Any) -> dict[int, TaskRow]:
    """A select of task columns (id first), as `shape` tuples by id, through the session's connection (no ORM
    result layer)."""
    begin_read_only()
    try:
        make = shape._make
        result = db.session.connection().execute(query.execution_options(yield_per=DB_BATCH))
        return {row[0]: make(row) for row in result}
    finally:
        db.session.rollback()


def remove_orphans(connection: Redis, view: RedisView, tasks: dict[int, TaskRow], counts: Counter[str]) -> None:
    """Drop occurrences of deleted or disabled tasks, and scheduled ones that are not the task's pending one.

    Each removal re-checks in Redis that the occurrence is still scheduled (and still not pending):
    the scheduler may have moved it onto a queue since the view was read.
    """
    scheduled_orphans: list[tuple[str, int, bool]] = []
    pending_of = {job_id: task_id for task_id, job_id in view.pending.items()
                  if (task := tasks.get(task_id)) is not None and task.enabled}
    for job_id in view.scheduled:
        if is_own_pending(job_id, pending_of.get(job_id)):
            continue  # the pending occurrence of an enabled task: most of the set, judged without decoding it
        due = occ.parse_job_id(job_id)
        if due is None:
            continue
        task = tasks.get(due.task_id)
        gone = task is None or not task.enabled
        if gone or (due.attempt == 1 and not due.extra and view.pending.get(due.task_id) != job_id):
            scheduled_orphans.append((job_id, due.task_id, gone))
    queued_orphans = [(job_id, queue, task_id) for job_id, queue in view.queued.items()
                      if (task_id := queued_orphan_task(job_id, tasks)) is not None]
    forgotten = [(task_id, job_id) for task_id, job_id in view.pending.items()
                 if tasks.get(task_id) is None or not tasks[task_id].enabled]
    # The tasks were read before Redis: one created or enabled since is not gone. Read those again.
    live = still_live({t for _, t, gone in scheduled_orphans if gone} | {t for _, _, t in queued_orphans}
                      | {t for t, _ in forgotten})
    scheduled_orphans = [o for o in scheduled_orphans if not (o[2] and o[1] in live)]
    queued_orphans = [o for o in queued_orphans if o[2] not in live]
    forgotten = [f for f in forgotten if f[0] not in live]
    removed = occ.remove_orphans(connection, scheduled_orphans)
    removed += occ.remove_queued_orphans(connection, queued_orphans)
    occ.forget_pending(connection, forgotten)
    for task_id, _ in forgotten:
        view.pending.pop(task_id)
    for job_id, _, _ in scheduled_orphans:
        view.scheduled.pop(job_id, None)
    counts["orphans_removed"] += removed
    if removed:
        log.info("Reconcile: removed %s orphan occurrence(s)", removed)


def is_own_pending(job_id: str, task_id: int | None) -> bool:
    """Say whether `job_id`, the pending occurrence of enabled task `task_id`, is an occurrence of that task:
    then it is no orphan, whatever else its id says."""
    return task_id is not None and job_id.startswith(f"chime-{task_id}-")


def clear_stale_inflight(connection: Redis, now: datetime, counts: Counter[str]) -> None:
    """Settle in-flight markers: clear those of jobs that ended (their outcome is recorded, or RQ says
    so), counted as orphans; put back on its queue a job a worker took and died with before claiming it
    (no execution row, started ABANDONED_AFTER_SECONDS ago), counted as a restored pending occurrence."""
    markers = occ.inflight_markers(connection)
    if not markers:
        return
    begin_read_only()
    try:
        statuses = dict(db.session.execute(select(Execution.job_id, Execution.status).where(
            Execution.job_id.in_([job_id for _, job_id in markers]))).all())
    finally:
        db.session.rollback()
    recorded = {job_id for job_id, status in statuses.items() if status != Status.RUNNING.value}
    cleared = occ.clear_stale_inflight(connection, [(t, j, j in recorded) for t, j in markers])
    unclaimed = [job_id for _, job_id in markers if job_id not in statuses]
    requeued = occ.requeue_abandoned(connection, unclaimed, now - timedelta(seconds=ABANDONED_AFTER_SECONDS), now)
    counts["orphans_removed"] += cleared
    counts["pending_restored"] += requeued
    if cleared or requeued:
        log.info("Reconcile: cleared %s in-flight marker(s) of jobs that ended; requeued %s job(s) a dead "
                 "worker took before claiming", cleared, requeued)


def still_live(task_ids: set[int]) -> set[int]:
    """Those of `task_ids` that exist and are enabled now (a read-only query)."""
    if not task_ids:
        return set()
    begin_read_only()
    try:
        return set(db.session.scalars(select(Task.id).where(Task.id.in_(task_ids), Task.enabled.is_(True))))
    finally:
        db.session.rollback()


def queued_orphan_task(job_id: str, tasks: dict[int, TaskRow]) -> int | None:
    """The task of a queued scheduled occurrence whose task is deleted or disabled (its run would be dropped)."""
    due = occ.parse_job_id(job_id)
    if due is None or due.manual or (tasks.get(due.task_id) is not None and tasks[due.task_id].enabled):
        return None
    return due.task_id


def restore_pending(connection: Redis, view: RedisView, tasks: dict[int, TaskRow], now: datetime,
                    counts: Counter[str]) -> None:
    """Give every enabled task the pending occurrence it should have; replace stale ones.

    A lost periodic occurrence comes back at the first fire time the database says is owed (after
    the task's latest recorded occurrence and its last change), even if that time has passed, so
    the dispatcher applies the misfire rule; a ONE_TIME task queued or running is left alone.
    """
    active = active_task_ids(connection, view, tasks)
    ran = one_time_tasks_that_ran()  # after the in-flight read (see active_task_ids)
    full = load_full_tasks(tasks_to_judge(view, tasks, active), len(tasks))
    repairs, lost, recoveries = plan_repairs(view, full, now, active, ran)
    repairs += [occ.Repair(task.id, owed, view.pending.get(task.id, "")) for task, owed in owed_occurrences(lost)]
    applied = apply_repairs(connection, repairs, full, now, counts)
    recovered = [task for task in recoveries if recover_one_time(connection, task, now)]
    counts["one_time_recovered"] += len(recovered)
    save_repairs(applied, recovered, full)


def tasks_to_judge(view: RedisView, tasks: dict[int, TaskRow], active: set[int]) -> set[int]:
    """The enabled tasks plan_repairs may repair: those whose pending occurrence is not in the schedule (but
    not a ONE_TIME task queued or running) or may be stale. The rest, most tasks, are judged already."""
    judge = set()
    for task in tasks.values():
        if not task.enabled:
            continue
        pending_id = view.pending.get(task.id, "")
        if pending_id in view.scheduled:
            if may_be_stale(task, view.job_fields.get(pending_id)):
                judge.add(task.id)
        elif task.schedule_type != ScheduleType.ONE_TIME.value or task.id not in active:
            judge.add(task.id)
    return judge


def may_be_stale(task: TaskRow, fields: JobFields | None) -> bool:
    """is_stale, or a job without a version (is_stale judges it on the task's updated_at)."""
    return fields is None or fields.version is None or is_stale(task, fields)


def plan_repairs(view: RedisView, tasks: dict[int, TaskRow], now: datetime, active: set[int],
                 ran: set[int]) -> tuple[list[occ.Repair], list[TaskRow], list[TaskRow]]:
    """Sort the tasks: stale or missing ONE_TIME occurrences to repair, periodic ones lost, ONE_TIME to recover."""
    repairs: list[occ.Repair] = []
    lost: list[TaskRow] = []
    recoveries: list[TaskRow] = []
    for task in tasks.values():
        pending_id = view.pending.get(task.id, "")
        if not task.enabled:
            continue
        if pending_id in view.scheduled:
            if is_stale(task, view.job_fields.get(pending_id)):
                wanted = first_occurrence(task, utcnow(), has_run=task.id in ran)
                repairs.append(occ.Repair(task.id, wanted, pending_id, stale=True))
        elif task.schedule_type != ScheduleType.ONE_TIME.value:
            lost.append(task)
        elif task.id not in active and is_overdue_one_time(task, now, task.id in ran):
            recoveries.append(task)
        elif task.id not in active and (wanted := first_occurrence(task, now, has_run=task.id in ran)):
            repairs.append(occ.Repair(task.id, wanted, pending_id))
    return repairs, lost, recoveries


def owed_occurrences(tasks: list[TaskRow]) -> list[tuple[TaskRow, occ.Occurrence]]:
    """For periodic tasks with nothing pending: the first occurrence the database says is owed.

    That is the first fire time after both the task's latest recorded occurrence (a run, a retry
    or a SKIPPED record; manual runs are not occurrences) and its last change by a person: an
    occurrence moved onto a queue and lost with Redis before a worker claimed it is owed again.
    """
    begin_read_only()
    try:
        latest = latest_recorded_occurrences([t.id for t in tasks])
    finally:
        db.session.rollback()
    owed = []
    for task in tasks:
        after = max(filter(None, (task.updated_at, latest.get(task.id))))
        due_at = next_fire_at(schedule_of(task), after)
        if due_at is not None:
            owed.append((task, occ.Occurrence.of(task, due_at)))
    return owed


def latest_recorded_occurrences(task_ids: Iterable[int], since: datetime | None = None) -> dict[int, datetime]:
    """Each task's latest recorded occurrence (at or after `since`): the latest scheduled_for of a run,
    a retry or a SKIPPED record. A manual run and its retries are not occurrences of the schedule.
    Read-only, one query per batch; the dispatcher and the reconciler both judge with it."""
    task_ids = list(task_ids)
    manual = aliased(Execution)
    manual_run = exists().where(manual.task_id == Execution.task_id, manual.scheduled_for == Execution.scheduled_for,
                                manual.trigger == Trigger.MANUAL.value)
    latest: dict[int, datetime] = {}
    for batch in id_batches(task_ids):
        query = (select(Execution.task_id, func.max(Execution.scheduled_for))
                 .where(one_of(Execution.task_id, batch), Execution.trigger != Trigger.MANUAL.value, ~manual_run)
                 .group_by(Execution.task_id))
        if since is not None:
            query = query.where(Execution.scheduled_for >= since)
        latest.update({task_id: as_utc(at) for task_id, at in db.session.execute(query)})
    return latest


def apply_repairs(connection: Redis, repairs: list[occ.Repair], tasks: dict[int, TaskRow], now: datetime,
                  counts: Counter[str]) -> list[occ.Repair]:
    """Apply repairs; a lost occurrence found already handled (queued, running) is followed by the next one."""
    applied: list[occ.Repair] = []
    for _ in range(2):
        if not repairs:
            break
        outcomes = occ.repair_pending_many(connection, repairs, REPAIR_BATCH, REPAIRS_PER_CALL)
        applied += [r for r, outcome in zip(repairs, outcomes) if outcome in ("ok", "removed")]
        repairs = [following(r, tasks[r.task_id]) for r, outcome in zip(repairs, outcomes)
                   if outcome == "handled" and not r.stale]
        repairs = [r for r in repairs if r.occurrence is not None]
    for repair in applied:
        counts[repair_kind(repair, now)] += 1
    return applied


def following(repair: occ.Repair, task: TaskRow) -> occ.Repair:
    """The repair that puts the occurrence after an already handled one in place."""
    due_at = next_fire_at(schedule_of(task), repair.occurrence.scheduled_for)
    return occ.Repair(repair.task_id, occ.Occurrence.of(task, due_at) if due_at else None, repair.expected_id)


def repair_kind(repair: occ.Repair, now: datetime) -> str:
    if repair.stale:
        return "stale_replaced"
    return "missed_restored" if repair.occurrence.scheduled_for <= now else "pending_restored"


def save_repairs(applied: list[occ.Repair], recovered: list[TaskRow], tasks: dict[int, TaskRow]) -> None:
    """Write next_run_at of repaired tasks and the recovery notifications, in one short transaction.

    Only the next_run_at that differ from the one read at the start of the pass are written: after a
    Redis loss nearly every restored occurrence is the one the database already shows.
    """
    next_run_at = {r.task_id: r.occurrence.scheduled_for if r.occurrence else None for r in applied}
    save_next_run_times({task_id: at for task_id, at in next_run_at.items() if tasks[task_id].next_run_at != at})
    run_at = {task.id: task.run_at for task in recovered}
    if run_at:  # the notification goes to the task as it is now (one deleted meanwhile gets none)
        for task in db.session.scalars(select(Task).where(Task.id.in_(run_at)).order_by(Task.id)):
            notify(task, lifecycle.one_time_recovery_notice(task.name, run_at[task.id], task.timezone))
    db.session.commit()
    if applied:
        log.info("Reconcile: %s occurrence(s) restored or replaced", len(applied))


def one_time_tasks_that_ran() -> set[int]:
    """Return the ONE_TIME tasks that already have a non-manual run for their run_at (one query)."""
    query = (select(Execution.task_id).join(Task, Task.id == Execution.task_id)
             .where(Task.schedule_type == ScheduleType.ONE_TIME.value, Execution.scheduled_for == Task.run_at,
                    Execution.trigger != Trigger.MANUAL.value).distinct())
    begin_read_only()
    try:
        return set(db.session.scalars(query))
    finally:
        db.session.rollback()


def is_overdue_one_time(task: TaskRow, now: datetime, has_run: bool) -> bool:
    return (task.schedule_type == ScheduleType.ONE_TIME.value and not has_run
            and task.run_at is not None and task.run_at <= now)


def active_task_ids(connection: Redis, view: RedisView, tasks: dict[int, TaskRow]) -> set[int]:
    """Return the ONE_TIME tasks with an occurrence queued or running (being handled: not overdue).

    Redis is read before the database: an occurrence leaves the in-flight set only after its
    Execution row is committed, so a run is seen in one place or the other, never in neither.
    """
    ids = {d.task_id for d in map(occ.parse_job_id, view.queued) if d is not None}
    one_time = [t.id for t in tasks.values() if t.enabled and t.schedule_type == ScheduleType.ONE_TIME.value]
    for start in range(0, len(one_time), DB_BATCH):
        ids |= occ.busy_task_ids(connection, one_time[start:start + DB_BATCH])
    begin_read_only()
    try:
        running = db.session.scalars(select(Execution.task_id).where(Execution.status == Status.RUNNING.value)).all()
    finally:
        db.session.rollback()
    return ids | {t for t in running if t is not None}


def is_stale(task: TaskRow, fields: JobFields | None) -> bool:
    """Say whether a pending occurrence was made from an earlier definition of the task, or for another queue.

    A job without a version (written by an earlier Chime) is judged by its creation time against the
    task's last change by a person.
    """
    if fields is None:
        return True
    if fields.origin != task.queue:
        return True
    if fields.version is not None:
        return fields.version < task.version
    return (fields.created_at is not None and task.updated_at is not None
            and fields.created_at < task.updated_at - timedelta(seconds=1))


def recover_one_time(connection: Redis, task: TaskRow, now: datetime) -> bool:
    """Run an overdue ONE_TIME task now, with trigger RECOVERY; False if its run is already handled."""
    occurrence = occ.Occurrence.of(task, task.run_at, trigger=Trigger.RECOVERY.value)
    return occ.push_now(connection, occurrence, now) is not None


def close_lost_executions(connection: Redis, now: datetime, counts: Counter[str]) -> None:
    """Close RUNNING executions whose worker stopped beating (no liveness key) or that outlived their timeout.

    A live run beats its key every ALIVE_BEAT_SECONDS with a TTL of ALIVE_TTL_SECONDS, from the moment
    it is claimed: a run without a key that started at least that long ago has had no beat for that long.
    """
    candidates = running_executions(now - timedelta(seconds=LOST_AFTER_SECONDS))
    alive = liveness_of(connection, [execution_id for execution_id, _, _ in candidates], now)
    if alive is None:
        log.info("Reconcile: Redis lost its data less than %s s ago; liveness is judged next pass", LOST_AFTER_SECONDS)
        return
    if not candidates:
        return
    lost = {execution_id: lifecycle.lost_reason(is_alive=is_alive, started_at=started_at,
                                                timeout_seconds=timeout_seconds, now=now)
            for (execution_id, started_at, timeout_seconds), is_alive in zip(candidates, alive)}
    lost = {execution_id: reason for execution_id, reason in lost.items() if reason}
    if not lost:
        return
    stopped_by = stop_requests(connection, list(lost))  # an operator's stop: closed CANCELLED, never retried
    # Serialised with the executor recording the outcome (FOR UPDATE): only one of them wins. Tasks are
    # locked before executions, in id order, as the executor and a task's deletion lock them.
    db.session.execute(select(Task.id).where(Task.id.in_(
        select(Execution.task_id).where(Execution.id.in_(lost)))).order_by(Task.id)
        .with_for_update(key_share=True)).all()
    closed = [close_lost(execution, now, lost[execution.id], stopped_by.get(execution.id))
              for execution in db.session.scalars(
        select(Execution).where(Execution.id.in_(lost), Execution.status == Status.RUNNING.value)
        .order_by(Execution.id).with_for_update(key_share=True))]
    db.session.commit()
    counts["executions_lost"] += len(closed)
    for task_id, job_id, retry, retry_at in closed:
        if retry is not None:
            occ.schedule_at(connection, retry, retry_at)
        occ.finish_inflight(connection, task_id, job_id)


def liveness_of(connection: Redis, execution_ids: list[int], now: datetime) -> list[bool] | None:
    """Whether each execution's liveness key exists -- or None while a missing key would prove nothing.

    A restart or FLUSHALL takes every liveness key with it (a restart from an AOF file keeps older
    keys but not the beats missed while down); live workers write theirs again within a beat.
    LIVENESS_SINCE_KEY holds the server's run id and since when it has kept its data; it is read in
    the same MULTI as the keys, and written afresh when missing or from another run.
    """
    with connection.pipeline(transaction=True) as pipe:
        pipe.get(LIVENESS_SINCE_KEY)
        pipe.info("server")
        for execution_id in execution_ids:
            pipe.exists(alive_key(execution_id))
        since, server, *alive = pipe.execute()
    run_id = str(server.get("run_id", ""))
    since_run, _, since_at = (since.decode() if since else "").partition("@")
    if since_run != run_id or not since_at:
        connection.set(LIVENESS_SINCE_KEY, f"{run_id}@{now.timestamp()}")
        return None
    if now.timestamp() - float(since_at) < LOST_AFTER_SECONDS:
        return None
    return [bool(a) for a in alive]


def running_executions(started_before: datetime) -> list[tuple[int, datetime, int]]:
    """(id, started_at, task timeout) of RUNNING executions started before an instant (read-only)."""
    begin_read_only()
    try:
        return [(row.id, as_utc(row.started_at), row.timeout_seconds or 0) for row in db.session.execute(
            select(Execution.id, Execution.started_at, Task.timeout_seconds)
            .outerjoin(Task, Task.id == Execution.task_id)
            .where(Execution.status == Status.RUNNING.value, Execution.started_at <= started_before))]
    finally:
        db.session.rollback()


def stop_requests(connection: Redis, execution_ids: list[int]) -> dict[int, str]:
    """Who asked each of these runs to stop (chime.run_control), for those an operator asked."""
    values = connection.mget([stop_key(execution_id) for execution_id in execution_ids])
    return {execution_id: value.decode(errors="replace") for execution_id, value in zip(execution_ids, values)
            if value is not None}


def close_lost(execution: Execution, now: datetime, reason: lifecycle.FailReason, stopped_by: str | None = None
               ) -> tuple[int | None, str, occ.Occurrence | None, datetime | None]:
    """Close one run as lost and decide its retry by the task's policy (the caller schedules it); a run an
    operator asked to stop (`stopped_by`) is closed CANCELLED instead, with no retry."""
    task = execution.task
    outcome = lifecycle.stopped(stopped_by) if stopped_by is not None else lifecycle.lost(reason)
    ending = lifecycle.end_of_run(outcome, execution, task, now)
    lifecycle.close_run(execution, task, ending)
    log.warning("Reconcile: execution %s of task %s closed: %s", execution.id, execution.task_id, ending.message)
    if task is None:
        return None, execution.job_id or "", None, None
    notify(task, lifecycle.notice_of(task.name, execution, ending.reason, task.timezone), execution)
    retry = lifecycle.retry_of(task, execution) if ending.retry_at else None
    return task.id, execution.job_id or "", retry, ending.retry_at


def enqueue_missed_retries(connection: Redis, view: RedisView, now: datetime, counts: Counter[str]) -> None:
    """Enqueue retries whose time passed but which are nowhere in Redis and never ran."""
    for retry in missed_retries(view, now):
        occ.schedule_at(connection, retry, now)
        counts["retries_enqueued"] += 1
        log.info("Reconcile: retry %s enqueued", retry.job_id)


def missed_retries(view: RedisView, now: datetime) -> list[occ.Occurrence]:
    """The retry occurrences that were due but are neither in Redis nor recorded (read-only)."""
    begin_read_only()
    try:
        waiting = db.session.scalars(select(Execution).where(
            Execution.retry_at.is_not(None), Execution.retry_at <= now - timedelta(seconds=RETRY_LATE_AFTER_SECONDS),
            Execution.status.in_([s.value for s in lifecycle.AWAITING_RETRY]))).all()
        retries: dict[str, occ.Occurrence] = {}
        for execution in waiting:
            task = execution.task
            if task is None or not task.enabled:
                continue
            retry = lifecycle.retry_of(task, execution)
            if retry.job_id in view.scheduled or retry.job_id in view.queued or next_attempt_exists(execution):
                continue
            retries[retry.job_id] = retry
        return list(retries.values())
    finally:
        db.session.rollback()


def next_attempt_exists(execution: Execution) -> bool:
    found = db.session.scalar(select(Execution.id).where(
        Execution.task_id == execution.task_id, Execution.scheduled_for == execution.scheduled_for,
        Execution.attempt == execution.attempt + 1).limit(1))
    return found is not None
