"""Admin pages for the queues (the jobs waiting on each, cancel one) and the workers; stopping a run."""
from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from redis.exceptions import RedisError

from chime import run_control
from chime.enums import Role
from chime.errors import ChimeError
from chime.extensions import get_redis
from chime.redis_keys import QUEUE_NAMES
from chime.timeutil import utcnow
from chime.unit_of_work import unit_of_work
from scheduler import queues
from webapp.admin.blueprint import bp
from webapp.admin.filters import page_arg
from webapp.admin.views import safe_next
from webapp.auth import allow

JOBS_PER_PAGE = 25


@bp.get("/queues")
@allow(Role.VIEWER)
def queue_list() -> Any:
    """Each queue's waiting jobs, the next to run first: its first page, or the page asked of one queue."""
    chosen = request.args.get("queue") or None
    if chosen is not None and chosen not in QUEUE_NAMES:
        abort(404)
    page = page_arg(request.args) if chosen else 1
    shown, error = [], None
    try:
        for name in [chosen] if chosen else QUEUE_NAMES:
            total, jobs = queues.waiting_jobs(get_redis(), name, (page - 1) * JOBS_PER_PAGE, JOBS_PER_PAGE)
            shown.append({"name": name, "total": total, "jobs": jobs, "page": page,
                          "pages": max(1, -(-total // JOBS_PER_PAGE))})
    except RedisError as redis_error:
        error = f"Redis is unavailable: {redis_error}"
    return render_template("queues.html", queues=shown, chosen=chosen, error=error, now=utcnow())


@bp.post("/queues/<queue>/jobs/<job_id>/cancel")
@allow(Role.OPERATOR)
def queue_job_cancel(queue: str, job_id: str) -> Any:
    try:
        with unit_of_work():
            execution = run_control.cancel_waiting(queue, job_id, utcnow())
        flash(f"Job {job_id} of “{execution.task_name}” cancelled: recorded as run #{execution.id}.", "success")
    except ChimeError as error:
        flash(error.message, "error")
    return redirect(safe_next(request.form.get("next"), url_for("admin.queue_list")))


@bp.get("/workers")
@allow(Role.VIEWER)
def worker_list() -> Any:
    try:
        found, error = queues.workers(get_redis()), None
    except RedisError as redis_error:
        found, error = [], f"Redis is unavailable: {redis_error}"
    return render_template("workers.html", workers=found, error=error, now=utcnow())


@bp.post("/logs/<int:execution_id>/stop")
@allow(Role.OPERATOR)
def log_stop(execution_id: int) -> Any:
    try:
        with unit_of_work():
            execution = run_control.request_stop(execution_id)
        flash(f"Run #{execution.id} of “{execution.task_name}” asked to stop: it ends Cancelled within seconds.",
              "success")
    except ChimeError as error:
        if error.status == 404:
            raise
        flash(error.message, "error")
    return redirect(url_for("admin.log_detail", execution_id=execution_id))
