"""Occurrences in Redis: deterministic RQ job ids, the pending index, and atomic moves.

Redis holds only derived state that the reconciler can rebuild from the database:
- rq-scheduler's sorted set (``SCHEDULED_KEY``): job id -> due epoch seconds (float);
- ``PENDING_KEY``: task id -> job id of the task's one pending scheduled occurrence;
- ``INFLIGHT_KEY``: per task, job ids moved onto a queue and not yet finished;
- ``WAKEUP_KEY``: a list the scheduler blocks on, pushed when a task changes.

Each occurrence's job hash also holds ``VERSION_FIELD``: the version of the task definition it was
made from, so the reconciler can tell a stale occurrence without unpickling anything.

Every change that must not be half-done is one Lua script (atomic in Redis).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import utcformat, utcparse
from rq_scheduler import Scheduler

SCHEDULED_KEY = Scheduler.scheduled_jobs_key
PENDING_KEY = "chime:pending"
INFLIGHT_KEY = "chime:inflight:{task_id}"
WAKEUP_KEY = "chime:scheduler:wakeup"
ALIVE_KEY = "chime:execution:{execution_id}:alive"
ALIVE_TTL_SECONDS = 10
ALIVE_BEAT_SECONDS = 2
QUEUES_SET_KEY = Queue.redis_queues_keys
QUEUE_KEY = Queue.redis_queue_namespace_prefix + "{name}"
JOB_KEY = Job.redis_job_namespace_prefix + "{job_id}"
EXECUTE_FUNC = "scheduler.executor.execute"
JOB_TIMEOUT_MARGIN_SECONDS = 60
RESULT_TTL_SECONDS = 600
FAILURE_TTL_SECONDS = 7 * 24 * 3600
VERSION_FIELD = "chime_version"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Occurrence:
    """One attempt of one occurrence of a task, as an RQ job."""

    task_id: int
    scheduled_for: datetime
    attempt: int
    trigger: str
    version: int
    queue: str
    timeout_seconds: int
    task_created_at: datetime | None = None  # the task's identity: ids of deleted tasks may be reused

    @classmethod
    def of(cls, task: Any, scheduled_for: datetime, attempt: int = 1, trigger: str = "SCHEDULE") -> Occurrence:
        """The occurrence of a task (a Task or a row with the same columns) at `scheduled_for`."""
        return cls(task_id=task.id, scheduled_for=scheduled_for, attempt=attempt, trigger=trigger,
                   version=task.version, queue=task.queue, timeout_seconds=task.timeout_seconds,
                   task_created_at=task.created_at)

    @property
    def job_id(self) -> str:
        return occurrence_job_id(self.task_id, self.scheduled_for, self.attempt, self.trigger)


def epoch_us(instant: datetime) -> int:
    """Return whole microseconds since the epoch of an aware instant (exact, unlike a float)."""
    return (instant - EPOCH) // ONE_MICROSECOND


def from_epoch_us(value: int) -> datetime:
    """Return the aware UTC instant `value` microseconds after the epoch."""
    return EPOCH + value * ONE_MICROSECOND


def occurrence_job_id(task_id: int, scheduled_for: datetime, attempt: int, trigger: str) -> str:
    """Derive the RQ job id: scheduling the same occurrence twice yields the same id."""
    suffix = "-m" if trigger == "MANUAL" else ""
    return f"chime-{task_id}-{epoch_us(scheduled_for)}-{attempt}{suffix}"


@dataclass(frozen=True)
class DueJob:
    """An occurrence job id, decoded. `extra` marks a manual run (-m) or a redelivery (-r)."""

    job_id: str
    task_id: int
    scheduled_for: datetime
    attempt: int
    manual: bool
    extra: bool


def parse_job_id(job_id: str) -> DueJob | None:
    """Decode an occurrence job id (chime-<task>-<epoch µs>-<attempt>[-m][-r]); None for foreign jobs.

    -m marks a manual run, -r a redelivery of the same occurrence (redeliver_later).
    """
    parts = job_id.split("-")
    if len(parts) < 4 or parts[0] != "chime" or not all(p.isdigit() for p in parts[1:4]):
        return None
    suffix = parts[4:]
    if suffix not in ([], ["m"], ["r"], ["m", "r"]):
        return None
    scheduled_for = from_epoch_us(int(parts[2]))
    return DueJob(job_id, int(parts[1]), scheduled_for, int(parts[3]), manual="m" in suffix, extra=bool(suffix))


def redeliver_later(connection: Redis, job: Job, due_at: datetime) -> str:
    """Schedule a copy of a job (id suffixed -r) for `due_at`: same occurrence, delivered again."""
    copy_id = job.id if job.id.endswith("-r") else job.id + "-r"
    copy = Job.create(job.func_name, kwargs=job.kwargs, connection=connection, id=copy_id, timeout=job.timeout,
                      result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS, description=job.description,
                      status=JobStatus.SCHEDULED, meta=job.meta)
    copy.origin = job.origin
    with connection.pipeline() as pipe:
        copy.save(pipeline=pipe)
        pipe.zadd(SCHEDULED_KEY, {copy_id: score_of(due_at)})
        pipe.execute()
    return copy_id


def build_job(connection: Redis, occurrence: Occurrence) -> Job:
    """Create (without saving) the RQ job that runs one occurrence."""
    job = Job.create(
        EXECUTE_FUNC,
        # The scheduled time and the attempt are in the job id (the executor reads them there), so the
        # payload is the same for every scheduled occurrence of a task and MOVE_DUE_LUA can copy it.
        kwargs=job_kwargs(occurrence),
        connection=connection,
        id=occurrence.job_id,
        timeout=occurrence.timeout_seconds + JOB_TIMEOUT_MARGIN_SECONDS,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=describe(occurrence.task_id, occurrence.trigger, occurrence.scheduled_for, occurrence.attempt),
        status=JobStatus.SCHEDULED,
        meta={"task_id": occurrence.task_id, "version": occurrence.version, "trigger": occurrence.trigger},
    )
    job.origin = occurrence.queue
    return job


def job_kwargs(occurrence: Occurrence) -> dict[str, Any]:
    """The executor's arguments: the task, how it was triggered, and which task (by creation time) it was."""
    kwargs: dict[str, Any] = {"task_id": occurrence.task_id, "trigger": occurrence.trigger,
                              "version": occurrence.version}
    if occurrence.task_created_at is not None:
        kwargs["task_created_at"] = occurrence.task_created_at.isoformat()
    return kwargs


