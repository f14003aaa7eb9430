"""Admin pages for the execution log."""
from __future__ import annotations

from typing import Any

from flask import render_template, request

from chime import services
from chime.models import Execution
from webapp import queries
from webapp.admin.filters import RANGES, execution_filters, page_arg
from chime.enums import Role
from webapp.admin.blueprint import bp
from webapp.auth import allow
from chime.timeutil import utcnow


@bp.get("/logs")
@allow(Role.VIEWER)
def log_list() -> Any:
    now = utcnow()
    filters = execution_filters(request.args, now)
    page = queries.execution_page(filters, page_arg(request.args))
    return render_template("logs/list.html", page=page, filters=filters, now=now,
                           tasks=queries.task_choices(), ranges=RANGES)


@bp.get("/logs/<int:execution_id>")
@allow(Role.VIEWER)
def log_detail(execution_id: int) -> Any:
    execution = services.get_row(Execution, execution_id)
    return render_template("logs/detail.html", execution=execution, now=utcnow())
