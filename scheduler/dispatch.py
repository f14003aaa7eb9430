"""The scheduler process: move due occurrences onto RQ queues, precisely and exactly once.

It keeps rq-scheduler's layout (due RQ jobs in its sorted set, as RQ job hashes; see chime.redis_keys),
so RQ's and rq-scheduler's tools read the schedule, but it is its own loop, not rq-scheduler's:
- it wakes for the earliest due occurrence (or when a task changes) instead of every 60 s;
- the move of a due occurrence and the scheduling of the task's next one are one Lua script;
- the pass that reads the database also plans the plain occurrences due in the next LOOKAHEAD_SECONDS, each then
  moved at its due instant by one script that re-checks in Redis that nothing changed (follow_plan);
- the next fire time comes from the task in the database (croniter, in the task's time zone),
  computed from the scheduled time, never from "now", with misfires decided by a pure policy;
- it pushes Chime's own periodic jobs (reconcile, retention) once per slot (scheduler.periodic).
Two schedulers may run; the one holding the lock dispatches, the other waits to take over.
"""
from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from functools import partial
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq.utils import utcformat
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from scheduler import health, metrics, periodic
from chime import occurrence as occ
from scheduler.lock import Lock
from chime import lifecycle
from chime.policy import SKIP_MISSED, decide_misfire
from scheduler.reconcile import latest_recorded_occurrences
from chime.triggers import catch_up, next_fire_at
from chime.extensions import db
from chime.models import Execution, Overlap, ScheduleType, Task, Trigger
from chime.database import begin_read_only, wait_briefly_for_row_locks
from chime.services import notify, record_skip, save_next_run_times, schedule_of
from chime.redis_keys import (LEGACY_PERIODIC_JOB_IDS, PENDING_KEY, QUEUES_SET_KEY, SCHEDULED_KEY,
                              SCHEDULER_LOCK_KEY, WAKEUP_KEY, inflight_key, job_key, queue_key)
from chime.redis_scripts import MOVE_PLANNED_LUA
from chime.timeutil import utcnow
from chime.controls import resume_due_tasks
from chime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 5.0
TICK_SECONDS = 1.0
BATCH_SIZE = 500  # occurrences per pass: the first of a burst land sooner, and each move script blocks Redis briefly
ERROR_BACKOFF_SECONDS = 1.0
HOUSEKEEPING_SECONDS = 1.0
PRECISE_SLEEP_SECONDS = 0.15  # longer than Redis' default blocking-timeout granularity (hz 10)
# Look-ahead: each pass that reads the database also plans the plain occurrences due within this long, so
# at their due instant each is one script call (MOVE_PLANNED_LUA), which re-checks in Redis that nothing
# changed meanwhile; at 167 fires a second one read plans ~80 of them instead of one.
LOOKAHEAD_SECONDS = 0.5
# A planned move is made only this late at most (else the pass plans afresh: its misfire decision was "on time").
PLANNED_MAX_LATE_SECONDS = 0.25
# The shortest timeout sent to a blocking command. Redis 6.2 (the embedded server) reads a timeout
# below 1 ms as 0, which means "block forever": BLPOP k 0.0009 never returns.
MIN_BLOCKING_SECONDS = 0.01
# What planning reads of a task: plain rows, not ORM objects (a burst plans thousands at once).
PLAN_COLUMNS = (
    Task.id, Task.name, Task.enabled, Task.queue, Task.overlap, Task.version, Task.timeout_seconds,
    Task.misfire_grace_seconds, Task.created_at, Task.updated_at, Task.schedule_type, Task.timezone,
    Task.run_at, Task.cron, Task.interval_seconds, Task.start_at, Task.end_at,
)
TaskRow = Any  # a Row of PLAN_COLUMNS: read like a Task


@dataclass
class Plan:
    """What one dispatch pass will do: the moves for Redis, new jobs to save, next times for the DB."""

    moves: list[occ.Move] = field(default_factory=list)
    new_jobs: list[occ.Occurrence] = field(default_factory=list)  # saved before the move (replacements)
    next_jobs: dict[str, occ.Occurrence] = field(default_factory=dict)  # copied by the move, by job id
    next_run_at: dict[int, datetime | None] = field(default_factory=dict)
    writes: list[tuple[int, Callable[[Task], object]]] = field(default_factory=list)  # (task id, skip/notify)
    ahead: list[PlannedMove] = field(default_factory=list)  # plain moves of occurrences due a moment later