def job_fields(connection: Redis, occurrence: Occurrence) -> list[Any]:
    """The job hash of an occurrence as a flat field/value list (for HSET inside a script)."""
    mapping = build_job(connection, occurrence).to_dict()
    mapping[VERSION_FIELD] = occurrence.version
    return [item for pair in mapping.items() for item in pair]


def describe(task_id: int, trigger: str, scheduled_for: datetime, attempt: int) -> str:
    """The RQ job description of an occurrence (shown by RQ's tools)."""
    return f"task {task_id} {trigger.lower()} {scheduled_for.isoformat()} attempt {attempt}"


def save_jobs(connection: Redis, occurrences: Iterable[Occurrence]) -> None:
    """Write the job hashes of several occurrences in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for occurrence in occurrences:
            job = build_job(connection, occurrence)
            job.save(pipeline=pipe)
            pipe.hset(job.key, VERSION_FIELD, occurrence.version)
        pipe.execute()


# Write a job hash unless that occurrence is already handled (queued, running or finished): a scheduler
# that lost its lock mid-pass must not overwrite the job the other one has already queued.
# KEYS: job hash. ARGV: the job hash as field/value pairs.
SAVE_UNLESS_HANDLED_LUA = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'started' or status == 'finished' or status == 'deferred' then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


def save_new_jobs(connection: Redis, occurrences: Sequence[Occurrence]) -> None:
    """save_jobs for occurrences another scheduler may have pushed already: never overwrite a handled one."""
    if not occurrences:
        return
    script = connection.register_script(SAVE_UNLESS_HANDLED_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for occurrence in occurrences:
            script(keys=[JOB_KEY.format(job_id=occurrence.job_id)], args=job_fields(connection, occurrence),
                   client=pipe)
        pipe.execute()


def score_of(instant: datetime) -> float:
    """Return the sorted-set score in epoch seconds, as rq-scheduler uses."""
    return epoch_us(instant) / 1_000_000


# Replace the pending occurrence of one task (or remove it when ARGV[2] is empty).
REPLACE_PENDING_LUA = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
local dropped = ''
if old and old ~= ARGV[2] then
  if redis.call('ZREM', KEYS[1], old) == 1 then
    redis.call('DEL', ARGV[4] .. old)
    dropped = old
  end
end
if ARGV[2] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 0)
return dropped
"""

