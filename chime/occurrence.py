"""Occurrences in Redis: deterministic RQ job ids, the pending index, and atomic moves.

Redis holds only derived state that the reconciler can rebuild from the database:
- rq-scheduler's sorted set (``SCHEDULED_KEY``): job id -> due epoch seconds (float);
- ``PENDING_KEY``: task id -> job id of the task's one pending scheduled occurrence;
- ``INFLIGHT_KEY``: per task, job ids moved onto a queue and not yet finished;
- ``WAKEUP_KEY``: a list the scheduler blocks on, pushed when a task changes.

Each occurrence's job hash also holds ``VERSION_FIELD``: the version of the task definition it was
made from, so the reconciler can tell a stale occurrence without unpickling anything.

Every change that must not be half-done is one Lua script (atomic in Redis): the key names are
:mod:`chime.redis_keys`, the scripts :mod:`chime.redis_scripts`; this module calls them.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus
from rq.utils import utcformat, utcparse

from chime import redis_scripts as scripts
from chime.enums import Trigger
from chime.redis_keys import (ALIVE_KEY, INFLIGHT_KEY, JOB_KEY, LEGACY_PERIODIC_JOB_IDS,  # noqa: F401
                              PENDING_KEY, PERIODIC_KEY, QUEUE_KEY, QUEUES_SET_KEY, SCHEDULED_KEY,
                              SCHEDULER_LOCK_KEY, WAKEUP_KEY, canceled_registry_key, ended_registry_keys,
                              inflight_key, job_key, queue_key, started_registry_key)

ALIVE_TTL_SECONDS = 10
ALIVE_BEAT_SECONDS = 2
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
    args: dict[str, Any] | None = None  # arguments overridden for this run (and its retries) only

    @classmethod
    def of(cls, task: Any, scheduled_for: datetime, attempt: int = 1, trigger: str = Trigger.SCHEDULE,
           args: dict[str, Any] | None = None) -> Occurrence:
        """The occurrence of a task (a Task or a row with the same columns) at `scheduled_for`."""
        return cls(task_id=task.id, scheduled_for=scheduled_for, attempt=attempt, trigger=Trigger(trigger).value,
                   version=task.version, queue=task.queue, timeout_seconds=task.timeout_seconds,
                   task_created_at=task.created_at, args=args)

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
    suffix = "-m" if trigger == Trigger.MANUAL else ""
    return f"chime-{task_id}-{epoch_us(scheduled_for)}-{attempt}{suffix}"


@dataclass(frozen=True)
class PeriodicJob:
    """One of Chime's own periodic jobs (reconcile, retention): pushed once per slot of `interval_seconds`."""

    name: str
    func: str
    queue: str
    interval_seconds: int
    timeout_seconds: int


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
        meta={"task_id": occurrence.task_id, "trigger": occurrence.trigger},
    )
    job.origin = occurrence.queue
    return job


def job_kwargs(occurrence: Occurrence) -> dict[str, Any]:
    """The executor's arguments: the task, how it was triggered, which task (by creation time) it was, and
    the arguments overridden for this run if any (plain JSON data, as the worker's boundary reads)."""
    kwargs: dict[str, Any] = {"task_id": occurrence.task_id, "trigger": occurrence.trigger}
    if occurrence.task_created_at is not None:
        kwargs["task_created_at"] = occurrence.task_created_at.isoformat()
    if occurrence.args is not None:
        from flask import current_app

        kwargs["args"] = occurrence.args
        kwargs["args_signature"] = args_signature(current_app.config["SECRET_KEY"], occurrence.task_id, occurrence.args)
    return kwargs


def args_signature(key: str | bytes, task_id: int, args: Any) -> str:
    """The HMAC (SHA-256, keyed with the app's SECRET_KEY) of a run's overridden arguments for its task: the
    worker runs a job's own arguments only when this matches, so whoever can write to Redis cannot make an
    existing task run with arguments of their choosing."""
    secret = key.encode() if isinstance(key, str) else key
    text = f"{task_id}\n" + json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def args_signed(key: str | bytes, task_id: int, args: Any, signature: Any) -> bool:
    """Say whether `signature` is args_signature's for these arguments (compared in constant time)."""
    return isinstance(signature, str) and hmac.compare_digest(args_signature(key, task_id, args), signature)


