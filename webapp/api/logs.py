"""Routes for the execution log."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from chime import services
from webapp import queries
from chime.enums import Role
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp.api.common import paginate, query_args
from chime.models import Execution, Status, Trigger
from chime.schemas.execution import ExecutionDetail, ExecutionRead, RetryResult
from chime.timeutil import utcnow
from chime.validation import MAX_ID
from webapp.exports import EXPORT_FORMATS, export_response

STATUSES = tuple(s.value for s in Status)
TRIGGERS = tuple(t.value for t in Trigger)


def log_filters(task_id: int | None = None) -> queries.ExecutionFilters:
    """The log filters of the request (a task_id argument is checked even where the path names the task)."""
    args = query_args()
    task_id_arg = args.integer("task_id", None, 1, MAX_ID)
    return queries.ExecutionFilters(
        search=args.text("search", queries.MAX_SEARCH_LENGTH_CHARS),
        task_id=task_id if task_id is not None else task_id_arg,
        status=args.choice("status", STATUSES),
        trigger=args.choice("trigger", TRIGGERS),
        since=args.instant("since"),
        until=args.instant("until"),
    )


@bp.get("/logs/")
@allow(Role.VIEWER)
def list_logs() -> Any:
    return jsonify(paginate(queries.execution_query(log_filters()), ExecutionRead.dump))


@bp.get("/logs/export/")
@allow(Role.VIEWER)
def export_logs() -> Any:
    """The filtered log as a CSV or JSON download, streamed (webapp.exports)."""
    args = query_args()
    file_format = (args.choice("format", tuple(f.upper() for f in EXPORT_FORMATS)) or "CSV").lower()
    return export_response(log_filters(), file_format, utcnow())


@bp.get("/tasks/<int:task_id>/logs/")
@allow(Role.VIEWER)
def task_logs(task_id: int) -> Any:
    services.get_task(task_id)
    return jsonify(paginate(queries.execution_query(log_filters(task_id)), ExecutionRead.dump))


@bp.get("/logs/<int:execution_id>/")
@allow(Role.VIEWER)
def get_log(execution_id: int) -> Any:
    return jsonify(ExecutionDetail.dump(services.get_row(Execution, execution_id)))


@bp.post("/logs/<int:execution_id>/retry/")
@allow(Role.OPERATOR)
def retry_log(execution_id: int) -> Any:
    """Queue the next attempt of a failed run's occurrence now (409 unless it is its occurrence's latest, FAILED)."""
    execution = services.get_row(Execution, execution_id)
    job_id = services.retry_run(execution)
    return jsonify(RetryResult.of(job_id=job_id, execution_id=execution.id, task_id=execution.task_id,
                                  attempt=execution.attempt + 1, trigger=Trigger.RETRY)), 202
