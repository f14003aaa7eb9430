"""Admin pages for the execution log."""
from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from chime import services
from chime.errors import ConflictError, UnavailableError
from chime.models import Execution
from webapp import queries
from webapp.admin.filters import RANGES, execution_filters, page_arg
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.auth import allow
from chime.timeutil import utcnow
from webapp.exports import EXPORT_FORMATS, export_response


@bp.get("/logs")
@allow(Role.VIEWER)
def log_list() -> Any:
    now = utcnow()
    filters = execution_filters(request.args, now)
    page = queries.execution_page(filters, page_arg(request.args))
    kept = {name: value for name, value in request.args.items() if name != "page"}
    export_urls = {name: url_for("admin.log_export", **kept, format=name) for name in EXPORT_FORMATS}
    tasks, more_tasks = queries.log_task_choices(filters.task_id)
    return render_template("logs/list.html", page=page, filters=filters, now=now, tasks=tasks,
                           more_tasks=more_tasks, ranges=RANGES, export_urls=export_urls)


@bp.get("/logs/export")
@allow(Role.VIEWER)
def log_export() -> Any:
    """The runs the list's filters select, all of them, as a CSV or JSON download (webapp.exports)."""
    now = utcnow()
    file_format = request.args.get("format", "csv")
    return export_response(execution_filters(request.args, now), file_format if file_format in EXPORT_FORMATS
                           else "csv", now)


@bp.get("/logs/<int:execution_id>")
@allow(Role.VIEWER)
def log_detail(execution_id: int) -> Any:
    execution = services.get_row(Execution, execution_id)
    return render_template("logs/detail.html", execution=execution, now=utcnow(),
                           retryable=services.may_retry(execution))


@bp.post("/logs/<int:execution_id>/retry")
@allow(Role.OPERATOR)
def log_retry(execution_id: int) -> Any:
    """Retry a failed run now: a new attempt of its occurrence; back to the run's page with what happened."""
    execution = services.get_row(Execution, execution_id)
    try:
        job_id = services.retry_run(execution)
        flash(f"Run #{execution.id} of “{execution.task_name}” retried now: attempt {execution.attempt + 1} "
              f"queued (job {job_id}).", "success")
    except (ConflictError, UnavailableError) as error:
        flash(error.message, "error")
    return redirect(url_for("admin.log_detail", execution_id=execution.id))