# Move due occurrences onto their queues and put each task's next one in place, atomically.
# ARGV: now_text, then groups of 7: due_id, push_id, queue, task_id, next_id, next_score, next_description.
# The next occurrence's job hash is a copy of the due one (same payload: the occurrence is in the id)
# with its own created_at and description; next ids whose due hash was missing are returned so the
# caller writes their hash in full.
MOVE_DUE_LUA = """
local moved, unsaved = {}, {}
local now_text = ARGV[1]
for i = 2, #ARGV, 7 do
  local due, push, queue, task, nxt, score, description =
    ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5], ARGV[i+6]
  if redis.call('ZREM', KEYS[1], due) == 1 then
    if redis.call('HGET', KEYS[2], task) == due then
      if nxt ~= '' then
        if redis.call('COPY', 'rq:job:' .. due, 'rq:job:' .. nxt, 'REPLACE') == 1 then
          redis.call('HSET', 'rq:job:' .. nxt, 'created_at', now_text, 'description', description,
                     'status', 'scheduled')
        else
          unsaved[#unsaved + 1] = nxt
        end
        redis.call('ZADD', KEYS[1], score, nxt)
        redis.call('HSET', KEYS[2], task, nxt)
      else
        redis.call('HDEL', KEYS[2], task)
      end
    end
    if push ~= '' then
      local queue_key = 'rq:queue:' .. queue
      redis.call('SADD', KEYS[3], queue_key)
      redis.call('HSET', 'rq:job:' .. push, 'status', 'queued', 'enqueued_at', now_text, 'origin', queue)
      redis.call('RPUSH', queue_key, push)
      redis.call('ZADD', 'chime:inflight:' .. task, redis.call('TIME')[1], push)
    end
    if push ~= due then
      redis.call('DEL', 'rq:job:' .. due)
    end
    moved[#moved + 1] = due
  elseif push ~= '' and push ~= due and redis.call('HGET', 'rq:job:' .. push, 'status') == 'scheduled' then
    redis.call('DEL', 'rq:job:' .. push)
  end
end
return {moved, unsaved}
"""

# Write and push one job onto its queue now (run now, recovery) and mark it in flight -- unless that
# occurrence is already handled: queued, running or finished (its hash says so; an in-flight marker
# alone is not enough, a dead worker leaves it behind), or scheduled.
# KEYS: queue, queues set, the task's in-flight set, the job hash, the scheduled set.
# ARGV: job id, now text, queue name, then the job hash as field/value pairs.
PUSH_NOW_LUA = """
local status = redis.call('HGET', KEYS[4], 'status')
if status == 'queued' or status == 'started' or status == 'finished' or status == 'deferred'
    or redis.call('ZSCORE', KEYS[5], ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], unpack(ARGV, 4))
redis.call('HSET', KEYS[4], 'status', 'queued', 'enqueued_at', ARGV[2], 'origin', ARGV[3])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('TIME')[1], ARGV[1])
return 1
"""

# The reconciler's repair of one task's pending occurrence, decided on what Redis holds *now*, so it
# never touches an occurrence the scheduler has moved or is moving (a script runs alone):
# - 'lost' fills a gap: nothing happens if the task has a live pending occurrence ('live');
# - 'stale' replaces the pending occurrence the reconciler saw, only if it is still the one
#   pending and still scheduled ('changed' otherwise);
# - the new occurrence is written only if it is not already handled: queued, running or finished,
#   as its hash says ('handled').
# KEYS: scheduled set, pending index, wake-up list, new job hash, old job hash.
# ARGV: task id, mode, expected (old) id, new id ('' removes the pending occurrence), new score,
#       then the new job hash as field/value pairs.
REPAIR_PENDING_LUA = """
local task, mode, expected, new = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local current = redis.call('HGET', KEYS[2], task)
if mode == 'lost' then
  if current and redis.call('ZSCORE', KEYS[1], current) then return 'live' end
elseif current ~= expected or not redis.call('ZSCORE', KEYS[1], expected) then
  return 'changed'
end
if new ~= '' then
  local status = redis.call('HGET', KEYS[4], 'status')
  if status == 'queued' or status == 'started' or status == 'finished' or status == 'deferred' then
    return 'handled'
  end
end
if mode == 'stale' and expected ~= new then
  redis.call('ZREM', KEYS[1], expected)
  redis.call('DEL', KEYS[5])
end
if new == '' then
  redis.call('HDEL', KEYS[2], task)
  return 'removed'
end
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], unpack(ARGV, 6))
redis.call('ZADD', KEYS[1], ARGV[5], new)
redis.call('HSET', KEYS[2], task, new)
redis.call('LPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], 0, 0)
return 'ok'
"""


