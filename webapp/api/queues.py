"""Routes for the queues (the jobs waiting on each, cancel one), the workers, and stopping a running run."""
from __future__ import annotations

from typing import Any

from flask import jsonify, url_for
from redis.exceptions import RedisError

from chime import run_control
from chime.enums import Role
from chime.errors import NotFoundError, UnavailableError
from chime.extensions import get_redis
from chime.redis_keys import QUEUE_NAMES
from chime.schemas.execution import ExecutionRead
from chime.schemas.queue import QueuedJobRead, QueueRead, WorkerRead
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler import queues
from webapp.api.blueprint import bp
from webapp.api.common import MAX_OFFSET, external_url, query_args
from webapp.auth import allow

DEFAULT_JOBS_PAGE = 50


def _redis_read(read: Any) -> Any:
    try:
        return read(get_redis())
    except RedisError as error:
        raise UnavailableError(f"Redis is unavailable: {error}") from error


@bp.get("/queues/")
@allow(Role.VIEWER)
def list_queues() -> Any:
    return jsonify([QueueRead.dump(row) for row in _redis_read(queues.queue_counts)])


@bp.get("/queues/<queue>/jobs/")
@allow(Role.VIEWER)
def list_queued_jobs(queue: str) -> Any:
    """The jobs waiting on a queue, in the order workers take them, one page at a time."""
    if queue not in QUEUE_NAMES:
        raise NotFoundError("queue", queue)
    args = query_args()
    limit = args.integer("limit", DEFAULT_JOBS_PAGE, 1, queues.MAX_JOBS_PAGE)
    offset = args.integer("offset", 0, 0, MAX_OFFSET)
    total, rows = _redis_read(lambda connection: queues.waiting_jobs(connection, queue, offset, limit))
    return jsonify({
        "count": total,
        "next": _page(queue, limit, offset + limit) if offset + limit < total else None,
        "previous": _page(queue, limit, max(offset - limit, 0)) if offset > 0 else None,
        "results": [QueuedJobRead.dump(row) for row in rows],
    })


def _page(queue: str, limit: int, offset: int) -> str:
    return external_url(url_for("api.list_queued_jobs", queue=queue, limit=limit, offset=offset))


@bp.post("/queues/<queue>/jobs/<job_id>/cancel/")
@allow(Role.OPERATOR)
def cancel_queued_job(queue: str, job_id: str) -> Any:
    """Cancel an occurrence waiting on `queue` (or in the schedule): it is recorded CANCELLED, never run."""
    with unit_of_work():
        execution = run_control.cancel_waiting(queue, job_id, utcnow())
    return jsonify(ExecutionRead.dump(execution))


@bp.post("/logs/<int:execution_id>/stop/")
@allow(Role.OPERATOR)
def stop_run(execution_id: int) -> Any:
    """Ask the worker running it to stop the run; it is recorded CANCELLED within seconds (poll the entry)."""
    with unit_of_work():
        execution = run_control.request_stop(execution_id)
        body = ExecutionRead.dump(execution)
    location = external_url(url_for("api.get_log", execution_id=execution_id))
    return jsonify(body), 202, {"Location": location}


@bp.get("/workers/")
@allow(Role.VIEWER)
def list_workers() -> Any:
    return jsonify([WorkerRead.dump(row) for row in _redis_read(queues.workers)])