@dataclass(frozen=True)
class PlannedMove:
    """The move of an occurrence planned before it falls due: valid from its due instant to `valid_until`."""

    move: occ.Move
    due_epoch: float
    valid_until_epoch: float  # the plan said "on time": later, the misfire decision may differ
    version: int
    solo: bool  # overlap SKIP: moved only while nothing of the task is in flight
    next_job: occ.Occurrence | None


class ChimeScheduler:
    """The dispatcher: precise, atomic and highly available."""

    def __init__(self, connection: Redis, app: Flask, name: str | None = None,
                 lock_ttl_seconds: float = LOCK_TTL_SECONDS) -> None:
        self.connection = connection
        self.name = name or f"chime-{uuid.uuid4().hex[:8]}"
        self.app = app
        self.lock = Lock(connection, SCHEDULER_LOCK_KEY, lock_ttl_seconds)
        self.stopping = False
        self.active = False
        self.housekeeping_due_at = 0.0
        self.unsaved_next_run_at: dict[int, datetime | None] = {}
        # Look-ahead: due id -> its planned move, or None when it was looked at and is left to a fresh pass.
        self.planned: dict[str, PlannedMove | None] = {}
        self.earliest: tuple[str, float] | None = None  # the schedule's earliest (id, score), as last read
        self.move_planned_script = connection.register_script(MOVE_PLANNED_LUA)

    # -- the loop -------------------------------------------------------------------------
    def run(self, burst: bool = False) -> None:
        """Dispatch until SIGTERM/SIGINT; only the lock holder dispatches."""
        self._install_stop_handlers()
        log.info("Scheduler %s started", self.name)
        try:
            while not self.stopping:
                wait_seconds = self.tick()
                if burst:
                    break
                self.wait(wait_seconds)
        finally:
            self._release()
            log.info("Scheduler %s stopped", self.name)

    def tick(self) -> float:
        """Run one pass; return how long to wait before the next."""
        try:
            with self.app.app_context():
                if time.monotonic() >= self.housekeeping_due_at:
                    self.housekeeping()
                if not self.active:
                    self.planned.clear()
                    return TICK_SECONDS
                if self.follow_plan(time.time()):
                    return self.seconds_until_earliest(time.time())
                moved = self.dispatch_due(utcnow(), save_next_run_at=False, lookahead_seconds=LOOKAHEAD_SECONDS)
            if moved >= BATCH_SIZE:
                return 0.0
            return self.seconds_until_next_due(time.time())
        except (RedisError, SQLAlchemyError) as error:
            self.planned.clear()
            log.warning("Scheduler %s pass failed (%s); retrying", self.name, error)
            return ERROR_BACKOFF_SECONDS
        except Exception:  # noqa: BLE001 - one bad task or bug must not stop every schedule: log, retry
            self.planned.clear()
            log.exception("Scheduler %s pass failed unexpectedly; retrying", self.name)
            return ERROR_BACKOFF_SECONDS

    def housekeeping(self) -> None:
        """Once a second, off the dispatch path: the lock, the heartbeat, bookkeeping, built-in jobs."""
        was_active, self.active = self.active, self.lock.acquire_or_extend()
        health.beat_scheduler(self.connection, self.name, self.active)
        self.housekeeping_due_at = time.monotonic() + HOUSEKEEPING_SECONDS
        if self.active:
            if not was_active:
                periodic.remove_legacy_entries(self.connection)
            self.save_next_run_at_quietly()
            self.resume_due_quietly()
            periodic.push_due(self.connection, periodic.periodic_jobs(self.app.config), utcnow())

    def resume_due_quietly(self) -> None:
        """Resume the paused tasks whose resume_at has come (one indexed query, nothing found almost always);
        a failure is retried at the next housekeeping, a second later, and never delays dispatching."""
        try:
            with unit_of_work():
                wait_briefly_for_row_locks()
                resumed = resume_due_tasks(utcnow())
        except SQLAlchemyError as error:
            log.warning("Scheduler %s could not resume paused tasks yet (%s)", self.name, str(error).splitlines()[0])
            return
        if resumed:
            log.info("Scheduler %s resumed paused task(s) %s", self.name, resumed)

    def wait(self, seconds: float) -> None:
        """Sleep until `seconds` pass or a task change pushes the wake-up list.

        Redis times out blocked clients on its `hz` clock (every 100 ms by default), so a BLPOP
        may return up to 100 ms late: block only until shortly before the due time, and sleep the
        last stretch in-process, where the clock is precise.
        """
        if seconds <= 0 or self.stopping:
            return
        blocking_seconds = blocking_timeout_seconds(seconds)
        if blocking_seconds is None:
            time.sleep(seconds)
            return
        try:
            if self.connection.blpop([occ.WAKEUP_KEY], timeout=blocking_seconds) is not None:
                self.planned.clear()  # a task changed: what was planned from the database is read again
        except RedisError as error:
            log.warning("Scheduler %s cannot reach Redis (%s)", self.name, error)
            time.sleep(min(seconds, ERROR_BACKOFF_SECONDS))

    def seconds_until_next_due(self, now_epoch: float) -> float:
        earliest = self.connection.zrange(occ.SCHEDULED_KEY, 0, 0, withscores=True)
        self.earliest = (earliest[0][0].decode(), earliest[0][1]) if earliest else None
        return self.seconds_until_earliest(now_epoch)

    def seconds_until_earliest(self, now_epoch: float) -> float:
        """How long until the schedule's earliest occurrence as last read (the move script returns it)."""
        if self.earliest is None:
            return TICK_SECONDS
        return min(max(self.earliest[1] - now_epoch, 0.0), TICK_SECONDS)

    def _install_stop_handlers(self) -> None:
        def stop(_signum: int, _frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def _release(self) -> None:
        try:
            with self.app.app_context():
                self.save_next_run_at()
        except SQLAlchemyError as error:
            log.warning("Scheduler %s could not save next run times on exit: %s", self.name, error)
        try:
            self.lock.release()
            self.connection.hdel(health.SCHEDULER_HEARTBEAT_KEY, self.name)
        except RedisError:
            pass

    # -- one pass -------------------------------------------------------------------------
    def dispatch_due(self, now: datetime, *, save_next_run_at: bool = True, lookahead_seconds: float = 0.0) -> int:
        """Move every due occurrence (up to a batch) onto its queue; return how many were due.

        The tasks' next_run_at (shown by the API) is saved now, or with the next housekeeping
        when `save_next_run_at` is False, so the dispatch path does not wait for the database's write lock.
        With `lookahead_seconds`, the plain occurrences due within that long are planned too (follow_plan).
        """
        due_ids, ahead = self.read_due(now, lookahead_seconds)
        if not due_ids and not ahead:
            return 0
        parsed = [(job_id, occ.parse_job_id(job_id)) for job_id in due_ids]
        ours = [due for _, due in parsed if due is not None]
        self.refuse_foreign([job_id for job_id, due in parsed if due is None])
        if not ours and not ahead:
            return len(due_ids)
        plan = self.plan(ours, now, ahead)
        self.planned.update({item.job_id: None for item, _ in ahead})
        self.planned.update({planned.move.due_id: planned for planned in plan.ahead})
        if not plan.moves:
            return len(due_ids)
        occ.save_new_jobs(self.connection, plan.new_jobs)
        moved, unsaved = occ.move_due(self.connection, plan.moves, utcnow(),  # enqueued_at: the move, not the plan
                                       lock=self.lock_guard())
        occ.save_jobs(self.connection, [plan.next_jobs[job_id] for job_id in unsaved])
        fault_point("after_move")
        due_by_task = {m.task_id: m.due_id for m in plan.moves}
        self.unsaved_next_run_at.update({task_id: next_at for task_id, next_at in plan.next_run_at.items()
                                         if due_by_task.get(task_id) in moved})
        if save_next_run_at:
            self.save_next_run_at()
        return len(due_ids)

    def read_due(self, now: datetime, lookahead_seconds: float) -> tuple[list[str], list[tuple[occ.DueJob, float]]]:
        """The ids due at `now`, and the occurrences (with their scores) due within `lookahead_seconds` after
        it that are not planned yet. A look-ahead read first empties the wake-up list: a task change from
        then on is seen by the planned moves' script, one before it by this pass's database read."""
        now_epoch = now.timestamp()
        with self.connection.pipeline(transaction=False) as pipe:
            if lookahead_seconds:
                pipe.delete(occ.WAKEUP_KEY)
            pipe.zrangebyscore(occ.SCHEDULED_KEY, "-inf", now_epoch + lookahead_seconds, start=0, num=BATCH_SIZE,
                               withscores=True)
            *woken, scheduled = pipe.execute()
        if any(woken):
            self.planned.clear()
        due_ids: list[str] = []
        ahead: list[tuple[occ.DueJob, float]] = []
        still_ahead = set()
        for raw, score in scheduled:
            job_id = raw.decode()
            if score <= now_epoch:
                due_ids.append(job_id)
            elif job_id in self.planned:
                still_ahead.add(job_id)
            elif (item := occ.parse_job_id(job_id)) is not None:
                ahead.append((item, score))
        if len(scheduled) < BATCH_SIZE:  # forget what left the schedule meanwhile (moved by a fresh pass, removed)
            self.planned = {job_id: p for job_id, p in self.planned.items() if job_id in still_ahead}
        for job_id in due_ids:
            self.planned.pop(job_id, None)
        return due_ids, ahead

    def follow_plan(self, now_epoch: float) -> bool:
        """Make the planned moves due by now; say whether that was all there is to do (else a fresh pass:
        something unplanned is due, a planned move is too late or was found stale, or a task changed)."""
        due = [p for p in self.planned.values() if p is not None and p.due_epoch <= now_epoch]
        unplanned_due = (self.earliest is not None and self.earliest[1] <= now_epoch
                         and self.planned.get(self.earliest[0]) is None)
        if not due or unplanned_due:
            return False
        for planned in due:
            del self.planned[planned.move.due_id]
        if any(now_epoch > planned.valid_until_epoch for planned in due):
            return False
        return self.move_planned(due, utcnow())

    def move_planned(self, due: Sequence[PlannedMove], now: datetime) -> bool:
        """Apply planned moves with MOVE_PLANNED_LUA; say whether all were made (else a fresh pass)."""
        lock_key, owner = self.lock_guard() or (self.lock.key, "")
        keys: list[str] = [lock_key, SCHEDULED_KEY, PENDING_KEY, QUEUES_SET_KEY, WAKEUP_KEY]
        args: list[object] = [owner, utcformat(now)]
        for planned in due:
            move = planned.move
            keys += [job_key(move.due_id), *([job_key(move.next_id)] if move.next_id else []),
                     queue_key(move.queue), inflight_key(move.task_id)]
            args += [move.due_id, move.queue, move.task_id, move.next_id, move.next_score, move.next_description,
                     planned.version, "1" if planned.solo else "0"]
        moved, unsaved, changed, stale, earliest = self.move_planned_script(keys=keys, args=args)
        if changed:
            self.planned.clear()
            return False
        moved_ids = {m.decode() for m in moved}
        next_jobs = {p.next_job.job_id: p.next_job for p in due if p.next_job is not None}
        occ.save_jobs(self.connection, [next_jobs[u.decode()] for u in unsaved])
        fault_point("after_move")
        self.unsaved_next_run_at.update({p.move.task_id: p.next_job.scheduled_for if p.next_job else None
                                         for p in due if p.move.due_id in moved_ids})
        self.earliest = (earliest[0].decode(), float(earliest[1])) if earliest else None
        return not stale

    def lock_guard(self) -> tuple[str, str] | None:
        """The lock the move scripts must find still ours: a scheduler that stalled past its lock's life
        and lost it to a standby moves nothing, not even what it read or planned before. None (no guard) only
        for passes driven without the loop (tests and tools that never took the lock)."""
        return (self.lock.key, self.lock.token) if self.active else None

    def refuse_foreign(self, job_ids: Sequence[str]) -> None:
        """Take job ids that are not occurrences out of the schedule; never run them.

        Chime puts only occurrences there: anything else was put by something other than Chime, or is
        an earlier Chime's rq-scheduler entry of a periodic job (scheduler.periodic pushes those now).
        Nothing is read from such a job, so nothing in it is ever imported or called.
        """
        if any(job_id in LEGACY_PERIODIC_JOB_IDS for job_id in job_ids):
            periodic.remove_legacy_entries(self.connection)
        for job_id in job_ids:
            if job_id not in LEGACY_PERIODIC_JOB_IDS:
                log.warning("Refused %s: it is in the schedule but Chime did not put it there; removed", job_id)
                self.connection.zrem(occ.SCHEDULED_KEY, job_id)

    def plan(self, due: Sequence[occ.DueJob], now: datetime,
             ahead: Sequence[tuple[occ.DueJob, float]] = ()) -> Plan:
        """Decide, per due occurrence, what to push and what comes next; record skips. Plan the plain moves
        of the occurrences `ahead` (due a moment later, with their scores) in the same reads."""
        task_ids = sorted({d.task_id for d in due} | {d.task_id for d, _ in ahead})
        begin_read_only()
        tasks = {row.id: row for row in db.session.execute(select(*PLAN_COLUMNS).where(Task.id.in_(task_ids)))}
        recorded = self.recorded_since([*due, *(d for d, _ in ahead)])
        db.session.rollback()  # end the read-only transaction before writing anything
        pending = {i: p.decode() for i, p in zip(task_ids, self.connection.hmget(occ.PENDING_KEY, task_ids)) if p}
        busy = occ.busy_task_ids(self.connection, [t.id for t in tasks.values() if t.overlap == Overlap.SKIP.value])
        plan = Plan()
        for item in due:
            task = tasks.get(item.task_id)
            if item.attempt == 1 and not item.extra and pending.get(item.task_id) != item.job_id:
                log.warning("Dropping %s: it is not the pending occurrence of task %s", item.job_id, item.task_id)
                task = None
            self.plan_one(plan, item, task, item.task_id in busy, now, recorded.get(item.task_id))
        if plan.writes:
            self.write(plan.writes)
        plan.ahead = [planned for item, score in ahead if (planned := self.plan_ahead(
            item, score, tasks.get(item.task_id), pending.get(item.task_id) == item.job_id and item.task_id not in busy,
            recorded.get(item.task_id))) is not None]
        return plan

    def plan_ahead(self, item: occ.DueJob, due_epoch: float, task: TaskRow | None, pending_and_idle: bool,
                   recorded_at: datetime | None) -> PlannedMove | None:
        """The move of an occurrence due a moment later if it is plain -- the task's pending occurrence, on
        time, nothing of it recorded nor in flight, pushed itself -- decided as at its due instant; else None."""
        if (task is None or not task.enabled or item.attempt > 1 or item.extra or not pending_and_idle
                or (recorded_at is not None and recorded_at >= item.scheduled_for)
                or due_epoch != occ.score_of(item.scheduled_for)):
            return None
        scratch = Plan()
        self.plan_one(scratch, item, task, False, item.scheduled_for)
        if scratch.writes or scratch.new_jobs or [m.push_id for m in scratch.moves] != [item.job_id]:
            return None
        move = scratch.moves[0]
        next_job = scratch.next_jobs.get(move.next_id)
        valid_until = due_epoch + min(PLANNED_MAX_LATE_SECONDS, task.misfire_grace_seconds)
        if next_job is not None:  # late past the next fire time, the occurrence would count as missed
            valid_until = min(valid_until, occ.score_of(next_job.scheduled_for) - 1e-6)
        return PlannedMove(move, due_epoch, valid_until, task.version, task.overlap == Overlap.SKIP.value, next_job)

    def write(self, writes: Sequence[tuple[int, Callable[[Task], object]]]) -> None:
        """Record the plan's skips and notifications, in one transaction, and count the skips."""
        wait_briefly_for_row_locks()
        ids = {task_id for task_id, _ in writes}
        tasks = {t.id: t for t in db.session.scalars(select(Task).where(Task.id.in_(ids)))}
        written = [write(tasks[task_id]) for task_id, write in sorted(writes, key=lambda w: w[0]) if task_id in tasks]
        skipped = [e.task_id for e in written if isinstance(e, Execution)]  # read before the commit expires them
        db.session.commit()
        try:
            metrics.record_skipped(self.connection, skipped)
        except RedisError as error:
            log.warning("Metrics of %s skipped occurrence(s) not recorded: %s", len(skipped), error)

    @staticmethod
    def recorded_since(due: Sequence[occ.DueJob]) -> dict[int, datetime]:
        """Each task's latest recorded occurrence at or after its due one (a run or a SKIPPED record).

        A scheduler that died after recording a skip and before its move leaves the occurrence
        pending; the next pass must not count it again.
        """
        scheduled = [d for d in due if d.attempt == 1 and not d.extra]
        if not scheduled:
            return {}
        return latest_recorded_occurrences({d.task_id for d in scheduled}, min(d.scheduled_for for d in scheduled))

    def plan_one(self, plan: Plan, item: occ.DueJob, task: TaskRow | None, busy: bool, now: datetime,
                 recorded_at: datetime | None = None) -> None:
        if task is None or not task.enabled:
            plan.moves.append(occ.Move(item.job_id, "", "default", item.task_id))
            return
        if item.attempt > 1 or item.extra:
            plan.moves.append(occ.Move(item.job_id, item.job_id, task.queue, task.id))
            return
        due_at = item.scheduled_for
        if task.schedule_type == ScheduleType.ONE_TIME.value and task.run_at != due_at:
            # Made from an earlier run_at (an edit that could not reach Redis): the task's run_at counts.
            if task.run_at > now:
                self.add_move(plan, item, task, "", occ.Occurrence.of(task, task.run_at))
                return
            due_at = task.run_at
        if recorded_at is not None and recorded_at >= due_at:
            due_at = next_fire_at(schedule_of(task), recorded_at)
            if due_at is None or due_at > now:  # every occurrence due is already recorded
                self.plan_next_only(plan, item, task, due_at)
                return
        count, latest, next_at = catch_up(schedule_of(task), due_at, now)
        decision = decide_misfire(
            schedule_type=task.schedule_type, scheduled_at=due_at, latest_due_at=latest,
            missed_count=count, now=now, grace_seconds=task.misfire_grace_seconds,
        )
        push_id = self.push_for(plan, task, item, decision, busy)
        self.add_move(plan, item, task, push_id, self.next_occurrence(task, next_at))

    def plan_next_only(self, plan: Plan, item: occ.DueJob, task: TaskRow, next_at: datetime | None) -> None:
        """Push nothing for a due occurrence that is already recorded; put the next one in place."""
        self.add_move(plan, item, task, "", self.next_occurrence(task, next_at))

    @staticmethod
    def add_move(plan: Plan, item: occ.DueJob, task: TaskRow, push_id: str,
                 next_occurrence: occ.Occurrence | None) -> None:
        """Plan the move of a due occurrence: push `push_id` ('' for nothing) and put the next one in place."""
        plan.next_run_at[task.id] = next_occurrence.scheduled_for if next_occurrence else None
        if next_occurrence is None:
            plan.moves.append(occ.Move(item.job_id, push_id, task.queue, task.id))
            return
        plan.next_jobs[next_occurrence.job_id] = next_occurrence
        plan.moves.append(occ.Move(item.job_id, push_id, task.queue, task.id, next_occurrence.job_id,
                                   occ.score_of(next_occurrence.scheduled_for),
                                   occ.describe(task.id, next_occurrence.trigger, next_occurrence.scheduled_for, 1)))

    def push_for(self, plan: Plan, task: TaskRow, item: occ.DueJob, decision: Any, busy: bool) -> str:
        """Return the job id to push for a due scheduled occurrence ('' when it is recorded SKIPPED)."""
        if decision.action == SKIP_MISSED:
            skip = lifecycle.missed_skip(decision.missed_count, decision.late_seconds, task.misfire_grace_seconds)
            plan.writes.append((task.id, partial(record_skip, scheduled_for=decision.scheduled_for, skip=skip)))
            return ""
        if busy:
            plan.writes.append((task.id, partial(record_skip, scheduled_for=decision.scheduled_for,
                                                 skip=lifecycle.overlap_skip(decision.missed_count))))
            return ""
        recovery = decision.recovery and not self.defined_after(task, item.scheduled_for)
        if decision.scheduled_for == item.scheduled_for and not recovery:
            return item.job_id
        replacement = occ.Occurrence.of(task, decision.scheduled_for,
                                        trigger=(Trigger.RECOVERY if recovery else Trigger.SCHEDULE).value)
        plan.new_jobs.append(replacement)
        if recovery:
            plan.writes.append((task.id, partial(notify, notice=lifecycle.catch_up_notice(
                task.name, decision.scheduled_for, decision.missed_count, decision.late_seconds, task.timezone))))
        return replacement.job_id

    @staticmethod
    def defined_after(task: TaskRow, scheduled_for: datetime) -> bool:
        """A ONE_TIME task created with a past run_at is running on time, not recovering."""
        return task.schedule_type == ScheduleType.ONE_TIME.value and task.updated_at >= scheduled_for

    @staticmethod
    def next_occurrence(task: TaskRow, next_at: datetime | None) -> occ.Occurrence | None:
        if next_at is None or task.schedule_type == ScheduleType.ONE_TIME.value:
            return None
        return occ.Occurrence.of(task, next_at)

    def save_next_run_at_quietly(self) -> None:
        """save_next_run_at, whose failure (a row a paused worker holds) never delays dispatching."""
        try:
            self.save_next_run_at()
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("Scheduler %s could not save next run times yet (%s)", self.name, str(error).splitlines()[0])

    def save_next_run_at(self) -> None:
        """Write the next_run_at of the tasks whose occurrence was moved since the last save."""
        if not self.unsaved_next_run_at:
            return
        wait_briefly_for_row_locks()
        save_next_run_times(self.unsaved_next_run_at)
        db.session.commit()
        self.unsaved_next_run_at.clear()


def blocking_timeout_seconds(wait_seconds: float) -> float | None:
    """How long to block on Redis before sleeping the last stretch in-process; None: just sleep.

    Never below MIN_BLOCKING_SECONDS, which Redis of every version reads as a real timeout.
    """
    blocking_seconds = wait_seconds - PRECISE_SLEEP_SECONDS
    return blocking_seconds if blocking_seconds >= MIN_BLOCKING_SECONDS else None


FAULT_INJECT_ENV = "CHIME_FAULT_INJECT"


def fault_point(name: str) -> None:
    """Die here, abruptly, when the fault-injection tests ask for it (CHIME_FAULT_INJECT=<name>)."""
    if os.environ.get(FAULT_INJECT_ENV) == name:
        log.error("Fault injected at %s: exiting abruptly", name)
        os._exit(17)


MIN_REDIS_VERSION = (6, 2)  # MOVE_DUE_LUA uses COPY


def redis_version_supported(version: str) -> bool:
    """Tell whether a redis_version string (INFO server) is new enough for the move script."""
    parts = version.split(".")
    try:
        return tuple(int(p) for p in parts[:2]) >= MIN_REDIS_VERSION
    except ValueError:
        return True  # an unusual version string: let the server answer for itself


def check_redis_version(connection: Redis) -> None:
    """Refuse to start against a Redis too old for the move script (an unreachable one is waited for)."""
    try:
        version = str(connection.info("server").get("redis_version", ""))
    except RedisError:
        return
    if version and not redis_version_supported(version):
        raise SystemExit(f"Chime's scheduler needs Redis 6.2 or newer; the server runs {version}.")


def main() -> None:
    """Entry point of `python -m scheduler` (the Procfile's scheduler)."""
    from chime.app import create_app, freeze_start_up_objects

    app = create_app()
    check_redis_version(app.extensions["redis"])
    scheduler = ChimeScheduler(app.extensions["redis"], app)
    freeze_start_up_objects()
    scheduler.run()
