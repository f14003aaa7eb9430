"""Occurrences in Redis: job ids, the atomic move script and the busy check, on a real redis-server."""
from __future__ import annotations

from types import SimpleNamespace

from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_lib
from rq.job import Job, JobStatus

from chime import occurrence as occ

DUE_AT = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
NEXT_AT = DUE_AT + timedelta(hours=1)
NOW = DUE_AT + timedelta(milliseconds=5)


@pytest.fixture
def connection(redis_url: str) -> redis_lib.Redis:
    return redis_lib.Redis.from_url(redis_url)


def occurrence(task_id: int = 7, scheduled_for: datetime = DUE_AT, attempt: int = 1, trigger: str = "SCHEDULE",
               version: int = 3) -> occ.Occurrence:
    return occ.Occurrence(task_id=task_id, scheduled_for=scheduled_for, attempt=attempt, trigger=trigger,
                          version=version, queue="default", timeout_seconds=30)


def make_pending(connection: redis_lib.Redis, pending: occ.Occurrence) -> None:
    occ.replace_pending(connection, pending.task_id, pending)


def move_to_next(pending: occ.Occurrence, next_at: datetime = NEXT_AT) -> occ.Move:
    nxt = occurrence(pending.task_id, next_at)
    return occ.Move(pending.job_id, pending.job_id, "default", pending.task_id, nxt.job_id, occ.score_of(next_at),
                    occ.describe(pending.task_id, "SCHEDULE", next_at, 1))


@pytest.mark.parametrize(("job_id", "manual", "extra"), [
    ("chime-7-1772366400000000-1", False, False),
    ("chime-7-1772366400000000-2-m", True, True),
    ("chime-7-1772366400000000-1-r", False, True),
    ("chime-7-1772366400000000-1-m-r", True, True),
])
def test_an_occurrence_job_id_decodes_to_its_task_time_and_attempt(job_id: str, manual: bool, extra: bool) -> None:
    due = occ.parse_job_id(job_id)
    assert due is not None
    assert (due.task_id, due.scheduled_for, due.manual, due.extra) == (7, DUE_AT, manual, extra)
    assert due.attempt == int(job_id.split("-")[3])


@pytest.mark.parametrize("job_id", ["rq-job", "chime-7-x-1", "chime-7-1-1-q", "chime-7-1-1-r-m", "chime-7-1"])
def test_a_foreign_job_id_does_not_decode(job_id: str) -> None:
    assert occ.parse_job_id(job_id) is None


def test_a_job_id_is_derived_from_the_occurrence_so_scheduling_twice_gives_the_same_id() -> None:
    assert occurrence().job_id == occurrence().job_id == "chime-7-1772366400000000-1"
    assert occurrence(trigger="MANUAL").job_id.endswith("-1-m")


def test_the_job_payload_holds_no_time_or_attempt_so_every_scheduled_occurrence_shares_it(
        connection: redis_lib.Redis) -> None:
    first, later = occ.build_job(connection, occurrence()), occ.build_job(connection, occurrence(scheduled_for=NEXT_AT))
    assert first.kwargs == later.kwargs == {"task_id": 7, "trigger": "SCHEDULE"}
    assert first.description != later.description


