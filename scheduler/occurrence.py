"""Occurrences in Redis: deterministic RQ job ids, the pending index, and atomic moves.

Redis holds only derived state that the reconciler can rebuild from the database:
- rq-scheduler's sorted set (``SCHEDULED_KEY``): job id -> due epoch seconds (float);
- ``PENDING_KEY``: task id -> job id of the task's one pending scheduled occurrence;
- ``INFLIGHT_KEY``: per task, job ids moved onto a queue and not yet finished;
- ``WAKEUP_KEY``: a list the scheduler blocks on, pushed when a task changes.

Every change that must not be half-done is one Lua script (atomic in Redis).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from redis import Redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.utils import utcformat
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
EXECUTE_FUNC = "jobs.executor.execute"
JOB_TIMEOUT_MARGIN_SECONDS = 60
RESULT_TTL_SECONDS = 600
FAILURE_TTL_SECONDS = 7 * 24 * 3600
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
    """Decode an occurrence job id (chime-<task>-<epoch µs>-<attempt>[-m|-r]); None for foreign jobs."""
    parts = job_id.split("-")
    if len(parts) not in (4, 5) or parts[0] != "chime" or not all(p.isdigit() for p in parts[1:4]):
        return None
    if len(parts) == 5 and parts[4] not in ("m", "r"):
        return None
    scheduled_for = from_epoch_us(int(parts[2]))
    return DueJob(job_id, int(parts[1]), scheduled_for, int(parts[3]), manual=parts[4:] == ["m"],
                  extra=len(parts) == 5)


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
        kwargs={
            "task_id": occurrence.task_id,
            "scheduled_for": occurrence.scheduled_for.isoformat(),
            "attempt": occurrence.attempt,
            "trigger": occurrence.trigger,
            "version": occurrence.version,
        },
        connection=connection,
        id=occurrence.job_id,
        timeout=occurrence.timeout_seconds + JOB_TIMEOUT_MARGIN_SECONDS,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"task {occurrence.task_id} {occurrence.trigger.lower()} "
        f"{occurrence.scheduled_for.isoformat()} attempt {occurrence.attempt}",
        status=JobStatus.SCHEDULED,
        meta={"task_id": occurrence.task_id, "version": occurrence.version, "trigger": occurrence.trigger},
    )
    job.origin = occurrence.queue
    return job


def save_jobs(connection: Redis, occurrences: Iterable[Occurrence]) -> None:
    """Write the job hashes of several occurrences in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for occurrence in occurrences:
            build_job(connection, occurrence).save(pipeline=pipe)
        pipe.execute()


def score_of(instant: datetime) -> float:
    """Return the sorted-set score in epoch seconds, as rq-scheduler uses."""
    return epoch_us(instant) / 1_000_000


# Replace the pending occurrence of one task (or remove it when ARGV[2] is empty).
REPLACE_PENDING_LUA = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and old ~= ARGV[2] then
  if redis.call('ZREM', KEYS[1], old) == 1 then
    redis.call('DEL', ARGV[4] .. old)
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
return old
"""

# Move due occurrences onto their queues and put each task's next one in place, atomically.
# ARGV: now_text, then groups of 6: due_id, push_id, queue, task_id, next_id, next_score.
MOVE_DUE_LUA = """
local moved = {}
local now_text = ARGV[1]
for i = 2, #ARGV, 6 do
  local due, push, queue, task, nxt, score = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3], ARGV[i+4], ARGV[i+5]
  if redis.call('ZREM', KEYS[1], due) == 1 then
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
    if redis.call('HGET', KEYS[2], task) == due then
      if nxt ~= '' then
        redis.call('ZADD', KEYS[1], score, nxt)
        redis.call('HSET', KEYS[2], task, nxt)
      else
        redis.call('HDEL', KEYS[2], task)
      end
    end
    moved[#moved + 1] = due
  else
    if push ~= '' and push ~= due then redis.call('DEL', 'rq:job:' .. push) end
    if nxt ~= '' then redis.call('DEL', 'rq:job:' .. nxt) end
  end
end
return moved
"""

# Push one saved job onto its queue now (run now, recovery) and mark it in flight.
PUSH_NOW_LUA = """
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('HSET', 'rq:job:' .. ARGV[1], 'status', 'queued', 'enqueued_at', ARGV[2], 'origin', ARGV[3])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], redis.call('TIME')[1], ARGV[1])
return 1
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


def replace_pending(connection: Redis, task_id: int, occurrence: Occurrence | None) -> str | None:
    """Make `occurrence` the task's one pending occurrence (None removes it); wake the scheduler."""
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


def replace_pending_many(connection: Redis, items: Sequence[tuple[int, Occurrence | None]],
                         batch_size: int = 2000) -> None:
    """replace_pending for many tasks, in pipelined batches (the reconciler's repair path)."""
    script = connection.register_script(REPLACE_PENDING_LUA)
    for start in range(0, len(items), batch_size):
        batch = items[start:start + batch_size]
        save_jobs(connection, [o for _, o in batch if o is not None])
        with connection.pipeline(transaction=False) as pipe:
            for task_id, occurrence in batch:
                script(keys=[SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY],
                       args=[task_id, occurrence.job_id if occurrence else "",
                             score_of(occurrence.scheduled_for) if occurrence else 0, Job.redis_job_namespace_prefix],
                       client=pipe)
            pipe.execute()


def move_due(connection: Redis, moves: Sequence[Move], now: datetime) -> set[str]:
    """Apply moves atomically; return the due ids that were still scheduled (and so moved)."""
    if not moves:
        return set()
    args: list[object] = [utcformat(now)]
    for move in moves:
        args += [move.due_id, move.push_id, move.queue, move.task_id, move.next_id, move.next_score]
    script = connection.register_script(MOVE_DUE_LUA)
    moved = script(keys=[SCHEDULED_KEY, PENDING_KEY, QUEUES_SET_KEY], args=args)
    return {m.decode() if isinstance(m, bytes) else m for m in moved}


def push_now(connection: Redis, occurrence: Occurrence, now: datetime) -> str:
    """Save and enqueue one occurrence at once; return its job id."""
    save_jobs(connection, [occurrence])
    script = connection.register_script(PUSH_NOW_LUA)
    script(
        keys=[QUEUE_KEY.format(name=occurrence.queue), QUEUES_SET_KEY,
              INFLIGHT_KEY.format(task_id=occurrence.task_id)],
        args=[occurrence.job_id, utcformat(now), occurrence.queue],
    )
    return occurrence.job_id


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


def inflight_job_ids(connection: Redis, task_id: int) -> list[str]:
    """Return the job ids of the task that are queued or running."""
    return [j.decode() for j in connection.zrange(INFLIGHT_KEY.format(task_id=task_id), 0, -1)]


def pending_job_id(connection: Redis, task_id: int) -> str | None:
    """Return the job id of the task's pending occurrence, if any."""
    value = connection.hget(PENDING_KEY, task_id)
    return value.decode() if value else None
