"""A reconcile pass asked for by a person (POST /api/reconcile/): queued as an RQ job, its report read later.

A pass takes seconds (6-14 s for 100,000 tasks), too long for a web request; so the web app only
queues one (the periodic reconcile job of :mod:`scheduler.periodic`: the same function, queue and
timeout) and says where to read its report. The job id is fixed (REQUEST_JOB_ID): while a requested
pass is queued or running, asking again answers the same job instead of piling up passes (RQ's atomic
unique enqueue); once it has ended, asking again replaces it with a new one -- the ended job is taken
out by one script that never takes a job queued or started meanwhile, so two requests at once never
drop the pass the other just queued, nor one a worker is running. Its report stays readable for
RESULT_TTL_SECONDS after it ended.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from chime import occurrence as occ
from scheduler.boundary import PlainPickleSerializer
from scheduler.periodic import RECONCILE_FUNC, RECONCILE_QUEUE, RECONCILE_TIMEOUT_SECONDS

REQUEST_JOB_ID = "chime-reconcile-requested"
RESULT_TTL_SECONDS = 3600  # how long an ended pass's report (or failure) stays readable

ENDED = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


@dataclass(frozen=True)
class RequestedPass:
    """Where a requested pass stands: its job id, queued|running|finished|failed, its report or why it failed."""

    id: str
    status: str
    report: dict[str, Any] | None = None
    error: str | None = None


def request_pass(connection: Redis) -> RequestedPass:
    """Queue a reconcile pass unless one requested earlier is still queued or running; say where it stands."""
    occ.drop_ended_job(connection, REQUEST_JOB_ID, RECONCILE_QUEUE)  # an ended pass's report gives way
    queue = Queue(RECONCILE_QUEUE, connection=connection, serializer=PlainPickleSerializer)
    try:
        queue.enqueue_call(func=RECONCILE_FUNC, job_id=REQUEST_JOB_ID, unique=True,
                           timeout=RECONCILE_TIMEOUT_SECONDS, result_ttl=RESULT_TTL_SECONDS,
                           failure_ttl=RESULT_TTL_SECONDS, description="reconcile pass requested through the API")
    except DuplicateJobError:
        pass  # one is queued or running already (or another request queued it just now): that one answers
    return requested_pass(connection, REQUEST_JOB_ID) or RequestedPass(REQUEST_JOB_ID, "queued")


def requested_pass(connection: Redis, job_id: str) -> RequestedPass | None:
    """Where the requested pass `job_id` stands; None when there is none (another id, or it expired)."""
    job = _fetch(connection) if job_id == REQUEST_JOB_ID else None
    if job is None:
        return None
    status = job.get_status()
    if status == JobStatus.FINISHED:
        return RequestedPass(job.id, "finished", report=job.return_value())
    if status in ENDED:
        return RequestedPass(job.id, "failed", error=_failure(job))
    return RequestedPass(job.id, "running" if status == JobStatus.STARTED else "queued")


def _fetch(connection: Redis) -> Job | None:
    try:
        return Job.fetch(REQUEST_JOB_ID, connection=connection, serializer=PlainPickleSerializer)
    except NoSuchJobError:
        return None


def _failure(job: Job) -> str:
    """The last line of the failed pass's traceback (the exception), or a plain statement."""
    result = job.latest_result()
    lines = (result.exc_string or "").strip().splitlines() if result is not None else []
    return lines[-1] if lines else "the pass did not finish; see the worker's log"