# The task ids (ARGV) that have a job still queued, started, scheduled or deferred: one round trip
# for a whole dispatch batch instead of two commands per task.
BUSY_TASKS_LUA = """
local busy = {}
for i = 1, #ARGV do
  for _, job in ipairs(redis.call('ZRANGE', 'chime:inflight:' .. ARGV[i], 0, -1)) do
    local status = redis.call('HGET', 'rq:job:' .. job, 'status')
    if status == 'queued' or status == 'started' or status == 'scheduled' or status == 'deferred' then
      busy[#busy + 1] = ARGV[i]
      break
    end
  end
end
return busy
"""


# Remove one scheduled occurrence the reconciler found orphaned, if it still is: still in the sorted
# set (the scheduler has not moved it meanwhile) and, unless the task is gone, still not the task's
# pending occurrence. Its hash goes only with it.
# KEYS: scheduled set, pending index, job hash. ARGV: job id, task id, 'gone' or 'not-pending'.
REMOVE_ORPHAN_LUA = """
if ARGV[3] ~= 'gone' and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then return 0 end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return 1
end
return 0
"""

# Forget the pending occurrence of a deleted or disabled task, if it is still the one seen.
# KEYS: pending index. ARGV: task id, the job id seen.
FORGET_PENDING_LUA = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


# Drop in-flight markers that no longer stand for a queued or running job: the job's hash is gone or
# says it ended, or the database already holds its outcome (ARGV flag '1'). A worker killed after
# recording a run, before it cleared its marker, leaves one behind; left alone it would make every
# later occurrence of the task look like an overlap.
# KEYS: pairs of (in-flight set, job hash). ARGV: per pair, the job id and the database's flag.
CLEAR_STALE_INFLIGHT_LUA = """
local cleared = 0
for i = 1, #KEYS, 2 do
  local job, final = ARGV[i], ARGV[i + 1]
  local status = redis.call('HGET', KEYS[i + 1], 'status')
  local live = status == 'queued' or status == 'started' or status == 'scheduled' or status == 'deferred'
  if final == '1' or not live then
    cleared = cleared + redis.call('ZREM', KEYS[i], job)
  end
end
return cleared
"""


@dataclass(frozen=True)
class Move:
    """What to do with one due job id: push `push_id` (may be ''), then schedule `next`."""

    due_id: str
    push_id: str
    queue: str
    task_id: int
    next_id: str = ""
    next_score: float = 0.0
    next_description: str = ""


def replace_pending(connection: Redis, task_id: int, occurrence: Occurrence | None) -> str | None:
    """Make `occurrence` the task's one pending occurrence (None removes it); wake the scheduler.

    Return the id of the occurrence it took out of the schedule (not yet dispatched), if any.
    """
    if occurrence is not None:
        save_jobs(connection, [occurrence])
    script = connection.register_script(REPLACE_PENDING_LUA)
    new_id = occurrence.job_id if occurrence else ""
    score = score_of(occurrence.scheduled_for) if occurrence else 0
    old = script(
        keys=[SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY],
        args=[task_id, new_id, score, Job.redis_job_namespace_prefix],
    )
    return old.decode() if isinstance(old, bytes) else old


