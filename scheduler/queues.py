"""The queues' waiting jobs and the workers, read through RQ's own API, a bounded page at a time.

A queue is read with `Queue.count` and `Queue.get_job_ids(offset, length)` (never all of it) and its
jobs with `Job.fetch_many`, through PlainPickleSerializer: a job's payload is read as plain data, nothing
it names is imported. The workers are RQ's `Worker.all` (a worker keeps its state, its current job and
its counts in its own hash). Runs and task names come from the database, one query per page.
"""
from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import DeserializationError
from sqlalchemy import select

from chime import occurrence as occ
from chime.extensions import db
from chime.models import Execution, Status, Task
from chime.redis_keys import QUEUE_NAMES
from scheduler.boundary import ENTRY_POINTS, ChimeJob, PlainPickleSerializer

MAX_JOBS_PAGE = 200  # the most jobs one page of a queue shows


def rq_queue(connection: Redis, name: str) -> Queue:
    return Queue(name, connection=connection, job_class=ChimeJob, serializer=PlainPickleSerializer)


def queue_counts(connection: Redis) -> list[dict[str, Any]]:
    """Each of Chime's queues and how many jobs wait on it."""
    return [{"name": name, "count": rq_queue(connection, name).count} for name in QUEUE_NAMES]


def waiting_jobs(connection: Redis, name: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many wait on queue `name`, the page of `limit` jobs from `offset`, next to be taken first)."""
    queue = rq_queue(connection, name)
    limit = max(1, min(limit, MAX_JOBS_PAGE))
    total = queue.count
    ids = queue.get_job_ids(offset, limit)
    jobs = ChimeJob.fetch_many(ids, connection=connection, serializer=PlainPickleSerializer)
    rows = [described(name, offset + index + 1, job_id, job) for index, (job_id, job) in enumerate(zip(ids, jobs))]
    names = task_names({row["task_id"] for row in rows if row["task_id"] is not None})
    for row in rows:
        row["task_name"] = names.get(row["task_id"])
    return total, rows


def described(queue: str, position: int, job_id: str, job: ChimeJob | None) -> dict[str, Any]:
    """One waiting job: an occurrence is decoded from its id (the task, when, which attempt)."""
    due = occ.parse_job_id(job_id)
    row: dict[str, Any] = {"job_id": job_id, "queue": queue, "position": position, "task_id": None,
                           "task_name": None, "scheduled_for": None, "attempt": None, "trigger": None,
                           "enqueued_at": job.enqueued_at if job is not None else None,
                           "description": job.description if job is not None else None,
                           "kind": "occurrence" if due is not None else kind_of(job)}
    if due is not None:
        row.update(task_id=due.task_id, scheduled_for=due.scheduled_for, attempt=due.attempt,
                   trigger=trigger_of(job, due))
    return row


def kind_of(job: ChimeJob | None) -> str:
    try:
        return "periodic" if job is not None and job.func_name in ENTRY_POINTS else "other"
    except DeserializationError:
        return "other"


def trigger_of(job: ChimeJob | None, due: occ.DueJob) -> str | None:
    """The trigger the job's arguments name (read as plain data), else what its id says."""
    try:
        trigger = job.kwargs.get("trigger") if job is not None else None
    except DeserializationError:
        trigger = None
    if isinstance(trigger, str):
        return trigger
    return "MANUAL" if due.manual else ("RETRY" if due.attempt > 1 else None)


def task_names(task_ids: set[int]) -> dict[int, str]:
    if not task_ids:
        return {}
    return dict(db.session.execute(select(Task.id, Task.name).where(Task.id.in_(task_ids))).all())


def workers(connection: Redis) -> list[dict[str, Any]]:
    """Every registered worker, by name, with the run it is busy with (if any)."""
    found = sorted(Worker.all(connection=connection, job_class=ChimeJob, serializer=PlainPickleSerializer),
                   key=lambda worker: worker.name)
    job_ids = [worker.get_current_job_id() for worker in found]
    started = dict(zip(job_ids, ChimeJob.fetch_many([j for j in job_ids if j], connection=connection,
                                                    serializer=PlainPickleSerializer)))
    runs = current_runs([job_id for job_id in job_ids if job_id])
    return [worker_row(worker, job_id, started.get(job_id) if job_id else None, runs.get(job_id or ""))
            for worker, job_id in zip(found, job_ids)]


def worker_row(worker: Worker, job_id: str | None, job: ChimeJob | None, run: Any) -> dict[str, Any]:
    return {
        "name": worker.name, "state": worker.get_state(), "hostname": worker.hostname, "pid": worker.pid,
        "queues": worker.queue_names(), "birth": worker.birth_date, "last_heartbeat": worker.last_heartbeat,
        "successful_job_count": worker.successful_job_count, "failed_job_count": worker.failed_job_count,
        "total_working_seconds": max(0.0, float(worker.total_working_time or 0)),
        "current_job_id": job_id, "current_job_started_at": job.started_at if job is not None else None,
        "current_execution_id": run.id if run is not None else None,
        "current_task_id": run.task_id if run is not None else None,
        "current_task_name": run.task_name if run is not None else None,
    }


def current_runs(job_ids: list[str]) -> dict[str, Any]:
    """The RUNNING execution of each job id (one query)."""
    if not job_ids:
        return {}
    rows = db.session.execute(select(Execution.id, Execution.task_id, Execution.task_name, Execution.job_id)
                              .where(Execution.job_id.in_(job_ids), Execution.status == Status.RUNNING.value)).all()
    return {row.job_id: row for row in rows}