def job_fields(connection: Redis, occurrence: Occurrence) -> list[Any]:
    """The job hash of an occurrence as a flat field/value list (for HSET inside a script)."""
    mapping = build_job(connection, occurrence).to_dict()
    mapping[VERSION_FIELD] = occurrence.version
    return [item for pair in mapping.items() for item in pair]


def scheduled_job_fields(occurrence: Occurrence, created_at: str) -> list[Any]:
    """job_fields of a scheduled occurrence without overridden arguments, built directly: the same hash RQ's
    Job.create(...).to_dict() gives (tests/unit/test_occurrence.py compares them), created at `created_at`
    (utcformat), at a fraction of the cost -- the reconciler writes one for every task after a Redis loss."""
    if occurrence.args is not None:
        raise ValueError("an occurrence with overridden arguments needs job_fields (its arguments are signed)")
    payload = (EXECUTE_FUNC, None, (), job_kwargs(occurrence))  # what rq's Job.data pickles
    data = zlib.compress(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    meta = pickle.dumps({"task_id": occurrence.task_id, "trigger": occurrence.trigger},
                        protocol=pickle.HIGHEST_PROTOCOL)
    description = describe(occurrence.task_id, occurrence.trigger, occurrence.scheduled_for, occurrence.attempt)
    return ["created_at", created_at, "data", data, "success_callback_name", "", "failure_callback_name", "",
            "stopped_callback_name", "", "started_at", "", "ended_at", "", "last_heartbeat", "", "worker_name", "",
            "group_id", "", "origin", occurrence.queue, "description", description,
            "timeout", occurrence.timeout_seconds + JOB_TIMEOUT_MARGIN_SECONDS, "result_ttl", RESULT_TTL_SECONDS,
            "failure_ttl", FAILURE_TTL_SECONDS, "status", JobStatus.SCHEDULED.value, "meta", meta,
            VERSION_FIELD, occurrence.version]


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


def save_new_jobs(connection: Redis, occurrences: Sequence[Occurrence]) -> None:
    """save_jobs for occurrences another scheduler may have pushed already: never overwrite a handled one."""
    if not occurrences:
        return
    script = connection.register_script(scripts.SAVE_UNLESS_HANDLED_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for occurrence in occurrences:
            script(keys=[job_key(occurrence.job_id)], args=job_fields(connection, occurrence), client=pipe)
        pipe.execute()


def score_of(instant: datetime) -> float:
    """Return the sorted-set score in epoch seconds, as rq-scheduler uses."""
    return epoch_us(instant) / 1_000_000


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
    script = connection.register_script(scripts.REPLACE_PENDING_LUA)
    new_id = occurrence.job_id if occurrence else ""
    score = score_of(occurrence.scheduled_for) if occurrence else 0
    while True:  # until the pending occurrence seen is still the one pending (the dispatcher moves it)
        seen = pending_job_id(connection, task_id) or ""
        replaced, dropped = script(keys=[SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY, job_key(seen)],
                                   args=[task_id, new_id, score, seen])
        if replaced:
            return _text(dropped) or None


def remove_orphans(connection: Redis, orphans: Sequence[tuple[str, int, bool]]) -> int:
    """Remove (job id, task id, task gone) scheduled orphans that still are orphans; return how many went."""
    remove = connection.register_script(scripts.REMOVE_ORPHAN_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, task_id, gone in orphans:
            remove(keys=[SCHEDULED_KEY, PENDING_KEY, job_key(job_id)],
                   args=[job_id, task_id, "gone" if gone else "not-pending"], client=pipe)
        return sum(pipe.execute())


def remove_queued_orphans(connection: Redis, orphans: Sequence[tuple[str, str, int]]) -> int:
    """Remove (job id, queue, task id) queued orphans that are still queued; return how many went."""
    remove = connection.register_script(scripts.REMOVE_QUEUED_ORPHAN_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, queue, task_id in orphans:
            remove(keys=[queue_key(queue), job_key(job_id), inflight_key(task_id)], args=[job_id], client=pipe)
        return sum(pipe.execute())


def forget_pending(connection: Redis, seen: Sequence[tuple[int, str]]) -> None:
    """Drop the pending entries of deleted or disabled tasks, each only if it is still the one seen."""
    forget = connection.register_script(scripts.FORGET_PENDING_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for task_id, job_id in seen:
            forget(keys=[PENDING_KEY], args=[task_id, job_id], client=pipe)
        pipe.execute()


def move_due(connection: Redis, moves: Sequence[Move], now: datetime,
             lock: tuple[str, str] | None = None) -> tuple[set[str], list[str]]:
    """Apply moves atomically; return the due ids that were still scheduled (and so moved), and the
    next ids whose job hash could not be copied from their due job (the caller must save them).
    With `lock` (key, owner token), nothing moves unless that lock still holds the token."""
    if not moves:
        return set(), []
    lock_key, owner = lock or (SCHEDULER_LOCK_KEY, "")
    keys: list[str] = [lock_key, SCHEDULED_KEY, PENDING_KEY, QUEUES_SET_KEY]
    args: list[object] = [owner, utcformat(now)]
    for move in moves:
        keys += move_keys(move)
        args += [move.due_id, move.push_id, move.queue, move.task_id, move.next_id, move.next_score,
                 move.next_description]
    script = connection.register_script(scripts.MOVE_DUE_LUA)
    moved, unsaved = script(keys=keys, args=args)
    return {_text(m) for m in moved}, [_text(u) for u in unsaved]


def move_keys(move: Move) -> list[str]:
    """The keys one move touches, in MOVE_DUE_LUA's order (only those it uses)."""
    keys = [job_key(move.due_id)]
    if move.next_id:
        keys.append(job_key(move.next_id))
    if move.push_id:
        keys += [queue_key(move.queue), inflight_key(move.task_id)]
        if move.push_id != move.due_id:
            keys.append(job_key(move.push_id))
    return keys


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def push_now(connection: Redis, occurrence: Occurrence, now: datetime) -> str | None:
    """Write and enqueue one occurrence at once; return its job id, or None if it was already handled."""
    script = connection.register_script(scripts.PUSH_NOW_LUA)
    pushed = script(
        keys=[queue_key(occurrence.queue), QUEUES_SET_KEY, inflight_key(occurrence.task_id),
              job_key(occurrence.job_id), SCHEDULED_KEY],
        args=[occurrence.job_id, utcformat(now), occurrence.queue, *job_fields(connection, occurrence)],
    )
    return occurrence.job_id if pushed else None


def push_retry_now(connection: Redis, occurrence: Occurrence, now: datetime) -> str | None:
    """Enqueue a retry at once; return its job id, or None if it is already queued, running or ended.

    A retry of the same attempt already in the schedule (a lost run's, by policy) is taken out of it first:
    it runs now, once, instead of twice (only one of this and the dispatcher's move can take it out).
    """
    connection.zrem(SCHEDULED_KEY, occurrence.job_id)
    return push_now(connection, occurrence, now)


@dataclass(frozen=True)
class Repair:
    """The reconciler's repair of one task's pending occurrence (see redis_scripts.REPAIR_PENDING_LUA)."""

    task_id: int
    occurrence: Occurrence | None
    expected_id: str = ""  # the pending occurrence the reconciler saw
    stale: bool = False    # replace expected_id (stale) rather than fill a gap (lost)


def repair_pending_many(connection: Redis, repairs: Sequence[Repair], batch_size: int = 2000,
                        per_call: int = 200) -> list[str]:
    """Apply repairs, `per_call` to a script call, `batch_size` to a round trip; return each one's outcome
    (ok, removed, live, changed, handled).

    One round trip is in flight (in a helper thread) while the next batch's job hashes are built: Redis
    runs one batch while Python builds the next. Outcomes are collected in order.
    """
    script = connection.register_script(scripts.REPAIR_PENDING_LUA)
    outcomes: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="repair-send") as sender:
        in_flight: Future[list[Any]] | None = None
        for start in range(0, len(repairs), batch_size):
            created_at = utcformat(datetime.now(timezone.utc))  # RQ's created_at: when the hash is written
            batch = repairs[start:start + batch_size]
            pipe = connection.pipeline(transaction=False)
            for first in range(0, len(batch), per_call):
                keys, args = _repairs_call(connection, batch[first:first + per_call], created_at)
                script(keys=keys, args=args, client=pipe)
            if in_flight is not None:
                outcomes += [_text(o) for outcome in in_flight.result() for o in outcome]
            in_flight = sender.submit(_execute, pipe)
        if in_flight is not None:
            outcomes += [_text(o) for outcome in in_flight.result() for o in outcome]
    return outcomes


def _execute(pipe: Any) -> list[Any]:
    with pipe:
        return list(pipe.execute())


def _repairs_call(connection: Redis, repairs: Sequence[Repair], created_at: str) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one REPAIR_PENDING_LUA call."""
    keys = [SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY]
    args: list[Any] = []
    for repair in repairs:
        new = repair.occurrence
        new_id = new.job_id if new else ""
        fields = [] if new is None else job_fields(connection, new) if new.args is not None \
            else scheduled_job_fields(new, created_at)
        keys += [job_key(new_id), job_key(repair.expected_id)]
        args += [repair.task_id, "stale" if repair.stale else "lost", repair.expected_id, new_id,
                 score_of(new.scheduled_for) if new else 0, len(fields), *fields]
    return keys, args


def read_job_fields(connection: Redis, job_ids: Sequence[str], names: Sequence[str]) -> list[list[bytes | None]]:
    """The fields `names` of each job's hash (None where missing), in one script call."""
    if not job_ids:
        return []
    flat = connection.register_script(scripts.JOB_FIELDS_LUA)(keys=[job_key(j) for j in job_ids], args=list(names))
    width = len(names)
    return [flat[start:start + width] for start in range(0, len(flat), width)]


def schedule_at(connection: Redis, occurrence: Occurrence, due_at: datetime) -> str:
    """Put an extra occurrence (a retry) into the sorted set without touching the pending index."""
    save_jobs(connection, [occurrence])
    with connection.pipeline() as pipe:
        pipe.zadd(SCHEDULED_KEY, {occurrence.job_id: score_of(due_at)})
        pipe.lpush(WAKEUP_KEY, "1")
        pipe.ltrim(WAKEUP_KEY, 0, 0)
        pipe.execute()
    return occurrence.job_id


@dataclass(frozen=True)
class Cancelled:
    """What cancelling a waiting job found: where it waited ('scheduled', 'queued'), or why it was not
    cancelled ('running', 'ended', 'missing'); and the next occurrence put in place of a pending one."""

    where: str
    next_id: str | None = None

    @property
    def done(self) -> bool:
        return self.where in ("scheduled", "queued")


def cancel_waiting(connection: Redis, job_id: str, task_id: int, queue: str, now: datetime,
                   following: Occurrence | None = None) -> Cancelled:
    """Take a waiting occurrence out of the schedule or off `queue`, in one script that re-checks it still
    waits; a pending one gives way to `following` (the task's next occurrence; None: none)."""
    fields = job_fields(connection, following) if following is not None else []
    where, written = connection.register_script(scripts.CANCEL_WAITING_LUA)(
        keys=[SCHEDULED_KEY, PENDING_KEY, WAKEUP_KEY, queue_key(queue), job_key(job_id), inflight_key(task_id),
              canceled_registry_key(queue), job_key(following.job_id if following else "")],
        args=[job_id, task_id, utcformat(now), now.timestamp() + RESULT_TTL_SECONDS, RESULT_TTL_SECONDS,
              following.job_id if following else "", score_of(following.scheduled_for) if following else 0,
              *fields])
    return Cancelled(_text(where), _text(written) or None)


def finish_inflight(connection: Redis, task_id: int, job_id: str) -> None:
    """Forget that a job is in flight (the executor is done with it)."""
    connection.zrem(inflight_key(task_id), job_id)


def inflight_markers(connection: Redis) -> list[tuple[int, str]]:
    """Every (task id, job id) marked in flight."""
    keys = [key.decode() for key in connection.scan_iter(match=inflight_key("*"), count=1000)]
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
        keys += [inflight_key(task_id), job_key(job_id)]
        args += [job_id, "1" if recorded else "0"]
    return int(connection.register_script(scripts.CLEAR_STALE_INFLIGHT_LUA)(keys=keys, args=args))


def requeue_abandoned(connection: Redis, job_ids: Sequence[str], started_before: datetime, now: datetime) -> int:
    """Requeue the jobs among `job_ids` (none of them claimed) that a worker took before `started_before`."""
    if not job_ids:
        return 0
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hmget(job_key(job_id), "status", "started_at", "origin")
        seen = pipe.execute()
    abandoned = [(job_id, started.decode(), origin.decode()) for job_id, (status, started, origin) in zip(job_ids, seen)
                 if status == b"started" and started and origin and utcparse(started.decode()) < started_before]
    script = connection.register_script(scripts.REQUEUE_ABANDONED_LUA)
    with connection.pipeline(transaction=False) as pipe:
        for job_id, started, origin in abandoned:
            script(keys=[job_key(job_id), QUEUES_SET_KEY, queue_key(origin), started_registry_key(origin)],
                   args=[job_id, started, utcformat(now), origin], client=pipe)
        return sum(pipe.execute())


def busy_task_ids(connection: Redis, task_ids: Sequence[int]) -> set[int]:
    """Return the ids among `task_ids` of tasks with a job still queued or running."""
    if not task_ids:
        return set()
    found = connection.register_script(scripts.INFLIGHT_JOBS_LUA)(keys=[inflight_key(t) for t in task_ids])
    inflight = [(task_ids[index - 1], _text(job_id)) for index, job_id in zip(found[::2], found[1::2])]
    if not inflight:
        return set()
    live = connection.register_script(scripts.LIVE_JOBS_LUA)(keys=[job_key(job_id) for _, job_id in inflight])
    return {inflight[index - 1][0] for index in live}


def periodic_job_id(name: str, slot: int) -> str:
    """The job id of periodic job `name` for the slot starting `slot` epoch seconds: one job per slot."""
    return f"chime-periodic-{name}-{slot}"


def periodic_slots(connection: Redis) -> dict[str, int]:
    """Each periodic job's last slot pushed (epoch seconds), by name."""
    return {name.decode(): int(slot) for name, slot in connection.hgetall(PERIODIC_KEY).items()}


def push_periodic(connection: Redis, job: PeriodicJob, slot: int, last_slot: int | None, now: datetime) -> bool:
    """Push `job` for the slot starting `slot` epoch seconds, once; say whether this call pushed it.

    Nothing is pushed unless `last_slot` (the caller's read of periodic_slots) is still the last slot
    pushed -- two schedulers never push one slot twice -- nor while the last slot's job is still on its
    queue or running (a late pass is not doubled up; the current slot is pushed once it ends). Running
    means as of `now`, a worker's heartbeat for it has not expired: one whose worker was killed holds
    up the next slot no longer than RQ's heartbeat (for Chime's in-process worker, the job's timeout
    plus 60 s).
    """
    job_id = periodic_job_id(job.name, slot)
    rq_job = Job.create(job.func, connection=connection, id=job_id, timeout=job.timeout_seconds,
                        result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS,
                        description=f"periodic {job.name} {from_epoch_us(slot * 1_000_000).isoformat()}")
    rq_job.origin = job.queue
    fields = [item for pair in rq_job.to_dict().items() for item in pair]
    last_id = periodic_job_id(job.name, last_slot) if last_slot is not None else ""
    pushed = connection.register_script(scripts.PUSH_PERIODIC_LUA)(
        keys=[PERIODIC_KEY, job_key(job_id), job_key(last_id), queue_key(job.queue), QUEUES_SET_KEY,
              started_registry_key(job.queue)],
        args=[job.name, slot, "" if last_slot is None else last_slot, job_id, utcformat(now), job.queue,
              now.timestamp(), last_id, *fields])
    return bool(pushed)


def drop_ended_job(connection: Redis, job_id: str, queue: str) -> bool:
    """Take job `job_id` (of `queue`) out of Redis if it has ended, so that its id can be queued again.

    One script: a job queued or running, even since an instant ago, is never taken. Say whether it was.
    """
    return bool(connection.register_script(scripts.DROP_ENDED_JOB_LUA)(
        keys=[job_key(job_id), *ended_registry_keys(queue)], args=[job_id]))


def remove_legacy_periodic(connection: Redis) -> int:
    """Take the rq-scheduler `repeat` entries of an earlier Chime's periodic jobs out of the schedule."""
    legacy = list(LEGACY_PERIODIC_JOB_IDS)
    return int(connection.register_script(scripts.REMOVE_LEGACY_PERIODIC_LUA)(
        keys=[SCHEDULED_KEY, *map(job_key, legacy)], args=legacy))


def pending_job_id(connection: Redis, task_id: int) -> str | None:
    """Return the job id of the task's pending occurrence, if any."""
    value = connection.hget(PENDING_KEY, task_id)
    return value.decode() if value else None