def remove_orphans(connection: Redis, orphans: Sequence[tuple[str, int, bool]]) -> int:
    """Remove (job id, task id, task gone) scheduled orphans that still are orphans; return how many went."""
    remove = connection.register_script(REMOVE_ORPHAN_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, task_id, gone in orphans:
            remove(keys=[SCHEDULED_KEY, PENDING_KEY, JOB_KEY.format(job_id=job_id)],
                   args=[job_id, task_id, "gone" if gone else "not-pending"], client=pipe)
        return sum(pipe.execute())


# Take a queued occurrence of a deleted or disabled task off its queue, with its hash and its in-flight
# marker (left behind, a queued hash would make the task look busy forever).
# KEYS: queue, job hash, the task's in-flight set. ARGV: job id.
REMOVE_QUEUED_ORPHAN_LUA = """
if redis.call('LREM', KEYS[1], 0, ARGV[1]) > 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""


def remove_queued_orphans(connection: Redis, orphans: Sequence[tuple[str, str, int]]) -> int:
    """Remove (job id, queue, task id) queued orphans that are still queued; return how many went."""
    remove = connection.register_script(REMOVE_QUEUED_ORPHAN_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, queue, task_id in orphans:
            remove(keys=[QUEUE_KEY.format(name=queue), JOB_KEY.format(job_id=job_id),
                         INFLIGHT_KEY.format(task_id=task_id)], args=[job_id], client=pipe)
        return sum(pipe.execute())


def forget_pending(connection: Redis, seen: Sequence[tuple[int, str]]) -> None:
    """Drop the pending entries of deleted or disabled tasks, each only if it is still the one seen."""
    forget = connection.register_script(FORGET_PENDING_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for task_id, job_id in seen:
            forget(keys=[PENDING_KEY], args=[task_id, job_id], client=pipe)
        pipe.execute()


def move_due(connection: Redis, moves: Sequence[Move], now: datetime) -> tuple[set[str], list[str]]:
    """Apply moves atomically; return the due ids that were still scheduled (and so moved), and the
    next ids whose job hash could not be copied from their due job (the caller must save them)."""
    if not moves:
        return set(), []
    args: list[object] = [utcformat(now)]
    for move in moves:
        args += [move.due_id, move.push_id, move.queue, move.task_id, move.next_id, move.next_score,
                 move.next_description]
    script = connection.register_script(MOVE_DUE_LUA)
    moved, unsaved = script(keys=[SCHEDULED_KEY, PENDING_KEY, QUEUES_SET_KEY], args=args)
    return {_text(m) for m in moved}, [_text(u) for u in unsaved]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def push_now(connection: Redis, occurrence: Occurrence, now: datetime) -> str | None:
    """Write and enqueue one occurrence at once; return its job id, or None if it was already handled."""
    script = connection.register_script(PUSH_NOW_LUA)
    pushed = script(
        keys=[QUEUE_KEY.format(name=occurrence.queue), QUEUES_SET_KEY,
              INFLIGHT_KEY.format(task_id=occurrence.task_id), JOB_KEY.format(job_id=occurrence.job_id),
              SCHEDULED_KEY],
        args=[occurrence.job_id, utcformat(now), occurrence.queue, *job_fields(connection, occurrence)],
    )
    return occurrence.job_id if pushed else None


@dataclass(frozen=True)
class Repair:
    """The reconciler's repair of one task's pending occurrence (see REPAIR_PENDING_LUA)."""

    task_id: int
    occurrence: Occurrence | None
    expected_id: str = ""  # the pending occurrence the reconciler saw
    stale: bool = False    # replace expected_id (stale) rather than fill a gap (lost)


def repair_pending_many(connection: Redis, repairs: Sequence[Repair], batch_size: int = 2000) -> list[str]:
    """Apply repairs in pipelined batches; return each one's outcome (ok, removed, live, changed, handled)."""
    script = connection.register_script(REPAIR_PENDING_LUA)
    outcomes: list[str] = []
    for start in range(0, len(repairs), batch_size):
        with connection.pipeline(transaction=False) as pipe:
            for repair in repairs[start:start + batch_size]:
                _repair(script, pipe, connection, repair)
            outcomes += [_text(o) for o in pipe.execute()]
    return outcomes


def _repair(script: Any, pipe: Any, connection: Redis, repair: Repair) -> None:
    new = repair.occurrence
    new_id = new.job_id if new else ""
    script(keys=[SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY, JOB_KEY.format(job_id=new_id),
                 JOB_KEY.format(job_id=repair.expected_id)],
           args=[repair.task_id, "stale" if repair.stale else "lost", repair.expected_id, new_id,
                 score_of(new.scheduled_for) if new else 0, *(job_fields(connection, new) if new else [])],
           client=pipe)


def schedule_at(connection: Redis, occurrence: Occurrence, due_at: datetime) -> str:
    """Put an extra occurrence (a retry) into the sorted set without touching the pending index."""
    save_jobs(connection, [occurrence])
    with connection.pipeline() as pipe:
        pipe.zadd(SCHEDULED_KEY, {occurrence.job_id: score_of(due_at)})
        pipe.lpush(WAKEUP_KEY, "1")
        pipe.ltrim(WAKEUP_KEY, 0, 0)
        pipe.execute()
    return occurrence.job_id


def finish_inflight(connection: Redis, task_id: int, job_id: str) -> None:
    """Forget that a job is in flight (the executor is done with it)."""
    connection.zrem(INFLIGHT_KEY.format(task_id=task_id), job_id)


def inflight_markers(connection: Redis) -> list[tuple[int, str]]:
    """Every (task id, job id) marked in flight."""
    keys = [key.decode() for key in connection.scan_iter(match=INFLIGHT_KEY.format(task_id="*"), count=1000)]
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zrange(key, 0, -1)
        members = pipe.execute()
    return [(int(key.rsplit(":", 1)[1]), job.decode()) for key, jobs in zip(keys, members) for job in jobs
            if key.rsplit(":", 1)[1].isdigit()]


def clear_stale_inflight(connection: Redis, markers: Sequence[tuple[int, str, bool]]) -> int:
    """Clear (task id, job id, outcome recorded) markers that stand for no live job; return how many."""
    if not markers:
        return 0
    keys: list[str] = []
    args: list[object] = []
    for task_id, job_id, recorded in markers:
        keys += [INFLIGHT_KEY.format(task_id=task_id), JOB_KEY.format(job_id=job_id)]
        args += [job_id, "1" if recorded else "0"]
    return int(connection.register_script(CLEAR_STALE_INFLIGHT_LUA)(keys=keys, args=args))


# Put back on its queue a job a worker took (status 'started') and died with before claiming it, if it
# is still so: same status and start time as the caller saw. Its StartedJobRegistry entry goes, so
# RQ's clean-up does not fail it later. (A worker that was only frozen finds its claim taken: the
# unique constraint makes the second delivery a no-op.)
# KEYS: job hash, queues set. ARGV: job id, the started_at seen, now text.
REQUEUE_ABANDONED_LUA = """
if redis.call('HGET', KEYS[1], 'status') ~= 'started' or redis.call('HGET', KEYS[1], 'started_at') ~= ARGV[2] then
  return 0
end
local origin = redis.call('HGET', KEYS[1], 'origin')
if not origin then return 0 end
local wip = 'rq:wip:' .. origin
for _, member in ipairs(redis.call('ZRANGE', wip, 0, -1)) do
  if string.sub(member, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('ZREM', wip, member) end
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'enqueued_at', ARGV[3])
redis.call('SADD', KEYS[2], 'rq:queue:' .. origin)
redis.call('RPUSH', 'rq:queue:' .. origin, ARGV[1])
return 1
"""


def requeue_abandoned(connection: Redis, job_ids: Sequence[str], started_before: datetime, now: datetime) -> int:
    """Requeue the jobs among `job_ids` (none of them claimed) that a worker took before `started_before`."""
    if not job_ids:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(JOB_KEY.format(job_id=job_id), "status", "started_at")
        seen = pipe.execute()
    abandoned = [(job_id, started.decode()) for job_id, (status, started) in zip(job_ids, seen)
                 if status == b"started" and started and utcparse(started.decode()) < started_before]
    script = connection.register_script(REQUEUE_ABANDONED_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, started in abandoned:
            script(keys=[JOB_KEY.format(job_id=job_id), QUEUES_SET_KEY], args=[job_id, started, utcformat(now)],
                   client=pipe)
        return sum(pipe.execute())


def busy_task_ids(connection: Redis, task_ids: Sequence[int]) -> set[int]:
    """Return the ids among `task_ids` of tasks with a job still queued or running."""
    if not task_ids:
        return set()
    return {int(t) for t in connection.register_script(BUSY_TASKS_LUA)(args=list(task_ids))}


def pending_job_id(connection: Redis, task_id: int) -> str | None:
    """Return the job id of the task's pending occurrence, if any."""
    value = connection.hget(PENDING_KEY, task_id)
    return value.decode() if value else None
