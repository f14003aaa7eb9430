"""Routes for the audit trail: every change and operator action, overall and per task."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import jsonify

from chime import services
from chime.audit import audit_query
from chime.enums import Role
from chime.schemas.audit import AuditEventRead
from webapp.api.blueprint import bp
from webapp.api.common import paginate, query_args
from webapp.audit_filters import audit_filters
from webapp.auth import allow


@bp.get("/audit/")
@allow(Role.VIEWER)
def list_audit() -> Any:
    return jsonify(paginate(audit_query(audit_filters(query_args())), AuditEventRead.dump))


@bp.get("/tasks/<int:task_id>/audit/")
@allow(Role.VIEWER)
def task_audit(task_id: int) -> Any:
    """One task's history: its changes and its runs' retries, cancels and stops (the other filters apply)."""
    services.get_task(task_id)
    filters = replace(audit_filters(query_args()), task_id=task_id)
    return jsonify(paginate(audit_query(filters), AuditEventRead.dump))
