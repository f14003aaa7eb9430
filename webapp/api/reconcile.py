"""Routes to ask for a reconcile pass and to read where it stands (the pass runs on a worker)."""
from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from chime.errors import NotFoundError
from chime.extensions import get_redis
from chime.schemas.reconcile import ReconcileRequest
from scheduler.reconcile_request import RequestedPass, request_pass, requested_pass
from chime.enums import Role
from webapp.api.blueprint import bp
from webapp.auth import allow
from webapp.api.common import external_url


@bp.post("/reconcile/")
@allow(Role.OPERATOR)
def run_reconcile() -> Any:
    """Queue a pass (or answer the one already queued or running): 202 and where to read its report."""
    answer = described(request_pass(get_redis()))
    return jsonify(answer), 202, {"Location": answer["location"]}


@bp.get("/reconcile/<job_id>/")
@allow(Role.VIEWER)
def get_reconcile(job_id: str) -> Any:
    """Where a requested pass stands, and its report once it has finished."""
    found = requested_pass(get_redis(), job_id)
    if found is None:
        raise NotFoundError("reconcile pass", job_id)
    return jsonify(described(found))


def described(found: RequestedPass) -> dict[str, Any]:
    location = external_url(url_for("api.get_reconcile", job_id=found.id))
    return ReconcileRequest.of(id=found.id, status=found.status, location=location, report=found.report,
                               error=found.error)