def test_moving_a_due_occurrence_queues_it_and_schedules_the_next_as_a_copy_of_its_job(
        connection: redis_lib.Redis) -> None:
    pending = occurrence()
    make_pending(connection, pending)
    move = move_to_next(pending)

    moved, unsaved = occ.move_due(connection, [move], NOW)

    assert moved == {pending.job_id} and unsaved == []
    assert connection.lrange("rq:queue:default", 0, -1) == [pending.job_id.encode()]
    assert connection.zrange(occ.SCHEDULED_KEY, 0, -1, withscores=True) == [(move.next_id.encode(), move.next_score)]
    assert occ.pending_job_id(connection, 7) == move.next_id
    queued, scheduled = Job.fetch(pending.job_id, connection), Job.fetch(move.next_id, connection)
    assert queued.get_status() == JobStatus.QUEUED
    assert scheduled.get_status() == JobStatus.SCHEDULED
    assert (scheduled.func_name, scheduled.kwargs, scheduled.origin, scheduled.timeout) == (
        queued.func_name, queued.kwargs, queued.origin, queued.timeout)
    assert scheduled.description == move.next_description
    assert scheduled.enqueued_at is None
    assert scheduled.created_at.replace(tzinfo=timezone.utc) == NOW.replace(microsecond=NOW.microsecond // 1000 * 1000)


def test_a_next_occurrence_whose_due_job_hash_is_missing_is_still_scheduled_and_reported_unsaved(
        connection: redis_lib.Redis) -> None:
    pending = occurrence()
    make_pending(connection, pending)
    connection.delete(occ.JOB_KEY.format(job_id=pending.job_id))
    move = move_to_next(pending)

    moved, unsaved = occ.move_due(connection, [move], NOW)

    assert moved == {pending.job_id} and unsaved == [move.next_id]
    assert occ.pending_job_id(connection, 7) == move.next_id


def test_a_due_id_no_longer_scheduled_moves_nothing_and_leaves_the_pending_occurrence_alone(
        connection: redis_lib.Redis) -> None:
    pending = occurrence()
    make_pending(connection, pending)
    move = move_to_next(pending)
    occ.move_due(connection, [move], NOW)

    moved, unsaved = occ.move_due(connection, [move], NOW)  # a second pass with the same plan

    assert moved == set() and unsaved == []
    assert connection.llen("rq:queue:default") == 1
    assert connection.exists(occ.JOB_KEY.format(job_id=move.next_id))
    assert occ.pending_job_id(connection, 7) == move.next_id


def test_a_task_is_busy_only_while_one_of_its_jobs_is_queued_or_running(connection: redis_lib.Redis) -> None:
    for task_id in (1, 2, 3):
        occ.push_now(connection, occurrence(task_id, trigger="MANUAL"), NOW)
    finished = occurrence(2, trigger="MANUAL").job_id
    connection.hset(occ.JOB_KEY.format(job_id=finished), "status", JobStatus.FINISHED.value)
    occ.finish_inflight(connection, 3, occurrence(3, trigger="MANUAL").job_id)

    assert occ.busy_task_ids(connection, [1, 2, 3, 4]) == {1}
    assert occ.busy_task_ids(connection, []) == set()


def test_the_executor_takes_the_occurrence_from_the_job_id_over_an_older_payloads_arguments() -> None:
    from scheduler.executor import occurrence_of

    copied_from_an_older_job = occurrence(scheduled_for=NEXT_AT, attempt=2).job_id
    assert occurrence_of(copied_from_an_older_job, DUE_AT.isoformat(), 1) == (NEXT_AT, 2)


def test_a_job_without_an_occurrence_id_runs_the_occurrence_its_arguments_name() -> None:
    from scheduler.executor import occurrence_of

    assert occurrence_of("custom-id", DUE_AT.isoformat(), 3) == (DUE_AT, 3)
    with pytest.raises(ValueError, match="names no occurrence"):
        occurrence_of("custom-id", None, None)


def test_an_occurrence_given_the_trigger_enum_still_pickles_plain_data_for_the_worker(
        connection: redis_lib.Redis) -> None:
    # A Chime worker loads job payloads as plain data only (scheduler/boundary.py): an enum member in the
    # kwargs would make every job of the task refused.
    from chime.enums import Trigger
    from scheduler.boundary import PlainPickleSerializer

    task = SimpleNamespace(id=7, version=3, queue="default", timeout_seconds=30, created_at=None)
    job = occ.build_job(connection, occ.Occurrence.of(task, DUE_AT, trigger=Trigger.SCHEDULE))
    assert PlainPickleSerializer.loads(job.data)[3] == {"task_id": 7, "trigger": "SCHEDULE"}


@pytest.mark.parametrize("made", [
    occurrence(),
    occ.Occurrence(task_id=123456, scheduled_for=NEXT_AT, attempt=2, trigger="RECOVERY", version=9, queue="high",
                   timeout_seconds=3600, task_created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)),
])
def test_the_reconcilers_job_hash_is_the_one_rq_builds_for_the_occurrence(connection: redis_lib.Redis,
                                                                         made: occ.Occurrence) -> None:
    from_rq = occ.job_fields(connection, made)  # Job.create(...).to_dict() and the version
    created_at = from_rq[from_rq.index("created_at") + 1]

    direct = occ.scheduled_job_fields(made, created_at)

    connection.hset("rq-built", mapping=dict(zip(from_rq[::2], from_rq[1::2])))
    connection.hset(occ.job_key(made.job_id), mapping=dict(zip(direct[::2], direct[1::2])))
    assert connection.hgetall(occ.job_key(made.job_id)) == connection.hgetall("rq-built")
    job = Job.fetch(made.job_id, connection)
    assert (job.func_name, job.kwargs, job.meta, job.origin, job.get_status()) == (
        occ.EXECUTE_FUNC, occ.job_kwargs(made), {"task_id": made.task_id, "trigger": made.trigger}, made.queue,
        JobStatus.SCHEDULED)


def test_an_occurrence_with_its_own_arguments_is_not_built_without_its_signature() -> None:
    with pytest.raises(ValueError):
        occ.scheduled_job_fields(occ.Occurrence(7, DUE_AT, 1, "MANUAL", 1, "default", 30, args={"a": 1}), "x")


def test_job_fields_are_read_for_many_jobs_in_one_call_with_none_for_what_is_missing(
        connection: redis_lib.Redis) -> None:
    connection.hset(occ.job_key("a"), mapping={"origin": "high", "created_at": "t"})
    connection.hset(occ.job_key("c"), mapping={occ.VERSION_FIELD: 4})

    values = occ.read_job_fields(connection, ["a", "b", "c"], ["created_at", "origin", occ.VERSION_FIELD])

    assert values == [[b"t", b"high", None], [None, None, None], [None, None, b"4"]]
